// Command driver is the conformance driver for github.com/IBM/sarama (clients/README.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	dp "github.com/klite/klite/clients/internal/driverproto"
	"github.com/xdg-go/scram"
)

const libPath = "github.com/IBM/sarama"

func main() { dp.Main(&driver{}) }

type driver struct {
	hello   dp.Hello
	client  sarama.Client
	admin   sarama.ClusterAdmin
	prod    sarama.SyncProducer
	prodKey string
	txnProd sarama.SyncProducer
	group   *groupState
}

func libraryVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if ok {
		for _, m := range bi.Deps {
			if m.Path == libPath {
				if m.Replace != nil {
					return m.Replace.Version
				}
				return m.Version
			}
		}
	}
	return "unknown"
}

func (d *driver) baseConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.ClientID = d.hello.ClientID
	if cfg.ClientID == "" {
		cfg.ClientID = "klite-sarama-driver"
	}
	cfg.Net.DialTimeout = 10 * time.Second
	if s := d.hello.SASL; s != nil {
		cfg.Net.SASL.Enable = true
		cfg.Net.SASL.User = s.User
		cfg.Net.SASL.Password = s.Password
		cfg.Net.SASL.Handshake = true
		switch s.Mechanism {
		case "PLAIN":
			cfg.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case "SCRAM-SHA-256":
			cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{gen: scram.SHA256} }
		case "SCRAM-SHA-512":
			cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{gen: scram.SHA512} }
		}
	}
	if t := d.hello.TLS; t != nil {
		tc, err := t.Config()
		if err != nil {
			slog.Error("tls settings", "err", err) // the connection then fails its handshake
		}
		cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, tc
	}
	return cfg
}

// scramClient adapts xdg-go/scram to sarama.SCRAMClient.
type scramClient struct {
	gen  scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (s *scramClient) Begin(user, pass, authz string) error {
	c, err := s.gen.NewClient(user, pass, authz)
	if err != nil {
		return err
	}
	s.conv = c.NewConversation()
	return nil
}
func (s *scramClient) Step(ch string) (string, error) { return s.conv.Step(ch) }
func (s *scramClient) Done() bool                     { return s.conv.Done() }

func (d *driver) addrs() []string { return strings.Split(d.hello.Bootstrap, ",") }

// errAnswer maps a sarama error to an answer.
func errAnswer(err error) dp.Answer {
	name, msg := errName(err)
	return dp.Err(name, msg)
}

func errName(err error) (string, string) {
	var te *sarama.TopicError
	if errors.As(err, &te) {
		return dp.CodeName(int16(te.Err)), err.Error()
	}
	var tpe *sarama.TopicPartitionError
	if errors.As(err, &tpe) {
		return dp.CodeName(int16(tpe.Err)), err.Error()
	}
	var ke sarama.KError
	if errors.As(err, &ke) {
		if ke == sarama.ErrNoError {
			return "CLIENT_ERROR", err.Error()
		}
		return dp.CodeName(int16(ke)), err.Error()
	}
	if strings.Contains(err.Error(), sarama.ErrSASLAuthenticationFailed.Error()) {
		// sarama folds the broker's SASL failure into ErrOutOfBrokers' text, without wrapping it.
		return "SASL_AUTHENTICATION_FAILED", err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sarama.ErrRequestTimedOut) {
		return "TIMEOUT", err.Error()
	}
	return "CLIENT_ERROR", err.Error()
}

func errNameOrNil(err error) any {
	if err == nil {
		return nil
	}
	n, _ := errName(err)
	return n
}

func (d *driver) Close() {
	if d.group != nil {
		d.group.close()
		d.group = nil
	}
	if d.prod != nil {
		d.prod.Close()
		d.prod = nil
	}
	if d.txnProd != nil {
		d.txnProd.Close()
		d.txnProd = nil
	}
	if d.admin != nil {
		d.admin.Close() // closes client too
		d.admin = nil
		d.client = nil
	}
}

func (d *driver) Handle(c *dp.Cmd) dp.Answer {
	if c.Op == "hello" {
		if err := c.Decode(&d.hello); err != nil {
			return dp.Err("CLIENT_ERROR", err.Error())
		}
		return dp.OK(map[string]any{"client": "sarama", "library_version": libraryVersion()})
	}
	switch c.Op {
	case "create_topic", "delete_topic", "metadata", "admin", "list_offsets", "group_committed":
		if err := d.ensureAdmin(); err != nil {
			return errAnswer(err)
		}
	}
	ops := dp.Ops{Metadata: d.metadata, Produce: d.produce, ProduceFor: d.produceFor, Consume: d.consume, ListOffsets: d.listOffsets,
		GroupSubscribe: d.groupSubscribe, GroupCommitted: d.groupCommitted, TxnInit: d.txnInit, Admin: d.adminAction,
		Subscribed: d.subscribed, GroupPoll: func(a dp.GroupPoll) dp.Answer { return d.group.poll(a) },
		GroupCommit: func(a dp.GroupCommit) dp.Answer { return d.group.commit(a) }, StandaloneCommit: d.standaloneCommit}
	if a, ok := ops.Dispatch(c); ok {
		return a
	}
	switch c.Op {
	case "create_topic":
		var a dp.CreateTopic
		c.Decode(&a)
		det := &sarama.TopicDetail{NumPartitions: a.Parts(), ReplicationFactor: a.RF()}
		if len(a.Configs) > 0 {
			det.ConfigEntries = map[string]*string{}
			for k, v := range a.Configs {
				v := v
				det.ConfigEntries[k] = &v
			}
		}
		if err := d.admin.CreateTopic(a.Topic, det, a.ValidateOnly); err != nil {
			return errAnswer(err)
		}
		return dp.OK(nil)
	case "delete_topic":
		var a struct{ Topic string }
		c.Decode(&a)
		if err := d.admin.DeleteTopic(a.Topic); err != nil {
			return errAnswer(err)
		}
		return dp.OK(nil)
	case "group_leave":
		if d.group != nil {
			err := d.group.close()
			d.group = nil
			if err != nil {
				return errAnswer(err)
			}
		}
		return dp.OK(nil)
	case "txn_begin", "txn_commit", "txn_abort":
		if d.txnProd == nil {
			return dp.Err("CLIENT_ERROR", "no transactional producer (txn_init first)")
		}
		var err error
		switch c.Op {
		case "txn_begin":
			err = d.txnProd.BeginTxn()
		case "txn_commit":
			err = d.txnProd.CommitTxn()
		default:
			err = d.txnProd.AbortTxn()
		}
		if err != nil {
			return errAnswer(err)
		}
		return dp.OK(nil)
	case "txn_send_offsets":
		var a dp.TxnSendOffsets
		c.Decode(&a)
		if d.txnProd == nil {
			return dp.Err("CLIENT_ERROR", "no transactional producer (txn_init first)")
		}
		offs := map[string][]*sarama.PartitionOffsetMetadata{}
		for _, o := range a.Offsets {
			md := o.Metadata
			offs[o.Topic] = append(offs[o.Topic], &sarama.PartitionOffsetMetadata{Partition: o.Partition, Offset: o.Offset, Metadata: &md})
		}
		if err := d.txnProd.AddOffsetsToTxn(offs, a.Group); err != nil {
			return errAnswer(err)
		}
		return dp.OK(nil)
	}
	return dp.Unsupported("unknown op")
}

// subscribed names the live group subscription, if any.
func (d *driver) subscribed() (string, bool) {
	if d.group == nil {
		return "", false
	}
	return d.group.id, true
}

func (d *driver) ensureAdmin() error {
	if d.admin != nil {
		return nil
	}
	cfg := d.baseConfig()
	cfg.Metadata.AllowAutoTopicCreation = false // admin lookups never create topics
	cl, err := sarama.NewClient(d.addrs(), cfg)
	if err != nil {
		return err
	}
	ad, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		cl.Close()
		return err
	}
	d.client, d.admin = cl, ad
	return nil
}

func (d *driver) metadata(a dp.Metadata) dp.Answer {
	b := d.client.LeastLoadedBroker()
	if b == nil {
		return dp.Err("CLIENT_ERROR", "no broker available")
	}
	req := sarama.NewMetadataRequest(d.client.Config().Version, a.Topics)
	if len(a.Topics) == 0 {
		req.Topics = nil
	}
	req.AllowAutoTopicCreation = a.AllowAutoCreate
	resp, err := b.GetMetadata(req)
	if err != nil {
		return errAnswer(err)
	}
	topics := []map[string]any{}
	for _, t := range resp.Topics {
		topics = append(topics, map[string]any{"topic": t.Name, "partitions": len(t.Partitions), "error": dp.NameOrNil(int16(t.Err))})
	}
	return dp.OK(map[string]any{"topics": topics})
}

// ---- produce ----

type recMeta struct {
	idx      int
	explicit bool
}

// partitioner uses the record's explicit partition when it has one, else sarama's default hash.
type partitioner struct{ hash sarama.Partitioner }

func newPartitioner(topic string) sarama.Partitioner {
	return &partitioner{hash: sarama.NewHashPartitioner(topic)}
}
func (p *partitioner) Partition(m *sarama.ProducerMessage, n int32) (int32, error) {
	if md, ok := m.Metadata.(*recMeta); ok && md.explicit {
		return m.Partition, nil
	}
	return p.hash.Partition(m, n)
}
func (p *partitioner) RequiresConsistency() bool { return true }

var codecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
	"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

func (d *driver) producerConfig(acks int, codec sarama.CompressionCodec, idem bool) *sarama.Config {
	cfg := d.baseConfig()
	cfg.Producer.RequiredAcks = sarama.RequiredAcks(acks)
	cfg.Producer.Compression = codec
	cfg.Producer.Idempotent = idem
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Partitioner = newPartitioner
	cfg.Producer.Retry.Max = 3
	if idem {
		cfg.Net.MaxOpenRequests = 1
	}
	return cfg
}

func (d *driver) produce(a dp.Produce) dp.Answer {
	codec, ok := codecs[a.Codec()]
	if !ok {
		return dp.Unsupported("compression " + a.Codec() + " not supported by sarama")
	}
	acks := a.AcksOr()
	var p sarama.SyncProducer
	if a.Transactional {
		if d.txnProd == nil {
			return dp.Err("CLIENT_ERROR", "no transactional producer (txn_init first)")
		}
		p = d.txnProd
	} else {
		key := fmt.Sprintf("%d/%s/%v", acks, a.Codec(), a.Idempotent)
		if d.prod == nil || d.prodKey != key {
			if d.prod != nil {
				d.prod.Close()
				d.prod = nil
			}
			np, err := sarama.NewSyncProducer(d.addrs(), d.producerConfig(acks, codec, a.Idempotent))
			if err != nil {
				return errAnswer(err)
			}
			d.prod, d.prodKey = np, key
		}
		p = d.prod
	}
	msgs := make([]*sarama.ProducerMessage, len(a.Records))
	for i, r := range a.Records {
		m := &sarama.ProducerMessage{Topic: a.Topic, Metadata: &recMeta{idx: i, explicit: r.Partition != nil}}
		if r.Key != nil {
			m.Key = sarama.ByteEncoder([]byte(*r.Key))
		}
		if r.Value != nil {
			m.Value = sarama.ByteEncoder([]byte(*r.Value))
		}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: dp.BytesIn(h.Value)})
		}
		if r.Partition != nil {
			m.Partition = *r.Partition
		}
		if r.Timestamp != nil {
			m.Timestamp = time.UnixMilli(*r.Timestamp)
		}
		msgs[i] = m
	}
	failed := map[int]error{}
	if err := p.SendMessages(msgs); err != nil {
		var pe sarama.ProducerErrors
		if !errors.As(err, &pe) {
			return errAnswer(err)
		}
		for _, e := range pe {
			failed[e.Msg.Metadata.(*recMeta).idx] = e.Err
		}
	}
	results := make([]dp.ProduceResult, len(msgs))
	for i, m := range msgs {
		r := dp.ProduceResult{Partition: m.Partition, Offset: m.Offset, Timestamp: -1}
		if !m.Timestamp.IsZero() {
			r.Timestamp = m.Timestamp.UnixMilli()
		}
		if acks == 0 {
			r.Offset = -1
		}
		if err, bad := failed[i]; bad {
			r.Error = errNameOrNil(err)
			r.Offset = -1
			slog.Warn("record failed", "idx", i, "err", err)
		}
		results[i] = r
	}
	return dp.OK(map[string]any{"results": results})
}

func (d *driver) txnInit(a dp.TxnInit) dp.Answer {
	if d.txnProd != nil {
		d.txnProd.Close()
		d.txnProd = nil
	}
	cfg := d.producerConfig(-1, sarama.CompressionNone, true)
	cfg.Producer.Transaction.ID = a.TransactionalID
	if a.TransactionTimeoutMs > 0 {
		cfg.Producer.Transaction.Timeout = time.Duration(a.TransactionTimeoutMs) * time.Millisecond
	}
	p, err := sarama.NewSyncProducer(d.addrs(), cfg)
	if err != nil {
		return errAnswer(err)
	}
	d.txnProd = p
	return dp.OK(nil)
}

// ---- consume ----

func toOut(m *sarama.ConsumerMessage) dp.OutRecord {
	r := dp.OutRecord{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: dp.Bytes(m.Key),
		Value: dp.Bytes(m.Value), Headers: []dp.Header{}, Timestamp: -1}
	if !m.Timestamp.IsZero() {
		r.Timestamp = m.Timestamp.UnixMilli()
	}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, dp.Header{Key: string(h.Key), Value: dp.Bytes(h.Value)})
	}
	return r
}

func isolation(s string) sarama.IsolationLevel {
	if dp.ReadCommitted(s) {
		return sarama.ReadCommitted
	}
	return sarama.ReadUncommitted
}

func (d *driver) consume(a dp.Consume) dp.Answer {
	cfg := d.baseConfig()
	cfg.Consumer.IsolationLevel = isolation(a.Isolation)
	cfg.Consumer.Return.Errors = true
	if a.FetchMaxBytes != nil {
		cfg.Consumer.Fetch.Max = *a.FetchMaxBytes
	}
	if a.PartitionMaxBytes != nil {
		cfg.Consumer.Fetch.Default = *a.PartitionMaxBytes
	}
	if a.FetchMinBytes != nil {
		cfg.Consumer.Fetch.Min = *a.FetchMinBytes
	}
	if a.FetchMaxWaitMs != nil {
		cfg.Consumer.MaxWaitTime = time.Duration(*a.FetchMaxWaitMs) * time.Millisecond
	}
	cl, err := sarama.NewClient(d.addrs(), cfg)
	if err != nil {
		return errAnswer(err)
	}
	defer cl.Close()
	parts := a.Partitions
	if len(parts) == 0 {
		parts, err = cl.Partitions(a.Topic)
		if err != nil {
			return errAnswer(err)
		}
	}
	cons, err := sarama.NewConsumerFromClient(cl)
	if err != nil {
		return errAnswer(err)
	}
	defer cons.Close()
	start := a.Start()
	off := start.Offset
	if start.Earliest {
		off = sarama.OffsetOldest
	} else if start.Latest {
		off = sarama.OffsetNewest
	}
	out := make(chan *sarama.ConsumerMessage)
	done := make(chan struct{})
	defer close(done)
	var pcs []sarama.PartitionConsumer
	errc := make(chan error, len(parts))
	for _, p := range parts {
		pc, err := cons.ConsumePartition(a.Topic, p, off)
		if err != nil {
			for _, o := range pcs {
				o.AsyncClose()
			}
			return errAnswer(err)
		}
		pcs = append(pcs, pc)
		go func(pc sarama.PartitionConsumer) {
			for {
				select {
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					select {
					case out <- m:
					case <-done:
						return
					}
				case e, ok := <-pc.Errors():
					if ok {
						slog.Warn("partition consumer error", "err", e)
						select {
						case errc <- e:
						default:
						}
					}
				case <-done:
					return
				}
			}
		}(pc)
	}
	defer func() {
		for _, pc := range pcs {
			pc.AsyncClose()
		}
	}()
	recs := []dp.OutRecord{}
	timer := time.NewTimer(time.Duration(dp.Ms(a.TimeoutMs, 10000)) * time.Millisecond)
	defer timer.Stop()
	for a.MaxRecords <= 0 || len(recs) < a.MaxRecords {
		select {
		case m := <-out:
			recs = append(recs, toOut(m))
			continue
		case <-timer.C:
		}
		break
	}
	return dp.OK(map[string]any{"records": recs})
}

func (d *driver) listOffsets(a dp.ListOffsets) dp.Answer {
	var t int64
	switch a.Spec.Kind {
	case "earliest":
		t = sarama.OffsetOldest
	case "latest":
		t = sarama.OffsetNewest
	case "timestamp":
		t = a.Spec.Timestamp
	case "max_timestamp":
		return dp.Unsupported("sarama's ListOffsets request stops at v6; max_timestamp needs v7")
	default:
		return dp.Err("CLIENT_ERROR", "bad spec "+a.Spec.Kind)
	}
	res, err := d.admin.ListOffsets(map[string]map[int32]int64{a.Topic: {a.Partition: t}},
		&sarama.ListOffsetsOptions{IsolationLevel: isolation(a.Isolation)})
	if err != nil {
		return errAnswer(err)
	}
	r := res[a.Topic][a.Partition]
	if r == nil {
		return dp.Err("CLIENT_ERROR", "no result for partition")
	}
	if r.Err != nil && !errors.Is(r.Err, sarama.ErrNoError) {
		return errAnswer(r.Err)
	}
	return dp.OK(map[string]any{"offset": r.Offset, "timestamp": r.Timestamp})
}

// ---- groups ----

type item struct {
	msg  *sarama.ConsumerMessage
	sess sarama.ConsumerGroupSession
}

type groupState struct {
	id     string
	g      sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
	recs   chan item

	mu   sync.Mutex
	sess sarama.ConsumerGroupSession
}

func (gs *groupState) Setup(s sarama.ConsumerGroupSession) error {
	gs.mu.Lock()
	gs.sess = s
	gs.mu.Unlock()
	slog.Info("group session", "generation", s.GenerationID(), "claims", s.Claims())
	return nil
}

func (gs *groupState) Cleanup(s sarama.ConsumerGroupSession) error {
	gs.mu.Lock()
	if gs.sess == s {
		gs.sess = nil
	}
	gs.mu.Unlock()
	return nil
}

func claimed(s sarama.ConsumerGroupSession, topic string, p int32) bool {
	for _, q := range s.Claims()[topic] {
		if q == p {
			return true
		}
	}
	return false
}

func (gs *groupState) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for m := range c.Messages() {
	offer:
		for {
			select {
			case gs.recs <- item{m, s}:
				break offer
			case <-s.Context().Done():
				return nil
			case <-tick.C:
				if !claimed(s, c.Topic(), c.Partition()) {
					return nil
				}
			}
		}
	}
	return nil
}

func (gs *groupState) current() sarama.ConsumerGroupSession {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return gs.sess
}

func (gs *groupState) assignment() []dp.TopicPartition {
	out := []dp.TopicPartition{}
	s := gs.current()
	if s == nil {
		return out
	}
	for t, ps := range s.Claims() {
		for _, p := range ps {
			out = append(out, dp.TopicPartition{Topic: t, Partition: p})
		}
	}
	dp.SortTopicPartitions(out)
	return out
}

func (gs *groupState) poll(a dp.GroupPoll) dp.Answer {
	recs := []dp.OutRecord{}
	timer := time.NewTimer(time.Duration(dp.Ms(a.TimeoutMs, 5000)) * time.Millisecond)
	defer timer.Stop()
	for a.MaxRecords <= 0 || len(recs) < a.MaxRecords {
		select {
		case it := <-gs.recs:
			if it.sess.Context().Err() != nil || !claimed(it.sess, it.msg.Topic, it.msg.Partition) {
				continue
			}
			it.sess.MarkMessage(it.msg, "")
			recs = append(recs, toOut(it.msg))
			continue
		case <-timer.C:
		}
		break
	}
	return dp.OK(map[string]any{"records": recs, "assignment": gs.assignment()})
}

func (gs *groupState) drainErrors() error {
	var last error
	for {
		select {
		case e, ok := <-gs.g.Errors():
			if !ok {
				return last
			}
			last = e
		default:
			return last
		}
	}
}

func (gs *groupState) commit(a dp.GroupCommit) dp.Answer {
	s := gs.current()
	if s == nil {
		return dp.Err("CLIENT_ERROR", "no active group session (not assigned yet)")
	}
	gs.drainErrors()
	for _, o := range a.Offsets {
		// MarkOffset only moves forward and ResetOffset only back: together they set it.
		s.MarkOffset(o.Topic, o.Partition, o.Offset, o.Metadata)
		s.ResetOffset(o.Topic, o.Partition, o.Offset, o.Metadata)
	}
	s.Commit()
	if err := gs.drainErrors(); err != nil {
		return errAnswer(err)
	}
	return dp.OK(nil)
}

func (gs *groupState) close() error {
	err := gs.g.Close()
	gs.cancel()
	select {
	case <-gs.done:
	case <-time.After(30 * time.Second):
		slog.Warn("group consume loop did not stop in 30s")
	}
	return err
}

func (d *driver) groupSubscribe(a dp.GroupSubscribe) dp.Answer {
	if a.GroupProtocol != "" && a.GroupProtocol != "classic" {
		return dp.Unsupported("sarama has only the classic group protocol")
	}
	if d.group != nil {
		d.group.close()
		d.group = nil
	}
	cfg := d.baseConfig()
	switch a.Assignor {
	case "", "range":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	case "roundrobin":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	case "sticky":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	case "cooperative-sticky":
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyCooperativeSticky()}
	default:
		return dp.Unsupported("assignor " + a.Assignor + " not in sarama")
	}
	if a.InstanceID != "" {
		cfg.Consumer.Group.InstanceId = a.InstanceID
	}
	if a.SessionTimeoutMs > 0 {
		cfg.Consumer.Group.Session.Timeout = time.Duration(a.SessionTimeoutMs) * time.Millisecond
		if hb := cfg.Consumer.Group.Session.Timeout / 3; hb < cfg.Consumer.Group.Heartbeat.Interval {
			cfg.Consumer.Group.Heartbeat.Interval = hb
		}
	}
	if a.HeartbeatMs > 0 {
		cfg.Consumer.Group.Heartbeat.Interval = time.Duration(a.HeartbeatMs) * time.Millisecond
	}
	if a.RebalanceTimeoutMs > 0 {
		cfg.Consumer.Group.Rebalance.Timeout = time.Duration(a.RebalanceTimeoutMs) * time.Millisecond
	}
	cfg.Consumer.Offsets.AutoCommit.Enable = a.AutoCommit
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	if a.From == "latest" {
		cfg.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	cfg.Consumer.IsolationLevel = isolation(a.Isolation)
	cfg.Consumer.Return.Errors = true
	g, err := sarama.NewConsumerGroup(d.addrs(), a.Group, cfg)
	if err != nil {
		return errAnswer(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gs := &groupState{id: a.Group, g: g, cancel: cancel, done: make(chan struct{}), recs: make(chan item)}
	go func() {
		defer close(gs.done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, a.Topics, gs); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				slog.Warn("group consume", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}()
	d.group = gs
	return dp.OK(nil)
}

// standaloneCommit commits as a non-member (generation -1) through the admin client.
func (d *driver) standaloneCommit(a dp.GroupCommit) dp.Answer {
	if err := d.ensureAdmin(); err != nil {
		return errAnswer(err)
	}
	if len(a.Offsets) == 0 {
		return dp.Err("CLIENT_ERROR", "standalone commit needs offsets")
	}
	offs := map[string]map[int32]sarama.OffsetAndMetadata{}
	for _, o := range a.Offsets {
		if offs[o.Topic] == nil {
			offs[o.Topic] = map[int32]sarama.OffsetAndMetadata{}
		}
		offs[o.Topic][o.Partition] = sarama.OffsetAndMetadata{Offset: o.Offset, Metadata: o.Metadata, LeaderEpoch: -1}
	}
	resp, err := d.admin.AlterConsumerGroupOffsets(a.Group, offs, nil)
	if err != nil {
		return errAnswer(err)
	}
	for _, ps := range resp.Errors {
		for _, e := range ps {
			if e != sarama.ErrNoError {
				return errAnswer(e)
			}
		}
	}
	return dp.OK(nil)
}

func (d *driver) groupCommitted(a dp.GroupCommitted) dp.Answer {
	resp, err := d.admin.ListConsumerGroupOffsets(a.Group, map[string][]int32{a.Topic: a.Partitions})
	if err != nil {
		return errAnswer(err)
	}
	if resp.Err != sarama.ErrNoError {
		return errAnswer(resp.Err)
	}
	out := []dp.CommittedOffset{}
	for _, p := range a.Partitions {
		b := resp.GetBlock(a.Topic, p)
		if b == nil {
			out = append(out, dp.CommittedOffset{Partition: p, Offset: -1})
			continue
		}
		out = append(out, dp.CommittedOffset{Partition: p, Offset: b.Offset, Metadata: b.Metadata, Error: dp.NameOrNil(int16(b.Err))})
	}
	return dp.OK(map[string]any{"offsets": out})
}

// ---- admin actions ----

func (d *driver) adminAction(a dp.Admin) dp.Answer {
	ad := d.admin
	switch a.Action {
	case "list_groups":
		gs, err := ad.ListConsumerGroups()
		if err != nil {
			return errAnswer(err)
		}
		// sarama's ListConsumerGroups gives no state: describe the groups for it.
		names := make([]string, 0, len(gs))
		for g := range gs {
			names = append(names, g)
		}
		states := map[string]string{}
		if len(names) > 0 {
			ds, err := ad.DescribeConsumerGroups(names)
			if err != nil {
				return errAnswer(err)
			}
			for _, g := range ds {
				states[g.GroupId] = g.State
			}
		}
		out := []map[string]any{}
		for g, pt := range gs {
			out = append(out, map[string]any{"group": g, "protocol_type": pt, "state": states[g]})
		}
		dp.SortByString(out, "group")
		return dp.OK(map[string]any{"groups": out})
	case "describe_groups":
		ds, err := ad.DescribeConsumerGroups(a.Groups)
		if err != nil {
			return errAnswer(err)
		}
		out := []map[string]any{}
		for _, g := range ds {
			members := []map[string]any{}
			for id, m := range g.Members {
				asg := []dp.TopicPartition{}
				if ma, err := m.GetMemberAssignment(); err == nil && ma != nil {
					for t, ps := range ma.Topics {
						for _, p := range ps {
							asg = append(asg, dp.TopicPartition{Topic: t, Partition: p})
						}
					}
				}
				dp.SortTopicPartitions(asg)
				var inst any
				if m.GroupInstanceId != nil {
					inst = *m.GroupInstanceId
				}
				members = append(members, map[string]any{"member_id": id, "client_id": m.ClientId, "instance_id": inst, "assignment": asg})
			}
			dp.SortByString(members, "member_id")
			out = append(out, map[string]any{"group": g.GroupId, "state": g.State, "protocol_type": g.ProtocolType,
				"protocol": g.Protocol, "members": members, "error": dp.NameOrNil(int16(g.Err))})
		}
		dp.SortByString(out, "group")
		return dp.OK(map[string]any{"groups": out})
	case "delete_groups":
		res := []map[string]any{}
		for _, g := range a.Groups {
			res = append(res, map[string]any{"group": g, "error": errNameOrNil(ad.DeleteConsumerGroup(g))})
		}
		dp.SortByString(res, "group")
		return dp.OK(map[string]any{"groups": res})
	case "offset_delete":
		res := []map[string]any{}
		for _, p := range a.Partitions {
			res = append(res, map[string]any{"partition": p, "error": errNameOrNil(ad.DeleteConsumerGroupOffset(a.Group, a.Topic, p))})
		}
		return dp.OK(map[string]any{"partitions": res})
	case "delete_records":
		if err := ad.DeleteRecords(a.Topic, map[int32]int64{a.Partition: a.Offset}); err != nil {
			return errAnswer(err)
		}
		// sarama drops DeleteRecords' low watermark: read the log start offset instead.
		res, err := ad.ListOffsets(map[string]map[int32]int64{a.Topic: {a.Partition: sarama.OffsetOldest}}, nil)
		if err != nil {
			return errAnswer(err)
		}
		r := res[a.Topic][a.Partition]
		if r == nil {
			return dp.Err("CLIENT_ERROR", "no log start offset for partition")
		}
		return dp.OK(map[string]any{"low_watermark": r.Offset})
	case "describe_log_dirs":
		// The partition's size summed over every broker's log directories (one broker here).
		brokers, _, err := ad.DescribeCluster()
		if err != nil {
			return errAnswer(err)
		}
		ids := make([]int32, 0, len(brokers))
		for _, b := range brokers {
			ids = append(ids, b.ID())
		}
		all, err := ad.DescribeLogDirs(ids)
		if err != nil {
			return errAnswer(err)
		}
		var size int64
		found := false
		for _, dirs := range all {
			for _, dir := range dirs {
				if dir.ErrorCode != sarama.ErrNoError {
					return errAnswer(dir.ErrorCode)
				}
				for _, t := range dir.Topics {
					if t.Topic != a.Topic {
						continue
					}
					for _, p := range t.Partitions {
						if p.PartitionID == a.Partition {
							size += p.Size
							found = true
						}
					}
				}
			}
		}
		if !found {
			return dp.Err("CLIENT_ERROR", "no log directory holds the partition")
		}
		return dp.OK(map[string]any{"size": size})
	case "describe_configs":
		ents, err := ad.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: a.Topic, ConfigNames: a.Names})
		if err != nil {
			return errAnswer(err)
		}
		cfgs := []map[string]any{}
		for _, e := range ents {
			var v any = e.Value
			if e.Sensitive {
				v = nil
			}
			cfgs = append(cfgs, map[string]any{"name": e.Name, "value": v, "source": dp.ConfigSourceName(int8(e.Source))})
		}
		dp.SortByString(cfgs, "name")
		return dp.OK(map[string]any{"configs": cfgs})
	case "alter_configs":
		ents := map[string]sarama.IncrementalAlterConfigsEntry{}
		for k, v := range a.Configs {
			v := v
			ents[k] = sarama.IncrementalAlterConfigsEntry{Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &v}
		}
		if err := ad.IncrementalAlterConfig(sarama.TopicResource, a.Topic, ents, false); err != nil {
			return errAnswer(err)
		}
		return dp.OK(nil)
	case "create_partitions":
		if err := ad.CreatePartitions(a.Topic, a.Count, nil, false); err != nil {
			return errAnswer(err)
		}
		return dp.OK(nil)
	case "describe_cluster":
		bs, ctrl, err := ad.DescribeCluster()
		if err != nil {
			return errAnswer(err)
		}
		out := map[string]any{"brokers": len(bs), "controller": ctrl, "cluster_id": nil}
		if b := d.client.LeastLoadedBroker(); b != nil {
			if md, err := b.GetMetadata(sarama.NewMetadataRequest(d.client.Config().Version, nil)); err == nil && md.ClusterID != nil {
				out["cluster_id"] = *md.ClusterID
			}
		}
		return dp.OK(out)
	}
	return dp.Unsupported("unknown admin action " + a.Action)
}
