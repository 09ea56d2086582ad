// Command driver is the conformance driver for confluent-kafka-go v2 with its bundled librdkafka
// (clients/README.md).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	dp "github.com/klite/klite/clients/internal/driverproto"
)

func main() { dp.Main(&driver{authCh: make(chan struct{})}) }

const opTimeout = 30 * time.Second

// metadataTimeoutMs bounds GetMetadata, which takes no context.
const metadataTimeoutMs = 10000

type driver struct {
	hello  dp.Hello
	adminP *kafka.Producer // handle under the admin client, so its error events can be read
	admin  *kafka.AdminClient

	authOnce sync.Once
	authCh   chan struct{} // closed at the first SASL authentication failure
	authMsg  string
	prod     *kafka.Producer
	prodKey  string
	txnProd  *kafka.Producer
	group    *kafka.Consumer
	groupID  string
}

// ctx bounds an admin call; it also ends when SASL authentication has failed (librdkafka
// retries then until the time-out and reports only a transport failure).
func (d *driver) ctx() (context.Context, context.CancelFunc) {
	cx, cancel := context.WithTimeout(context.Background(), opTimeout)
	go func() {
		select {
		case <-d.authCh:
			cancel()
		case <-cx.Done():
		}
	}()
	return cx, cancel
}

// noteEvent records authentication failures that librdkafka reports as error events.
func (d *driver) noteEvent(ev kafka.Event) {
	if e, ok := ev.(kafka.Error); ok && e.Code() == kafka.ErrAuthentication {
		d.authOnce.Do(func() {
			d.authMsg = e.String()
			close(d.authCh)
		})
	}
}

func (d *driver) authFailed() bool {
	select {
	case <-d.authCh:
		return true
	default:
		return false
	}
}

func (d *driver) conf(extra kafka.ConfigMap) *kafka.ConfigMap {
	cid := d.hello.ClientID
	if cid == "" {
		cid = "klite-confluent-kafka-go-driver"
	}
	m := kafka.ConfigMap{"bootstrap.servers": d.hello.Bootstrap, "client.id": cid}
	if s := d.hello.SASL; s != nil {
		m["security.protocol"] = "SASL_PLAINTEXT"
		m["sasl.mechanisms"] = s.Mechanism
		m["sasl.username"] = s.User
		m["sasl.password"] = s.Password
	}
	if t := d.hello.TLS; t != nil {
		m["security.protocol"] = "SSL"
		if d.hello.SASL != nil {
			m["security.protocol"] = "SASL_SSL"
		}
		m["ssl.ca.location"] = t.CAFile
		if t.CertFile != "" {
			m["ssl.certificate.location"], m["ssl.key.location"] = t.CertFile, t.KeyFile
		}
	}
	for k, v := range extra {
		m[k] = v
	}
	return &m
}

// codeName maps a librdkafka error code: broker codes (>0) by their protocol name, local ones
// by meaning.
func codeName(c kafka.ErrorCode) string {
	switch {
	case c == kafka.ErrNoError:
		return ""
	case c > 0:
		return dp.CodeName(int16(c))
	case c == kafka.ErrTimedOut || c == kafka.ErrMsgTimedOut || c == kafka.ErrTimedOutQueue:
		return "TIMEOUT"
	case c == kafka.ErrUnknownTopic || c == kafka.ErrUnknownPartition:
		return "UNKNOWN_TOPIC_OR_PARTITION"
	}
	return "CLIENT_ERROR"
}

func errName(err error) string {
	if ke, ok := err.(kafka.Error); ok {
		return codeName(ke.Code())
	}
	if err == context.DeadlineExceeded || err == context.Canceled {
		return "TIMEOUT"
	}
	return "CLIENT_ERROR"
}

// name maps an error, turning the local failures that follow a failed SASL authentication
// into SASL_AUTHENTICATION_FAILED.
func (d *driver) name(err error) string {
	n := errName(err)
	if (n == "CLIENT_ERROR" || n == "TIMEOUT") && d.authFailed() {
		return "SASL_AUTHENTICATION_FAILED"
	}
	return n
}

func (d *driver) errAnswer(err error) dp.Answer {
	n := d.name(err)
	if n == "SASL_AUTHENTICATION_FAILED" {
		return dp.Err(n, d.authMsg)
	}
	return dp.Err(n, err.Error())
}

func kerrOrNil(e kafka.Error) any {
	if e.Code() == kafka.ErrNoError {
		return nil
	}
	return codeName(e.Code())
}

func (d *driver) Close() {
	if d.group != nil {
		d.group.Close()
		d.group = nil
	}
	for _, p := range []*kafka.Producer{d.prod, d.txnProd} {
		if p != nil {
			p.Flush(5000)
			p.Close()
		}
	}
	d.prod, d.txnProd = nil, nil
	if d.admin != nil {
		d.admin.Close()
		d.admin = nil
	}
	if d.adminP != nil {
		d.adminP.Close()
		d.adminP = nil
	}
}

func (d *driver) Handle(c *dp.Cmd) dp.Answer {
	if c.Op == "hello" {
		if err := c.Decode(&d.hello); err != nil {
			return dp.Err("CLIENT_ERROR", err.Error())
		}
		_, v := kafka.LibraryVersion()
		return dp.OK(map[string]any{"client": "confluent-kafka-go", "library_version": "confluent-kafka-go " + goModVersion() + " (librdkafka " + v + ")"})
	}
	switch c.Op {
	case "create_topic", "delete_topic", "metadata", "admin", "list_offsets", "group_committed", "consume":
		if err := d.ensureAdmin(); err != nil {
			return d.errAnswer(err)
		}
	}
	ops := dp.Ops{Metadata: d.metadata, Produce: d.produce, ProduceFor: d.produceFor, Consume: d.consume, ListOffsets: d.listOffsets,
		GroupSubscribe: d.groupSubscribe, GroupCommitted: d.groupCommitted, TxnInit: d.txnInit, Admin: d.adminAction,
		Subscribed: func() (string, bool) { return d.groupID, d.group != nil }, GroupPoll: d.groupPoll,
		GroupCommit: d.groupCommit, StandaloneCommit: d.standaloneCommit}
	if a, ok := ops.Dispatch(c); ok {
		return a
	}
	switch c.Op {
	case "create_topic":
		var a dp.CreateTopic
		c.Decode(&a)
		cx, cancel := d.ctx()
		defer cancel()
		res, err := d.admin.CreateTopics(cx, []kafka.TopicSpecification{{Topic: a.Topic, NumPartitions: int(a.Parts()),
			ReplicationFactor: int(a.RF()), Config: a.Configs}}, kafka.SetAdminValidateOnly(a.ValidateOnly))
		if err != nil {
			return d.errAnswer(err)
		}
		if e := res[0].Error; e.Code() != kafka.ErrNoError {
			return d.errAnswer(e)
		}
		return dp.OK(nil)
	case "delete_topic":
		var a struct{ Topic string }
		c.Decode(&a)
		cx, cancel := d.ctx()
		defer cancel()
		res, err := d.admin.DeleteTopics(cx, []string{a.Topic})
		if err != nil {
			return d.errAnswer(err)
		}
		if e := res[0].Error; e.Code() != kafka.ErrNoError {
			return d.errAnswer(e)
		}
		return dp.OK(nil)
	case "group_leave":
		if d.group != nil {
			err := d.group.Close()
			d.group = nil
			if err != nil {
				return d.errAnswer(err)
			}
		}
		return dp.OK(nil)
	case "txn_begin", "txn_commit", "txn_abort":
		if d.txnProd == nil {
			return dp.Err("CLIENT_ERROR", "no transactional producer (txn_init first)")
		}
		cx, cancel := d.ctx()
		defer cancel()
		var err error
		switch c.Op {
		case "txn_begin":
			err = d.txnProd.BeginTransaction()
		case "txn_commit":
			err = d.txnProd.CommitTransaction(cx)
		default:
			err = d.txnProd.AbortTransaction(cx)
		}
		if err != nil {
			return d.errAnswer(err)
		}
		return dp.OK(nil)
	case "txn_send_offsets":
		var a dp.TxnSendOffsets
		c.Decode(&a)
		if d.txnProd == nil {
			return dp.Err("CLIENT_ERROR", "no transactional producer (txn_init first)")
		}
		md, err := kafka.NewTestConsumerGroupMetadata(a.Group)
		if err != nil {
			return d.errAnswer(err)
		}
		var tps []kafka.TopicPartition
		for _, o := range a.Offsets {
			t := o.Topic
			tps = append(tps, kafka.TopicPartition{Topic: &t, Partition: o.Partition, Offset: kafka.Offset(o.Offset)})
		}
		cx, cancel := d.ctx()
		defer cancel()
		if err := d.txnProd.SendOffsetsToTransaction(cx, tps, md); err != nil {
			return d.errAnswer(err)
		}
		return dp.OK(nil)
	}
	return dp.Unsupported("unknown op")
}

func (d *driver) ensureAdmin() error {
	if d.admin != nil {
		return nil
	}
	p, err := kafka.NewProducer(d.conf(kafka.ConfigMap{"allow.auto.create.topics": false}))
	if err != nil {
		return err
	}
	d.drainEvents(p)
	a, err := kafka.NewAdminClientFromProducer(p)
	if err != nil {
		p.Close()
		return err
	}
	d.adminP, d.admin = p, a
	return nil
}

func (d *driver) metadata(a dp.Metadata) dp.Answer {
	ad := d.admin
	if a.AllowAutoCreate {
		// librdkafka asks for auto-creation per client configuration: use a short-lived handle.
		tmp, err := kafka.NewAdminClient(d.conf(kafka.ConfigMap{"allow.auto.create.topics": true}))
		if err != nil {
			return d.errAnswer(err)
		}
		defer tmp.Close()
		ad = tmp
	}
	var mds []*kafka.Metadata
	if len(a.Topics) == 0 {
		md, err := d.getMetadata(ad, nil, true)
		if err != nil {
			return d.errAnswer(err)
		}
		mds = append(mds, md)
	}
	for _, t := range a.Topics {
		t := t
		md, err := d.getMetadata(ad, &t, false)
		if err != nil {
			return d.errAnswer(err)
		}
		mds = append(mds, md)
	}
	topics := []map[string]any{}
	for _, md := range mds {
		names := make([]string, 0, len(md.Topics))
		for n := range md.Topics {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			t := md.Topics[n]
			topics = append(topics, map[string]any{"topic": n, "partitions": len(t.Partitions), "error": kerrOrNil(t.Error)})
		}
	}
	return dp.OK(map[string]any{"topics": topics})
}

// getMetadata is GetMetadata that also returns when SASL authentication has failed.
func (d *driver) getMetadata(ad *kafka.AdminClient, topic *string, all bool) (*kafka.Metadata, error) {
	type res struct {
		md  *kafka.Metadata
		err error
	}
	ch := make(chan res, 1)
	go func() {
		md, err := ad.GetMetadata(topic, all, metadataTimeoutMs)
		ch <- res{md, err}
	}()
	select {
	case r := <-ch:
		return r.md, r.err
	case <-d.authCh:
		return nil, kafka.NewError(kafka.ErrAuthentication, d.authMsg, false)
	}
}

// ---- produce ----

func (d *driver) drainEvents(p *kafka.Producer) {
	go func() {
		for ev := range p.Events() {
			d.noteEvent(ev)
			slog.Debug("producer event", "event", ev.String())
		}
	}()
}

var codecs = map[string]bool{"none": true, "gzip": true, "snappy": true, "lz4": true, "zstd": true}

func (d *driver) produce(a dp.Produce) dp.Answer {
	if !codecs[a.Codec()] {
		return dp.Unsupported("compression " + a.Codec() + " not supported by librdkafka")
	}
	acks := a.AcksOr()
	var p *kafka.Producer
	if a.Transactional {
		if d.txnProd == nil {
			return dp.Err("CLIENT_ERROR", "no transactional producer (txn_init first)")
		}
		p = d.txnProd
	} else {
		key := fmt.Sprintf("%d/%s/%v", acks, a.Codec(), a.Idempotent)
		if d.prod == nil || d.prodKey != key {
			if d.prod != nil {
				d.prod.Flush(5000)
				d.prod.Close()
				d.prod = nil
			}
			np, err := kafka.NewProducer(d.conf(kafka.ConfigMap{"acks": acks, "compression.codec": a.Codec(),
				"enable.idempotence": a.Idempotent, "linger.ms": 5, "message.timeout.ms": 30000}))
			if err != nil {
				return d.errAnswer(err)
			}
			d.drainEvents(np)
			d.prod, d.prodKey = np, key
		}
		p = d.prod
	}
	type rep struct {
		idx int
		m   *kafka.Message
	}
	dch := make(chan kafka.Event, len(a.Records))
	results := make([]dp.ProduceResult, len(a.Records))
	pending := 0
	for i, r := range a.Records {
		t := a.Topic
		m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &t, Partition: kafka.PartitionAny},
			Key: dp.BytesIn(r.Key), Value: dp.BytesIn(r.Value), Opaque: i}
		if r.Partition != nil {
			m.TopicPartition.Partition = *r.Partition
		}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: dp.BytesIn(h.Value)})
		}
		if r.Timestamp != nil {
			m.Timestamp = time.UnixMilli(*r.Timestamp)
		}
		if err := p.Produce(m, dch); err != nil {
			results[i] = dp.ProduceResult{Partition: m.TopicPartition.Partition, Offset: -1, Timestamp: -1, Error: d.name(err)}
			continue
		}
		pending++
	}
	p.Flush(0)
	deadline := time.After(60 * time.Second)
	authCh := d.authCh
	for pending > 0 {
		select {
		case <-authCh:
			// Authentication failed: librdkafka would retry until message.timeout.ms.
			authCh = nil
			p.Purge(kafka.PurgeQueue | kafka.PurgeInFlight | kafka.PurgeNonBlocking)
		case ev := <-dch:
			m, ok := ev.(*kafka.Message)
			if !ok {
				continue
			}
			pending--
			i := m.Opaque.(int)
			r := dp.ProduceResult{Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset), Timestamp: -1}
			if m.TopicPartition.Offset < 0 {
				r.Offset = -1
			}
			if m.TimestampType != kafka.TimestampNotAvailable && !m.Timestamp.IsZero() {
				r.Timestamp = m.Timestamp.UnixMilli()
			}
			if m.TopicPartition.Error != nil {
				r.Error = d.name(m.TopicPartition.Error)
				r.Offset = -1
				slog.Warn("record failed", "idx", i, "err", m.TopicPartition.Error)
			}
			results[i] = r
		case <-deadline:
			return dp.Err("TIMEOUT", fmt.Sprintf("%d delivery reports missing after 60s", pending))
		}
	}
	return dp.OK(map[string]any{"results": results})
}

func (d *driver) txnInit(a dp.TxnInit) dp.Answer {
	if d.txnProd != nil {
		d.txnProd.Close()
		d.txnProd = nil
	}
	extra := kafka.ConfigMap{"transactional.id": a.TransactionalID, "enable.idempotence": true, "acks": "all", "linger.ms": 5}
	if a.TransactionTimeoutMs > 0 {
		extra["transaction.timeout.ms"] = a.TransactionTimeoutMs
	}
	p, err := kafka.NewProducer(d.conf(extra))
	if err != nil {
		return d.errAnswer(err)
	}
	d.drainEvents(p)
	cx, cancel := d.ctx()
	defer cancel()
	if err := p.InitTransactions(cx); err != nil {
		p.Close()
		return d.errAnswer(err)
	}
	d.txnProd = p
	return dp.OK(nil)
}

// ---- consume ----

func toOut(m *kafka.Message) dp.OutRecord {
	r := dp.OutRecord{Topic: *m.TopicPartition.Topic, Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset),
		Key: dp.Bytes(m.Key), Value: dp.Bytes(m.Value), Headers: []dp.Header{}, Timestamp: -1}
	switch m.TimestampType {
	case kafka.TimestampCreateTime:
		r.TimestampType = dp.TSType("create")
	case kafka.TimestampLogAppendTime:
		r.TimestampType = dp.TSType("log_append")
	}
	if m.TimestampType != kafka.TimestampNotAvailable {
		r.Timestamp = m.Timestamp.UnixMilli()
	}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, dp.Header{Key: h.Key, Value: dp.Bytes(h.Value)})
	}
	return r
}

func isolation(s string) string {
	if dp.ReadCommitted(s) {
		return "read_committed"
	}
	return "read_uncommitted"
}

func (d *driver) consume(a dp.Consume) dp.Answer {
	parts := a.Partitions
	if len(parts) == 0 {
		t := a.Topic
		md, err := d.getMetadata(d.admin, &t, false)
		if err != nil {
			return d.errAnswer(err)
		}
		tm := md.Topics[a.Topic]
		if tm.Error.Code() != kafka.ErrNoError {
			return d.errAnswer(tm.Error)
		}
		for _, p := range tm.Partitions {
			parts = append(parts, p.ID)
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	}
	extra := kafka.ConfigMap{"group.id": fmt.Sprintf("klite-driver-assign-%d", time.Now().UnixNano()),
		"enable.auto.commit": false, "enable.auto.offset.store": false, "isolation.level": isolation(a.Isolation)}
	if a.FetchMaxBytes != nil {
		fmb := int(*a.FetchMaxBytes)
		if fmb < 1000 {
			// librdkafka requires fetch.max.bytes >= message.max.bytes, whose minimum is 1000.
			slog.Info("fetch.max.bytes raised to librdkafka's minimum", "asked", fmb, "used", 1000)
			fmb = 1000
		}
		if fmb < 1000000 {
			extra["message.max.bytes"] = fmb
		}
		extra["fetch.max.bytes"] = fmb
	}
	if a.PartitionMaxBytes != nil {
		extra["max.partition.fetch.bytes"] = int(*a.PartitionMaxBytes)
	}
	if a.FetchMinBytes != nil {
		extra["fetch.min.bytes"] = int(*a.FetchMinBytes)
	}
	if a.FetchMaxWaitMs != nil {
		extra["fetch.wait.max.ms"] = int(*a.FetchMaxWaitMs)
	}
	c, err := kafka.NewConsumer(d.conf(extra))
	if err != nil {
		return d.errAnswer(err)
	}
	defer c.Close()
	start := a.Start()
	off := kafka.Offset(start.Offset)
	if start.Earliest {
		off = kafka.OffsetBeginning
	} else if start.Latest {
		off = kafka.OffsetEnd
	}
	var tps []kafka.TopicPartition
	for _, p := range parts {
		t := a.Topic
		tps = append(tps, kafka.TopicPartition{Topic: &t, Partition: p, Offset: off})
	}
	if err := c.Assign(tps); err != nil {
		return d.errAnswer(err)
	}
	recs, perr := d.pollLoop(c, a.MaxRecords, dp.Ms(a.TimeoutMs, 10000))
	if perr != nil && len(recs) == 0 {
		return d.errAnswer(perr)
	}
	return dp.OK(map[string]any{"records": recs})
}

// pollLoop polls until max records (0: no limit) or the time-out; it returns the first
// consumer error seen (errors that end no poll are logged).
func (d *driver) pollLoop(c *kafka.Consumer, max, timeoutMs int) ([]dp.OutRecord, error) {
	recs := []dp.OutRecord{}
	var first error
	deadline := time.Now().Add(time.Duration(timeoutMs) * time.Millisecond)
	for max <= 0 || len(recs) < max {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		ms := int(left / time.Millisecond)
		if ms > 100 {
			ms = 100
		}
		switch ev := c.Poll(ms).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error != nil {
				slog.Warn("consume error", "err", ev.TopicPartition.Error)
				if first == nil {
					first = ev.TopicPartition.Error
				}
				continue
			}
			recs = append(recs, toOut(ev))
		case kafka.Error:
			d.noteEvent(ev)
			slog.Warn("consumer error", "err", ev)
			if first == nil && ev.Code() != kafka.ErrPartitionEOF {
				first = ev
			}
		case nil:
		default:
			slog.Debug("consumer event", "event", ev.String())
		}
	}
	return recs, first
}

func (d *driver) listOffsets(a dp.ListOffsets) dp.Answer {
	var spec kafka.OffsetSpec
	switch a.Spec.Kind {
	case "earliest":
		spec = kafka.EarliestOffsetSpec
	case "latest":
		spec = kafka.LatestOffsetSpec
	case "max_timestamp":
		spec = kafka.MaxTimestampOffsetSpec
	case "timestamp":
		spec = kafka.NewOffsetSpecForTimestamp(a.Spec.Timestamp)
	default:
		return dp.Err("CLIENT_ERROR", "bad spec "+a.Spec.Kind)
	}
	t := a.Topic
	tp := kafka.TopicPartition{Topic: &t, Partition: a.Partition}
	iso := kafka.IsolationLevelReadUncommitted
	if dp.ReadCommitted(a.Isolation) {
		iso = kafka.IsolationLevelReadCommitted
	}
	cx, cancel := d.ctx()
	defer cancel()
	res, err := d.admin.ListOffsets(cx, map[kafka.TopicPartition]kafka.OffsetSpec{tp: spec}, kafka.SetAdminIsolationLevel(iso))
	if err != nil {
		return d.errAnswer(err)
	}
	for k, r := range res.ResultInfos {
		if k.Partition != a.Partition || *k.Topic != a.Topic {
			continue
		}
		if r.Error.Code() != kafka.ErrNoError {
			return d.errAnswer(r.Error)
		}
		return dp.OK(map[string]any{"offset": int64(r.Offset), "timestamp": r.Timestamp})
	}
	return dp.Err("CLIENT_ERROR", "no result for partition")
}

// ---- groups ----

func (d *driver) groupSubscribe(a dp.GroupSubscribe) dp.Answer {
	if d.group != nil {
		d.group.Close()
		d.group = nil
	}
	from := "earliest"
	if a.From == "latest" {
		from = "latest"
	}
	switch a.GroupProtocol {
	case "", "classic":
	case "consumer":
		return d.subscribeConsumerProtocol(a, from)
	default:
		return dp.Unsupported("group protocol " + a.GroupProtocol)
	}
	strategy := a.Assignor
	switch a.Assignor {
	case "":
		strategy = "range"
	case "range", "roundrobin", "cooperative-sticky":
	default:
		return dp.Unsupported("librdkafka has no " + a.Assignor + " assignor (it has range, roundrobin, cooperative-sticky)")
	}
	extra := kafka.ConfigMap{"group.id": a.Group, "partition.assignment.strategy": strategy,
		"enable.auto.commit": a.AutoCommit, "auto.offset.reset": from, "isolation.level": isolation(a.Isolation)}
	if a.InstanceID != "" {
		extra["group.instance.id"] = a.InstanceID
	}
	if a.SessionTimeoutMs > 0 {
		extra["session.timeout.ms"] = a.SessionTimeoutMs
		hb := a.SessionTimeoutMs / 3
		if hb < 3000 {
			extra["heartbeat.interval.ms"] = hb
		}
	}
	if a.HeartbeatMs > 0 {
		extra["heartbeat.interval.ms"] = a.HeartbeatMs
	}
	if a.RebalanceTimeoutMs > 0 {
		// librdkafka sends max.poll.interval.ms as the JoinGroup rebalance time-out, and
		// requires it to be at least session.timeout.ms.
		mpi := a.RebalanceTimeoutMs
		if a.SessionTimeoutMs > mpi {
			slog.Info("max.poll.interval.ms raised to session.timeout.ms (librdkafka rule)", "asked", mpi, "used", a.SessionTimeoutMs)
			mpi = a.SessionTimeoutMs
		}
		extra["max.poll.interval.ms"] = mpi
	}
	c, err := kafka.NewConsumer(d.conf(extra))
	if err != nil {
		return d.errAnswer(err)
	}
	if err := c.SubscribeTopics(a.Topics, nil); err != nil {
		c.Close()
		return d.errAnswer(err)
	}
	d.group, d.groupID = c, a.Group
	return dp.OK(nil)
}

// subscribeConsumerProtocol joins with KIP-848 (group.protocol=consumer): the broker assigns
// (group.remote.assignor) and sets the session time-out and heartbeat interval, which
// librdkafka refuses to configure with this protocol.
func (d *driver) subscribeConsumerProtocol(a dp.GroupSubscribe, from string) dp.Answer {
	assignor := a.Assignor
	switch assignor {
	case "":
		assignor = "uniform"
	case "uniform", "range":
	default:
		return dp.Unsupported("server assignor " + a.Assignor)
	}
	extra := kafka.ConfigMap{"group.id": a.Group, "group.protocol": "consumer", "group.remote.assignor": assignor,
		"enable.auto.commit": a.AutoCommit, "auto.offset.reset": from, "isolation.level": isolation(a.Isolation)}
	if a.InstanceID != "" {
		extra["group.instance.id"] = a.InstanceID
	}
	if a.RebalanceTimeoutMs > 0 {
		extra["max.poll.interval.ms"] = a.RebalanceTimeoutMs
	}
	c, err := kafka.NewConsumer(d.conf(extra))
	if err != nil {
		return d.errAnswer(err)
	}
	topics := a.Topics
	if a.TopicRegex != "" {
		// librdkafka takes a regex subscription as a topic starting with ^; with this
		// protocol it hands it to the broker.
		topics = []string{"^" + a.TopicRegex}
	}
	if err := c.SubscribeTopics(topics, nil); err != nil {
		c.Close()
		return d.errAnswer(err)
	}
	d.group, d.groupID = c, a.Group
	return dp.OK(nil)
}

func tpList(tps []kafka.TopicPartition) []dp.TopicPartition {
	out := []dp.TopicPartition{}
	for _, tp := range tps {
		out = append(out, dp.TopicPartition{Topic: *tp.Topic, Partition: tp.Partition})
	}
	dp.SortTopicPartitions(out)
	return out
}

func (d *driver) groupPoll(a dp.GroupPoll) dp.Answer {
	recs, perr := d.pollLoop(d.group, a.MaxRecords, dp.Ms(a.TimeoutMs, 5000))
	if perr != nil && len(recs) == 0 {
		return d.errAnswer(perr)
	}
	asg, err := d.group.Assignment()
	if err != nil {
		return d.errAnswer(err)
	}
	return dp.OK(map[string]any{"records": recs, "assignment": tpList(asg)})
}

func (d *driver) groupCommit(a dp.GroupCommit) dp.Answer {
	var err error
	if len(a.Offsets) == 0 {
		_, err = d.group.Commit()
	} else {
		var tps []kafka.TopicPartition
		for _, o := range a.Offsets {
			t, md := o.Topic, o.Metadata
			tps = append(tps, kafka.TopicPartition{Topic: &t, Partition: o.Partition, Offset: kafka.Offset(o.Offset), Metadata: &md})
		}
		var res []kafka.TopicPartition
		res, err = d.group.CommitOffsets(tps)
		if err == nil {
			for _, r := range res {
				if r.Error != nil {
					err = r.Error
					break
				}
			}
		}
	}
	if err != nil {
		if ke, ok := err.(kafka.Error); ok && ke.Code() == kafka.ErrNoOffset {
			return dp.OK(nil) // nothing consumed since the last commit
		}
		return d.errAnswer(err)
	}
	return dp.OK(nil)
}

// standaloneCommit commits as a non-member (generation -1) through the admin client.
func (d *driver) standaloneCommit(a dp.GroupCommit) dp.Answer {
	if err := d.ensureAdmin(); err != nil {
		return d.errAnswer(err)
	}
	if len(a.Offsets) == 0 {
		return dp.Err("CLIENT_ERROR", "standalone commit needs offsets")
	}
	var tps []kafka.TopicPartition
	for _, o := range a.Offsets {
		t, md := o.Topic, o.Metadata
		tps = append(tps, kafka.TopicPartition{Topic: &t, Partition: o.Partition, Offset: kafka.Offset(o.Offset), Metadata: &md})
	}
	cx, cancel := d.ctx()
	defer cancel()
	res, err := d.admin.AlterConsumerGroupOffsets(cx, []kafka.ConsumerGroupTopicPartitions{{Group: a.Group, Partitions: tps}})
	if err != nil {
		return d.errAnswer(err)
	}
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			if tp.Error != nil {
				return d.errAnswer(tp.Error)
			}
		}
	}
	return dp.OK(nil)
}

func (d *driver) groupCommitted(a dp.GroupCommitted) dp.Answer {
	var tps []kafka.TopicPartition
	for _, p := range a.Partitions {
		t := a.Topic
		tps = append(tps, kafka.TopicPartition{Topic: &t, Partition: p})
	}
	cx, cancel := d.ctx()
	defer cancel()
	res, err := d.admin.ListConsumerGroupOffsets(cx, []kafka.ConsumerGroupTopicPartitions{{Group: a.Group, Partitions: tps}})
	if err != nil {
		return d.errAnswer(err)
	}
	out := []dp.CommittedOffset{}
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			co := dp.CommittedOffset{Partition: tp.Partition, Offset: int64(tp.Offset)}
			if tp.Offset < 0 {
				co.Offset = -1
			}
			if tp.Metadata != nil {
				co.Metadata = *tp.Metadata
			}
			if tp.Error != nil {
				co.Error = errName(tp.Error)
			}
			out = append(out, co)
		}
	}
	dp.SortCommitted(out)
	return dp.OK(map[string]any{"offsets": out})
}

// ---- admin actions ----

func (d *driver) adminAction(a dp.Admin) dp.Answer {
	ad := d.admin
	cx, cancel := d.ctx()
	defer cancel()
	switch a.Action {
	case "list_groups":
		res, err := ad.ListConsumerGroups(cx)
		if err != nil {
			return d.errAnswer(err)
		}
		if len(res.Errors) > 0 {
			slog.Warn("list groups partial errors", "errors", res.Errors)
		}
		out := []map[string]any{}
		for _, g := range res.Valid {
			pt := "consumer"
			if g.IsSimpleConsumerGroup {
				pt = ""
			}
			out = append(out, map[string]any{"group": g.GroupID, "protocol_type": pt, "state": g.State.String()})
		}
		dp.SortByString(out, "group")
		return dp.OK(map[string]any{"groups": out})
	case "describe_groups":
		res, err := ad.DescribeConsumerGroups(cx, a.Groups)
		if err != nil {
			return d.errAnswer(err)
		}
		out := []map[string]any{}
		for _, g := range res.ConsumerGroupDescriptions {
			members := []map[string]any{}
			for _, m := range g.Members {
				var inst any
				if m.GroupInstanceID != "" {
					inst = m.GroupInstanceID
				}
				members = append(members, map[string]any{"member_id": m.ConsumerID, "client_id": m.ClientID,
					"instance_id": inst, "assignment": tpList(m.Assignment.TopicPartitions)})
			}
			dp.SortByString(members, "member_id")
			pt := "consumer"
			if g.IsSimpleConsumerGroup {
				pt = ""
			}
			out = append(out, map[string]any{"group": g.GroupID, "state": g.State.String(), "protocol_type": pt,
				"protocol": g.PartitionAssignor, "members": members, "error": kerrOrNil(g.Error)})
		}
		dp.SortByString(out, "group")
		return dp.OK(map[string]any{"groups": out})
	case "describe_consumer_groups":
		res, err := ad.DescribeConsumerGroups(cx, a.Groups)
		if err != nil {
			return d.errAnswer(err)
		}
		out := []map[string]any{}
		for _, g := range res.ConsumerGroupDescriptions {
			members := []map[string]any{}
			for _, m := range g.Members {
				var inst any
				if m.GroupInstanceID != "" {
					inst = m.GroupInstanceID
				}
				members = append(members, map[string]any{"member_id": m.ConsumerID, "instance_id": inst,
					"assignment": tpList(m.Assignment.TopicPartitions)})
			}
			dp.SortByString(members, "member_id")
			out = append(out, map[string]any{"group": g.GroupID, "state": g.State.String(),
				"assignor": g.PartitionAssignor, "members": members, "error": kerrOrNil(g.Error)})
		}
		dp.SortByString(out, "group")
		return dp.OK(map[string]any{"groups": out})
	case "delete_groups":
		res, err := ad.DeleteConsumerGroups(cx, a.Groups)
		if err != nil {
			return d.errAnswer(err)
		}
		out := []map[string]any{}
		for _, r := range res.ConsumerGroupResults {
			out = append(out, map[string]any{"group": r.Group, "error": kerrOrNil(r.Error)})
		}
		dp.SortByString(out, "group")
		return dp.OK(map[string]any{"groups": out})
	case "offset_delete":
		return dp.Unsupported("confluent-kafka-go does not expose librdkafka's DeleteConsumerGroupOffsets")
	case "delete_records":
		t := a.Topic
		res, err := ad.DeleteRecords(cx, []kafka.TopicPartition{{Topic: &t, Partition: a.Partition, Offset: kafka.Offset(a.Offset)}})
		if err != nil {
			return d.errAnswer(err)
		}
		for _, r := range res.DeleteRecordsResults {
			if r.TopicPartition.Error != nil {
				return d.errAnswer(r.TopicPartition.Error)
			}
			if r.DeletedRecords != nil {
				return dp.OK(map[string]any{"low_watermark": int64(r.DeletedRecords.LowWatermark)})
			}
		}
		return dp.OK(nil)
	case "describe_configs":
		res, err := ad.DescribeConfigs(cx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: a.Topic}})
		if err != nil {
			return d.errAnswer(err)
		}
		if e := res[0].Error; e.Code() != kafka.ErrNoError {
			return d.errAnswer(e)
		}
		cfgs := []map[string]any{}
		want := map[string]bool{}
		for _, n := range a.Names {
			want[n] = true
		}
		for n, e := range res[0].Config {
			if len(want) == 0 || want[n] {
				var v any = e.Value
				if e.IsSensitive {
					v = nil
				}
				cfgs = append(cfgs, map[string]any{"name": n, "value": v, "source": dp.ConfigSourceName(int8(e.Source))})
			}
		}
		dp.SortByString(cfgs, "name")
		return dp.OK(map[string]any{"configs": cfgs})
	case "alter_configs":
		var ents []kafka.ConfigEntry
		for k, v := range a.Configs {
			ents = append(ents, kafka.ConfigEntry{Name: k, Value: v, IncrementalOperation: kafka.AlterConfigOpTypeSet})
		}
		res, err := ad.IncrementalAlterConfigs(cx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: a.Topic, Config: ents}})
		if err != nil {
			return d.errAnswer(err)
		}
		if e := res[0].Error; e.Code() != kafka.ErrNoError {
			return d.errAnswer(e)
		}
		return dp.OK(nil)
	case "create_partitions":
		res, err := ad.CreatePartitions(cx, []kafka.PartitionsSpecification{{Topic: a.Topic, IncreaseTo: int(a.Count)}})
		if err != nil {
			return d.errAnswer(err)
		}
		if e := res[0].Error; e.Code() != kafka.ErrNoError {
			return d.errAnswer(e)
		}
		return dp.OK(nil)
	case "describe_cluster":
		res, err := ad.DescribeCluster(cx)
		if err != nil {
			return d.errAnswer(err)
		}
		out := map[string]any{"brokers": len(res.Nodes), "controller": -1, "cluster_id": nil}
		if res.Controller != nil {
			out["controller"] = res.Controller.ID
		}
		if res.ClusterID != nil {
			out["cluster_id"] = *res.ClusterID
		}
		return dp.OK(out)
	}
	return dp.Unsupported("unknown admin action " + a.Action)
}
