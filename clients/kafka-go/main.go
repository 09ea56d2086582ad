// Command driver is the conformance driver for github.com/segmentio/kafka-go (clients/README.md).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	dp "github.com/klite/klite/clients/internal/driverproto"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

func main() { dp.Main(&driver{}) }

const opTimeout = 30 * time.Second

type driver struct {
	hello  dp.Hello
	mech   sasl.Mechanism
	tls    *tls.Config // hello's tls, nil on plaintext
	client *kafka.Client
	tr     *kafka.Transport
	group  *groupState
}

func libraryVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "github.com/segmentio/kafka-go" {
				return m.Version
			}
		}
	}
	return "unknown"
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

func (d *driver) clientID() string {
	if d.hello.ClientID != "" {
		return d.hello.ClientID
	}
	return "klite-kafka-go-driver"
}

func (d *driver) dialer() *kafka.Dialer {
	return &kafka.Dialer{ClientID: d.clientID(), Timeout: 10 * time.Second, DualStack: true, SASLMechanism: d.mech, TLS: d.tls}
}

// errName maps a kafka-go error to a Kafka error name.
func errName(err error) string {
	var ke kafka.Error
	if errors.As(err, &ke) {
		return dp.CodeName(int16(ke))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "TIMEOUT"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "TIMEOUT"
	}
	return "CLIENT_ERROR"
}

func errAnswer(err error) dp.Answer { return dp.Err(errName(err), err.Error()) }

func errOrNil(err error) any {
	if err == nil {
		return nil
	}
	return errName(err)
}

func (d *driver) Close() {
	if d.group != nil {
		d.group.close()
		d.group = nil
	}
	if d.tr != nil {
		d.tr.CloseIdleConnections()
	}
}

func (d *driver) Handle(c *dp.Cmd) dp.Answer {
	if c.Op == "hello" {
		if err := c.Decode(&d.hello); err != nil {
			return dp.Err("CLIENT_ERROR", err.Error())
		}
		if s := d.hello.SASL; s != nil {
			var err error
			switch s.Mechanism {
			case "PLAIN":
				d.mech = plain.Mechanism{Username: s.User, Password: s.Password}
			case "SCRAM-SHA-256":
				d.mech, err = scram.Mechanism(scram.SHA256, s.User, s.Password)
			case "SCRAM-SHA-512":
				d.mech, err = scram.Mechanism(scram.SHA512, s.User, s.Password)
			default:
				return dp.Unsupported("SASL mechanism " + s.Mechanism)
			}
			if err != nil {
				return dp.Err("CLIENT_ERROR", err.Error())
			}
		}
		d.tls = nil
		if t := d.hello.TLS; t != nil {
			var err error
			if d.tls, err = t.Config(); err != nil {
				return dp.Err("CLIENT_ERROR", err.Error())
			}
		}
		d.tr = &kafka.Transport{ClientID: d.clientID(), SASL: d.mech, TLS: d.tls, DialTimeout: 10 * time.Second}
		d.client = &kafka.Client{Addr: kafka.TCP(d.hello.Bootstrap), Transport: d.tr, Timeout: opTimeout}
		return dp.OK(map[string]any{"client": "kafka-go", "library_version": libraryVersion()})
	}
	ops := dp.Ops{Produce: d.produce, Consume: d.consume, ListOffsets: d.listOffsets,
		GroupSubscribe: d.groupSubscribe, GroupCommitted: d.groupCommitted, Admin: d.adminAction,
		Subscribed: d.subscribed, GroupPoll: func(a dp.GroupPoll) dp.Answer { return d.group.poll(a) },
		GroupCommit: func(a dp.GroupCommit) dp.Answer { return d.group.commit(a) }, StandaloneCommit: d.standaloneCommit}
	if a, ok := ops.Dispatch(c); ok {
		return a
	}
	switch c.Op {
	case "create_topic":
		var a dp.CreateTopic
		c.Decode(&a)
		tc := kafka.TopicConfig{Topic: a.Topic, NumPartitions: int(a.Parts()), ReplicationFactor: int(a.RF())}
		for k, v := range a.Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		cx, cancel := ctx()
		if a.ValidateOnly {
			// kafka-go waits after CreateTopics until the new topics show up in its metadata
			// cache, which a validate-only request never makes happen: bound that wait.
			cx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
		}
		defer cancel()
		res, err := d.client.CreateTopics(cx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{tc}, ValidateOnly: a.ValidateOnly})
		if err != nil {
			return errAnswer(err)
		}
		if e := res.Errors[a.Topic]; e != nil {
			return errAnswer(e)
		}
		return dp.OK(nil)
	case "delete_topic":
		var a struct{ Topic string }
		c.Decode(&a)
		cx, cancel := ctx()
		defer cancel()
		res, err := d.client.DeleteTopics(cx, &kafka.DeleteTopicsRequest{Topics: []string{a.Topic}})
		if err != nil {
			return errAnswer(err)
		}
		if e := res.Errors[a.Topic]; e != nil {
			return errAnswer(e)
		}
		return dp.OK(nil)
	case "metadata":
		var a dp.Metadata
		c.Decode(&a)
		if a.AllowAutoCreate {
			return dp.Unsupported("kafka-go's Metadata request never asks the broker to auto-create topics")
		}
		cx, cancel := ctx()
		defer cancel()
		res, err := d.freshMetadata(cx, a.Topics)
		if err != nil {
			return errAnswer(err)
		}
		topics := []map[string]any{}
		for _, t := range res.Topics {
			topics = append(topics, map[string]any{"topic": t.Name, "partitions": len(t.Partitions), "error": errOrNil(t.Error)})
		}
		return dp.OK(map[string]any{"topics": topics})
	case "group_leave":
		if d.group != nil {
			err := d.group.close()
			d.group = nil
			if err != nil {
				return errAnswer(err)
			}
		}
		return dp.OK(nil)
	case "txn_init", "txn_begin", "txn_commit", "txn_abort", "txn_send_offsets":
		return dp.Unsupported("kafka-go has no transactional producer (only raw InitProducerID/EndTxn requests)")
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

// freshMetadata asks a new Transport: kafka-go's Client.Metadata answers from the cache of its
// Transport (refreshed every 6 s), which would hide topics and partitions created just before.
func (d *driver) freshMetadata(cx context.Context, topics []string) (*kafka.MetadataResponse, error) {
	tr := &kafka.Transport{ClientID: d.clientID(), SASL: d.mech, TLS: d.tls, DialTimeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(d.hello.Bootstrap), Transport: tr, Timeout: opTimeout}
	if len(topics) == 0 {
		topics = nil // all topics (an empty list asks for none)
	}
	return cl.Metadata(cx, &kafka.MetadataRequest{Topics: topics})
}

// ---- produce ----

// explicitBalancer sends records that carry an explicit partition (in WriterData) there and
// the rest through kafka-go's default balancer (round-robin).
type explicitBalancer struct{ def kafka.Balancer }

type wdata struct {
	idx       int
	partition *int32
}

func (b explicitBalancer) Balance(m kafka.Message, partitions ...int) int {
	if w, ok := m.WriterData.(wdata); ok && w.partition != nil {
		return int(*w.partition)
	}
	return b.def.Balance(m, partitions...)
}

var codecs = map[string]kafka.Compression{"gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd}

func (d *driver) produce(a dp.Produce) dp.Answer {
	if a.Idempotent {
		return dp.Unsupported("kafka-go has no idempotent producer")
	}
	if a.Transactional {
		return dp.Unsupported("kafka-go has no transactional producer")
	}
	codec := a.Codec()
	comp, ok := codecs[codec]
	if !ok && codec != "none" {
		return dp.Unsupported("compression " + codec + " not supported by kafka-go")
	}
	acks := a.AcksOr()
	results := make([]dp.ProduceResult, len(a.Records))
	var mu sync.Mutex
	w := &kafka.Writer{
		Addr:         kafka.TCP(d.hello.Bootstrap),
		Topic:        a.Topic,
		Balancer:     explicitBalancer{def: &kafka.RoundRobin{}},
		RequiredAcks: kafka.RequiredAcks(acks),
		BatchTimeout: 5 * time.Millisecond,
		BatchSize:    len(a.Records) + 1,
		WriteTimeout: opTimeout,
		Transport:    d.tr,
		Completion: func(msgs []kafka.Message, err error) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				wd := m.WriterData.(wdata)
				// Timestamp stays -1: kafka-go hands back the message's own time, never the
				// broker's (LogAppendTime topics included).
				r := dp.ProduceResult{Partition: int32(m.Partition), Offset: m.Offset, Timestamp: -1}
				if acks == 0 {
					r.Offset = -1
				}
				if err != nil {
					r.Offset = -1
					r.Error = errName(err)
				}
				results[wd.idx] = r
			}
		},
	}
	if codec != "none" {
		w.Compression = comp
	}
	defer w.Close()
	msgs := make([]kafka.Message, len(a.Records))
	for i, r := range a.Records {
		m := kafka.Message{Key: dp.BytesIn(r.Key), Value: dp.BytesIn(r.Value), WriterData: wdata{idx: i, partition: r.Partition}}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: dp.BytesIn(h.Value)})
		}
		if r.Timestamp != nil {
			m.Time = time.UnixMilli(*r.Timestamp)
		}
		msgs[i] = m
		results[i] = dp.ProduceResult{Partition: -1, Offset: -1, Timestamp: -1}
	}
	cx, cancel := ctx()
	defer cancel()
	err := w.WriteMessages(cx, msgs...)
	if err != nil {
		var we kafka.WriteErrors
		if errors.As(err, &we) {
			mu.Lock()
			for i, e := range we {
				if e != nil {
					results[i].Error = errName(e)
					results[i].Offset = -1
					slog.Warn("record failed", "idx", i, "err", e)
				}
			}
			mu.Unlock()
		} else {
			mu.Lock()
			for i := range results {
				if results[i].Error == nil && results[i].Partition < 0 {
					results[i].Error = errName(err)
				}
			}
			mu.Unlock()
			slog.Warn("write failed", "err", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return dp.OK(map[string]any{"results": results})
}

// ---- consume ----

func toOut(m kafka.Message) dp.OutRecord {
	r := dp.OutRecord{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset, Key: dp.Bytes(m.Key),
		Value: dp.Bytes(m.Value), Headers: []dp.Header{}, Timestamp: -1}
	if !m.Time.IsZero() {
		r.Timestamp = m.Time.UnixMilli()
	}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, dp.Header{Key: h.Key, Value: dp.Bytes(h.Value)})
	}
	return r
}

func isolation(s string) kafka.IsolationLevel {
	if dp.ReadCommitted(s) {
		return kafka.ReadCommitted
	}
	return kafka.ReadUncommitted
}

func (d *driver) partitions(topic string) ([]int, error) {
	cx, cancel := ctx()
	defer cancel()
	res, err := d.freshMetadata(cx, []string{topic})
	if err != nil {
		return nil, err
	}
	for _, t := range res.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return nil, t.Error
			}
			var ps []int
			for _, p := range t.Partitions {
				ps = append(ps, p.ID)
			}
			sort.Ints(ps)
			return ps, nil
		}
	}
	return nil, kafka.UnknownTopicOrPartition
}

func (d *driver) readerConfig(topic string, partition int, iso string) kafka.ReaderConfig {
	return kafka.ReaderConfig{Brokers: []string{d.hello.Bootstrap}, Topic: topic, Partition: partition,
		Dialer: d.dialer(), IsolationLevel: isolation(iso), MaxWait: 500 * time.Millisecond}
}

func (d *driver) consume(a dp.Consume) dp.Answer {
	var parts []int
	if len(a.Partitions) > 0 {
		for _, p := range a.Partitions {
			parts = append(parts, int(p))
		}
	} else {
		var err error
		if parts, err = d.partitions(a.Topic); err != nil {
			return errAnswer(err)
		}
	}
	start := a.Start()
	off := start.Offset
	if start.Earliest {
		off = kafka.FirstOffset
	} else if start.Latest {
		off = kafka.LastOffset
	}
	cx, cancel := context.WithTimeout(context.Background(), time.Duration(dp.Ms(a.TimeoutMs, 10000))*time.Millisecond)
	defer cancel()
	out := make(chan kafka.Message)
	errc := make(chan error, len(parts))
	var wg sync.WaitGroup
	var readers []*kafka.Reader
	for _, p := range parts {
		cfg := d.readerConfig(a.Topic, p, a.Isolation)
		if a.FetchMaxBytes != nil {
			cfg.MaxBytes = int(*a.FetchMaxBytes)
		}
		if a.PartitionMaxBytes != nil && (cfg.MaxBytes == 0 || int(*a.PartitionMaxBytes) < cfg.MaxBytes) {
			cfg.MaxBytes = int(*a.PartitionMaxBytes)
		}
		if a.FetchMinBytes != nil {
			cfg.MinBytes = int(*a.FetchMinBytes)
		}
		if a.FetchMaxWaitMs != nil {
			cfg.MaxWait = time.Duration(*a.FetchMaxWaitMs) * time.Millisecond
		}
		r := kafka.NewReader(cfg)
		readers = append(readers, r)
		if err := r.SetOffset(off); err != nil {
			cancel()
			for _, r := range readers {
				r.Close()
			}
			return errAnswer(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := r.FetchMessage(cx)
				if err != nil {
					if cx.Err() == nil {
						errc <- err
					}
					return
				}
				select {
				case out <- m:
				case <-cx.Done():
					return
				}
			}
		}()
	}
	recs := []dp.OutRecord{}
	var ferr error
loop:
	for a.MaxRecords <= 0 || len(recs) < a.MaxRecords {
		select {
		case m := <-out:
			recs = append(recs, toOut(m))
		case e := <-errc:
			slog.Warn("fetch error", "err", e)
			if ferr == nil {
				ferr = e
			}
		case <-cx.Done():
			break loop
		}
	}
	cancel()
	wg.Wait()
	for _, r := range readers {
		r.Close()
	}
	if ferr != nil && len(recs) == 0 {
		return errAnswer(ferr)
	}
	return dp.OK(map[string]any{"records": recs})
}

func (d *driver) listOffsets(a dp.ListOffsets) dp.Answer {
	var ts int64
	switch a.Spec.Kind {
	case "earliest":
		ts = kafka.FirstOffset
	case "latest":
		ts = kafka.LastOffset
	case "timestamp":
		ts = a.Spec.Timestamp
	case "max_timestamp":
		return dp.Unsupported("kafka-go's ListOffsets has no max-timestamp spec")
	default:
		return dp.Err("CLIENT_ERROR", "bad spec "+a.Spec.Kind)
	}
	cx, cancel := ctx()
	defer cancel()
	res, err := d.client.ListOffsets(cx, &kafka.ListOffsetsRequest{
		Topics:         map[string][]kafka.OffsetRequest{a.Topic: {{Partition: int(a.Partition), Timestamp: ts}}},
		IsolationLevel: isolation(a.Isolation)})
	if err != nil {
		return errAnswer(err)
	}
	for _, p := range res.Topics[a.Topic] {
		if p.Partition != int(a.Partition) {
			continue
		}
		if p.Error != nil {
			return errAnswer(p.Error)
		}
		switch a.Spec.Kind {
		case "earliest":
			return dp.OK(map[string]any{"offset": p.FirstOffset, "timestamp": -1})
		case "latest":
			return dp.OK(map[string]any{"offset": p.LastOffset, "timestamp": -1})
		}
		for off := range p.Offsets {
			// kafka-go replaces the broker's timestamp with the requested one: not exposed.
			return dp.OK(map[string]any{"offset": off, "timestamp": -1})
		}
	}
	return dp.Err("CLIENT_ERROR", "no result for partition")
}

// ---- groups (kafka-go's ConsumerGroup/Generation API) ----

type tp struct {
	topic string
	part  int
}

type item struct {
	msg kafka.Message
	gen *kafka.Generation
}

type groupState struct {
	id     string
	d      *driver
	cg     *kafka.ConsumerGroup
	auto   bool
	iso    string
	cancel context.CancelFunc
	done   chan struct{}
	recs   chan item

	mu       sync.Mutex
	gen      *kafka.Generation
	consumed map[tp]int64
}

func (d *driver) groupSubscribe(a dp.GroupSubscribe) dp.Answer {
	if a.GroupProtocol != "" && a.GroupProtocol != "classic" {
		return dp.Unsupported("kafka-go has only the classic group protocol")
	}
	if d.group != nil {
		d.group.close()
		d.group = nil
	}
	var bal kafka.GroupBalancer
	switch a.Assignor {
	case "", "range":
		bal = kafka.RangeGroupBalancer{}
	case "roundrobin":
		bal = kafka.RoundRobinGroupBalancer{}
	default:
		return dp.Unsupported("kafka-go has no " + a.Assignor + " assignor (only range, roundrobin, rack-affinity; eager protocol only)")
	}
	if a.InstanceID != "" {
		return dp.Unsupported("kafka-go has no static group membership (group.instance.id)")
	}
	cfg := kafka.ConsumerGroupConfig{ID: a.Group, Brokers: []string{d.hello.Bootstrap}, Dialer: d.dialer(),
		Topics: a.Topics, GroupBalancers: []kafka.GroupBalancer{bal}, StartOffset: kafka.FirstOffset,
		Logger:      kafka.LoggerFunc(func(f string, args ...any) { slog.Debug(fmt.Sprintf(f, args...)) }),
		ErrorLogger: kafka.LoggerFunc(func(f string, args ...any) { slog.Warn(fmt.Sprintf(f, args...)) })}
	if a.From == "latest" {
		cfg.StartOffset = kafka.LastOffset
	}
	if a.SessionTimeoutMs > 0 {
		cfg.SessionTimeout = time.Duration(a.SessionTimeoutMs) * time.Millisecond
		if hb := cfg.SessionTimeout / 3; hb < 3*time.Second {
			cfg.HeartbeatInterval = hb
		}
	}
	if a.HeartbeatMs > 0 {
		cfg.HeartbeatInterval = time.Duration(a.HeartbeatMs) * time.Millisecond
	}
	if a.RebalanceTimeoutMs > 0 {
		cfg.RebalanceTimeout = time.Duration(a.RebalanceTimeoutMs) * time.Millisecond
	}
	cg, err := kafka.NewConsumerGroup(cfg)
	if err != nil {
		return errAnswer(err)
	}
	cx, cancel := context.WithCancel(context.Background())
	gs := &groupState{id: a.Group, d: d, cg: cg, auto: a.AutoCommit, iso: a.Isolation, cancel: cancel, done: make(chan struct{}),
		recs: make(chan item), consumed: map[tp]int64{}}
	go gs.run(cx)
	d.group = gs
	return dp.OK(nil)
}

func (gs *groupState) run(cx context.Context) {
	defer close(gs.done)
	for cx.Err() == nil {
		gen, err := gs.cg.Next(cx)
		if err != nil {
			if errors.Is(err, kafka.ErrGroupClosed) || cx.Err() != nil {
				return
			}
			slog.Warn("group next generation", "err", err)
			select {
			case <-cx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		slog.Info("group generation", "id", gen.ID, "assignments", gen.Assignments)
		gs.mu.Lock()
		gs.gen = gen
		gs.mu.Unlock()
		for topic, parts := range gen.Assignments {
			for _, pa := range parts {
				topic, pa := topic, pa
				gen.Start(func(gcx context.Context) {
					r := kafka.NewReader(gs.d.readerConfig(topic, pa.ID, gs.iso))
					defer r.Close()
					if err := r.SetOffset(pa.Offset); err != nil {
						slog.Warn("set offset", "err", err)
						return
					}
					for {
						m, err := r.FetchMessage(gcx)
						if err != nil {
							if gcx.Err() == nil {
								slog.Warn("group fetch", "topic", topic, "partition", pa.ID, "err", err)
							}
							return
						}
						select {
						case gs.recs <- item{m, gen}:
						case <-gcx.Done():
							return
						}
					}
				})
			}
		}
	}
}

func (gs *groupState) current() *kafka.Generation {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return gs.gen
}

func (gs *groupState) poll(a dp.GroupPoll) dp.Answer {
	recs := []dp.OutRecord{}
	timer := time.NewTimer(time.Duration(dp.Ms(a.TimeoutMs, 5000)) * time.Millisecond)
	defer timer.Stop()
loop:
	for a.MaxRecords <= 0 || len(recs) < a.MaxRecords {
		select {
		case it := <-gs.recs:
			if it.gen != gs.current() {
				continue // from a generation that ended
			}
			gs.mu.Lock()
			gs.consumed[tp{it.msg.Topic, it.msg.Partition}] = it.msg.Offset + 1
			gs.mu.Unlock()
			recs = append(recs, toOut(it.msg))
		case <-timer.C:
			break loop
		}
	}
	if gs.auto && len(recs) > 0 {
		// kafka-go's ConsumerGroup API has no auto-commit of its own: commit after the poll.
		if r := gs.commit(dp.GroupCommit{}); r["ok"] != true {
			slog.Warn("auto commit failed", "answer", r)
		}
	}
	asg := []dp.TopicPartition{}
	if g := gs.current(); g != nil {
		for t, ps := range g.Assignments {
			for _, p := range ps {
				asg = append(asg, dp.TopicPartition{Topic: t, Partition: int32(p.ID)})
			}
		}
	}
	dp.SortTopicPartitions(asg)
	return dp.OK(map[string]any{"records": recs, "assignment": asg})
}

func (gs *groupState) commit(a dp.GroupCommit) dp.Answer {
	g := gs.current()
	if g == nil {
		return dp.Err("CLIENT_ERROR", "no active generation (not assigned yet)")
	}
	offs := map[string][]kafka.OffsetCommit{}
	if len(a.Offsets) == 0 {
		gs.mu.Lock()
		for k, o := range gs.consumed {
			offs[k.topic] = append(offs[k.topic], kafka.OffsetCommit{Partition: k.part, Offset: o})
		}
		gs.mu.Unlock()
		if len(offs) == 0 {
			return dp.OK(nil)
		}
	} else {
		for _, o := range a.Offsets {
			offs[o.Topic] = append(offs[o.Topic], kafka.OffsetCommit{Partition: int(o.Partition), Offset: o.Offset, Metadata: o.Metadata})
		}
	}
	// Client.OffsetCommit with the generation's id and member id, rather than
	// Generation.CommitOffsets: the latter drops the per-partition errors of the response
	// (a rejected commit looked successful) and cannot carry metadata.
	cx, cancel := ctx()
	defer cancel()
	res, err := gs.d.client.OffsetCommit(cx, &kafka.OffsetCommitRequest{GroupID: g.GroupID, GenerationID: int(g.ID),
		MemberID: g.MemberID, Topics: offs})
	if err != nil {
		return errAnswer(err)
	}
	for _, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				slog.Warn("commit rejected", "partition", p.Partition, "err", p.Error)
				return errAnswer(p.Error)
			}
		}
	}
	return dp.OK(nil)
}

func (gs *groupState) close() error {
	err := gs.cg.Close()
	gs.cancel()
	select {
	case <-gs.done:
	case <-time.After(30 * time.Second):
		slog.Warn("group loop did not stop in 30s")
	}
	if errors.Is(err, kafka.ErrGroupClosed) {
		err = nil
	}
	return err
}

// standaloneCommit commits as a non-member (generation -1, no member id).
func (d *driver) standaloneCommit(a dp.GroupCommit) dp.Answer {
	if len(a.Offsets) == 0 {
		return dp.Err("CLIENT_ERROR", "standalone commit needs offsets")
	}
	offs := map[string][]kafka.OffsetCommit{}
	for _, o := range a.Offsets {
		offs[o.Topic] = append(offs[o.Topic], kafka.OffsetCommit{Partition: int(o.Partition), Offset: o.Offset, Metadata: o.Metadata})
	}
	cx, cancel := ctx()
	defer cancel()
	res, err := d.client.OffsetCommit(cx, &kafka.OffsetCommitRequest{GroupID: a.Group, GenerationID: -1, Topics: offs})
	if err != nil {
		return errAnswer(err)
	}
	for _, ps := range res.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return errAnswer(p.Error)
			}
		}
	}
	return dp.OK(nil)
}

func (d *driver) groupCommitted(a dp.GroupCommitted) dp.Answer {
	parts := make([]int, len(a.Partitions))
	for i, p := range a.Partitions {
		parts[i] = int(p)
	}
	cx, cancel := ctx()
	defer cancel()
	res, err := d.client.OffsetFetch(cx, &kafka.OffsetFetchRequest{GroupID: a.Group, Topics: map[string][]int{a.Topic: parts}})
	if err != nil {
		return errAnswer(err)
	}
	if res.Error != nil {
		return errAnswer(res.Error)
	}
	out := []dp.CommittedOffset{}
	for _, p := range res.Topics[a.Topic] {
		out = append(out, dp.CommittedOffset{Partition: int32(p.Partition), Offset: p.CommittedOffset, Metadata: p.Metadata, Error: errOrNil(p.Error)})
	}
	dp.SortCommitted(out)
	return dp.OK(map[string]any{"offsets": out})
}

// ---- admin actions ----

func (d *driver) adminAction(a dp.Admin) dp.Answer {
	cx, cancel := ctx()
	defer cancel()
	cl := d.client
	switch a.Action {
	case "list_groups":
		res, err := cl.ListGroups(cx, &kafka.ListGroupsRequest{})
		if err != nil {
			return errAnswer(err)
		}
		if res.Error != nil {
			return errAnswer(res.Error)
		}
		// kafka-go's ListGroups gives no state: describe the groups for it.
		states := map[string]string{}
		if len(res.Groups) > 0 {
			ids := []string{}
			for _, g := range res.Groups {
				ids = append(ids, g.GroupID)
			}
			ds, err := cl.DescribeGroups(cx, &kafka.DescribeGroupsRequest{GroupIDs: ids})
			if err != nil {
				return errAnswer(err)
			}
			for _, g := range ds.Groups {
				states[g.GroupID] = g.GroupState
			}
		}
		out := []map[string]any{}
		for _, g := range res.Groups {
			out = append(out, map[string]any{"group": g.GroupID, "protocol_type": g.ProtocolType, "state": states[g.GroupID]})
		}
		dp.SortByString(out, "group")
		return dp.OK(map[string]any{"groups": out})
	case "describe_groups":
		// kafka-go's DescribeGroups result drops the protocol type and the chosen protocol,
		// which every describe_groups answer must carry.
		return dp.Unsupported("kafka-go's DescribeGroups result has no protocol_type or protocol")
	case "delete_groups":
		res, err := cl.DeleteGroups(cx, &kafka.DeleteGroupsRequest{GroupIDs: a.Groups})
		if err != nil {
			return errAnswer(err)
		}
		out := []map[string]any{}
		for _, g := range a.Groups {
			out = append(out, map[string]any{"group": g, "error": errOrNil(res.Errors[g])})
		}
		dp.SortByString(out, "group")
		return dp.OK(map[string]any{"groups": out})
	case "offset_delete":
		parts := make([]int, len(a.Partitions))
		for i, p := range a.Partitions {
			parts[i] = int(p)
		}
		res, err := cl.OffsetDelete(cx, &kafka.OffsetDeleteRequest{GroupID: a.Group, Topics: map[string][]int{a.Topic: parts}})
		if err != nil {
			return errAnswer(err)
		}
		if res.Error != nil {
			return errAnswer(res.Error)
		}
		out := []map[string]any{}
		for _, p := range res.Topics[a.Topic] {
			out = append(out, map[string]any{"partition": p.Partition, "error": errOrNil(p.Error)})
		}
		sort.Slice(out, func(i, j int) bool { return out[i]["partition"].(int) < out[j]["partition"].(int) })
		return dp.OK(map[string]any{"partitions": out})
	case "delete_records":
		return dp.Unsupported("kafka-go has no DeleteRecords API")
	case "describe_configs":
		res, err := cl.DescribeConfigs(cx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
			{ResourceType: kafka.ResourceTypeTopic, ResourceName: a.Topic, ConfigNames: a.Names}}})
		if err != nil {
			return errAnswer(err)
		}
		cfgs := []map[string]any{}
		for _, r := range res.Resources {
			if r.Error != nil {
				return errAnswer(r.Error)
			}
			for _, e := range r.ConfigEntries {
				var v any = e.ConfigValue
				if e.IsSensitive {
					v = nil
				}
				cfgs = append(cfgs, map[string]any{"name": e.ConfigName, "value": v, "source": dp.ConfigSourceName(e.ConfigSource)})
			}
		}
		dp.SortByString(cfgs, "name")
		return dp.OK(map[string]any{"configs": cfgs})
	case "alter_configs":
		var cs []kafka.IncrementalAlterConfigsRequestConfig
		for k, v := range a.Configs {
			cs = append(cs, kafka.IncrementalAlterConfigsRequestConfig{Name: k, Value: v, ConfigOperation: kafka.ConfigOperationSet})
		}
		res, err := cl.IncrementalAlterConfigs(cx, &kafka.IncrementalAlterConfigsRequest{Resources: []kafka.IncrementalAlterConfigsRequestResource{
			{ResourceType: kafka.ResourceTypeTopic, ResourceName: a.Topic, Configs: cs}}})
		if err != nil {
			return errAnswer(err)
		}
		for _, r := range res.Resources {
			if r.Error != nil {
				return errAnswer(r.Error)
			}
		}
		return dp.OK(nil)
	case "create_partitions":
		res, err := cl.CreatePartitions(cx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: a.Topic, Count: a.Count}}})
		if err != nil {
			return errAnswer(err)
		}
		if e := res.Errors[a.Topic]; e != nil {
			return errAnswer(e)
		}
		return dp.OK(nil)
	case "describe_cluster":
		res, err := d.freshMetadata(cx, nil)
		if err != nil {
			return errAnswer(err)
		}
		return dp.OK(map[string]any{"brokers": len(res.Brokers), "controller": res.Controller.ID, "cluster_id": res.ClusterID})
	}
	return dp.Unsupported("unknown admin action " + a.Action)
}
