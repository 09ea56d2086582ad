package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// driver holds the clients of one actor: a producer (re-created when its settings change), a
// group consumer, a transactional producer and an admin client.
type driver struct {
	log       *slog.Logger
	bootstrap string
	base      []kgo.Opt

	prod    *kgo.Client
	prodKey string

	adm    *kadm.Client
	admCl  *kgo.Client
	group  *kgo.Client
	gname  string
	amu    sync.Mutex
	assign map[string]map[int32]bool

	txn    *kgo.Client
	txnIDs string
}

// opTimeout stays below the harness's default call timeout (15s) so a stuck op answers.
const opTimeout = 10 * time.Second

func saslMechanism(mech, user, pass string) (sasl.Mechanism, error) {
	switch mech {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, &unsupported{"sasl mechanism " + mech}
}

func (d *driver) opts(extra ...kgo.Opt) []kgo.Opt {
	return append(append([]kgo.Opt{}, d.base...), extra...)
}

func (d *driver) admin0() (*kadm.Client, error) {
	if d.adm == nil {
		cl, err := kgo.NewClient(d.opts()...)
		if err != nil {
			return nil, err
		}
		d.admCl, d.adm = cl, kadm.NewClient(cl)
	}
	return d.adm, nil
}

func (d *driver) closeAll() {
	for _, c := range []*kgo.Client{d.prod, d.group, d.txn, d.admCl} {
		if c != nil {
			c.Close()
		}
	}
	d.prod, d.group, d.txn, d.admCl, d.adm = nil, nil, nil, nil, nil
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// ---- topics ----

type createTopicArgs struct {
	Topic             string            `json:"topic"`
	Partitions        *int32            `json:"partitions"`
	ReplicationFactor *int16            `json:"replication_factor"`
	Configs           map[string]string `json:"configs"`
	ValidateOnly      bool              `json:"validate_only"`
}

func (d *driver) createTopic(a createTopicArgs) (map[string]any, error) {
	adm, err := d.admin0()
	if err != nil {
		return nil, err
	}
	p, rf := int32(1), int16(1)
	if a.Partitions != nil {
		p = *a.Partitions
	}
	if a.ReplicationFactor != nil {
		rf = *a.ReplicationFactor
	}
	cfg := map[string]*string{}
	for k, v := range a.Configs {
		cfg[k] = kadm.StringPtr(v)
	}
	c, cancel := ctx()
	defer cancel()
	var resp kadm.CreateTopicResponse
	if a.ValidateOnly {
		rs, err := adm.ValidateCreateTopics(c, p, rf, cfg, a.Topic)
		if err != nil {
			return nil, err
		}
		resp = rs[a.Topic]
	} else {
		r, err := adm.CreateTopics(c, p, rf, cfg, a.Topic)
		if err != nil {
			return nil, err
		}
		resp = r[a.Topic]
	}
	if resp.Err != nil {
		n, _ := errName(resp.Err)
		return nil, &opErr{n, resp.ErrMessage}
	}
	return map[string]any{}, nil
}

func (d *driver) deleteTopic(topic string) (map[string]any, error) {
	adm, err := d.admin0()
	if err != nil {
		return nil, err
	}
	c, cancel := ctx()
	defer cancel()
	r, err := adm.DeleteTopics(c, topic)
	if err != nil {
		return nil, err
	}
	if e := r[topic].Err; e != nil {
		n, _ := errName(e)
		return nil, &opErr{n, r[topic].ErrMessage}
	}
	return map[string]any{}, nil
}

type metadataArgs struct {
	Topics          []string `json:"topics"`
	AllowAutoCreate bool     `json:"allow_auto_create"`
}

func (d *driver) metadata(a metadataArgs) (map[string]any, error) {
	if _, err := d.admin0(); err != nil {
		return nil, err
	}
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = a.AllowAutoCreate
	for _, t := range a.Topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	if len(a.Topics) == 0 {
		req.Topics = nil
	}
	c, cancel := ctx()
	defer cancel()
	resp, err := req.RequestWith(c, d.admCl)
	if err != nil {
		return nil, err
	}
	topics := []any{}
	for _, t := range resp.Topics {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		}
		topics = append(topics, map[string]any{"topic": name, "partitions": len(t.Partitions),
			"error": nameOf(kerr.ErrorForCode(t.ErrorCode))})
	}
	sort.Slice(topics, func(i, j int) bool {
		return topics[i].(map[string]any)["topic"].(string) < topics[j].(map[string]any)["topic"].(string)
	})
	return map[string]any{"topics": topics}, nil
}

// ---- produce ----

type headerArg struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

type recordArg struct {
	Key       *string     `json:"key"`
	Value     *string     `json:"value"`
	Headers   []headerArg `json:"headers"`
	Partition *int32      `json:"partition"`
	Timestamp *int64      `json:"timestamp"`
}

type produceArgs struct {
	Topic         string      `json:"topic"`
	Records       []recordArg `json:"records"`
	Acks          *int        `json:"acks"`
	Compression   string      `json:"compression"`
	Idempotent    bool        `json:"idempotent"`
	Transactional bool        `json:"transactional"`
}

func bytesOf(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, &unsupported{"compression " + name}
}

// explicitKey marks a record whose partition the scenario chose.
type explicitKey struct{}

// partitioner honours explicit partitions and otherwise uses the library's default (sticky
// key partitioner), so one producer serves both kinds of records.
func partitioner() kgo.Opt {
	return kgo.RecordPartitioner(hybrid{kgo.StickyKeyPartitioner(nil)})
}

type hybrid struct{ inner kgo.Partitioner }

func (h hybrid) ForTopic(t string) kgo.TopicPartitioner { return hybridTopic{h.inner.ForTopic(t)} }

type hybridTopic struct{ inner kgo.TopicPartitioner }

func explicit(r *kgo.Record) bool { return r.Context != nil && r.Context.Value(explicitKey{}) != nil }

func (h hybridTopic) RequiresConsistency(r *kgo.Record) bool {
	return explicit(r) || h.inner.RequiresConsistency(r)
}

func (h hybridTopic) Partition(r *kgo.Record, n int) int {
	if explicit(r) {
		return int(r.Partition)
	}
	return h.inner.Partition(r, n)
}

func (d *driver) producer(a produceArgs) (*kgo.Client, error) {
	acks := -1
	if a.Acks != nil {
		acks = *a.Acks
	}
	key := fmt.Sprint(acks, a.Compression, a.Idempotent)
	if d.prod != nil && d.prodKey == key {
		return d.prod, nil
	}
	if d.prod != nil {
		d.prod.Close()
		d.prod = nil
	}
	cc, err := codec(a.Compression)
	if err != nil {
		return nil, err
	}
	opts := d.opts(kgo.ProducerBatchCompression(cc), kgo.RecordRetries(20), partitioner(),
		kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0))
	switch acks {
	case 0:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	case 1:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case -1:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	default:
		return nil, fmtErr("acks %d", acks)
	}
	if !a.Idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmtErr("%v", err)
	}
	d.prod, d.prodKey = cl, key
	return cl, nil
}

func (d *driver) produce(a produceArgs) (map[string]any, error) {
	var cl *kgo.Client
	var err error
	if a.Transactional {
		if d.txn == nil {
			return nil, fmtErr("transactional produce before txn_init")
		}
		cl = d.txn
	} else if cl, err = d.producer(a); err != nil {
		return nil, err
	}
	results := make([]any, len(a.Records))
	var wg sync.WaitGroup
	c, cancel := ctx()
	defer cancel()
	for i, ra := range a.Records {
		r := &kgo.Record{Topic: a.Topic, Key: bytesOf(ra.Key), Value: bytesOf(ra.Value)}
		if ra.Partition != nil {
			r.Partition = *ra.Partition
			r.Context = context.WithValue(context.Background(), explicitKey{}, true)
		}
		if ra.Timestamp != nil {
			r.Timestamp = time.UnixMilli(*ra.Timestamp)
		}
		for _, h := range ra.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: bytesOf(h.Value)})
		}
		wg.Add(1)
		cl.Produce(c, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			off := r.Offset
			if a.Acks != nil && *a.Acks == 0 {
				off = -1 // no broker answer with acks=0
			}
			res := map[string]any{"partition": r.Partition, "offset": off, "timestamp": -1, "error": nameOf(err)}
			if err != nil {
				res["offset"] = -1
				res["message"] = err.Error()
			}
			results[i] = res
		})
	}
	wg.Wait()
	return map[string]any{"results": results}, nil
}

// ---- consume ----

type consumeArgs struct {
	Topic             string  `json:"topic"`
	Partitions        []int32 `json:"partitions"`
	From              any     `json:"from"`
	MaxRecords        int     `json:"max_records"`
	TimeoutMs         int     `json:"timeout_ms"`
	Isolation         string  `json:"isolation"`
	FetchMaxBytes     int32   `json:"fetch_max_bytes"`
	PartitionMaxBytes int32   `json:"partition_max_bytes"`
	FetchMaxWaitMs    int     `json:"fetch_max_wait_ms"`
	FetchMinBytes     int32   `json:"fetch_min_bytes"`
}

func startOffset(from any) (kgo.Offset, error) {
	switch f := from.(type) {
	case nil, string:
		switch f {
		case nil, "earliest":
			return kgo.NewOffset().AtStart(), nil
		case "latest":
			return kgo.NewOffset().AtEnd(), nil
		}
	case float64:
		return kgo.NewOffset().At(int64(f)), nil
	}
	return kgo.Offset{}, fmtErr("bad from %v", from)
}

func isolation(s string) (kgo.Opt, error) {
	switch s {
	case "", "read_uncommitted":
		return kgo.FetchIsolationLevel(kgo.ReadUncommitted()), nil
	case "read_committed":
		return kgo.FetchIsolationLevel(kgo.ReadCommitted()), nil
	}
	return nil, fmtErr("bad isolation %q", s)
}

func (d *driver) consume(a consumeArgs) (map[string]any, error) {
	off, err := startOffset(a.From)
	if err != nil {
		return nil, err
	}
	iso, err := isolation(a.Isolation)
	if err != nil {
		return nil, err
	}
	opts := d.opts(iso)
	if len(a.Partitions) > 0 {
		ps := map[int32]kgo.Offset{}
		for _, p := range a.Partitions {
			ps[p] = off
		}
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{a.Topic: ps}))
	} else {
		opts = append(opts, kgo.ConsumeTopics(a.Topic), kgo.ConsumeResetOffset(off))
	}
	if a.FetchMaxBytes > 0 {
		opts = append(opts, kgo.FetchMaxBytes(a.FetchMaxBytes))
	}
	if a.PartitionMaxBytes > 0 {
		opts = append(opts, kgo.FetchMaxPartitionBytes(a.PartitionMaxBytes))
	}
	if a.FetchMaxWaitMs > 0 {
		opts = append(opts, kgo.FetchMaxWait(time.Duration(a.FetchMaxWaitMs)*time.Millisecond))
	}
	if a.FetchMinBytes > 0 {
		opts = append(opts, kgo.FetchMinBytes(a.FetchMinBytes))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmtErr("%v", err)
	}
	defer cl.Close()
	timeout := time.Duration(a.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	recs, err := poll(cl, a.MaxRecords, timeout)
	if err != nil && len(recs) == 0 {
		return nil, err
	}
	return map[string]any{"records": recs}, nil
}

// poll collects up to max records (0: no limit) until timeout. A fetch error is returned with
// what was collected.
func poll(cl *kgo.Client, max int, timeout time.Duration) ([]any, error) {
	c, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	recs := []any{}
	var firstErr error
	for c.Err() == nil && (max <= 0 || len(recs) < max) {
		n := -1
		if max > 0 {
			n = max - len(recs)
		}
		fs := cl.PollRecords(c, n)
		if fs.IsClientClosed() {
			break
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if firstErr == nil && !isCtxErr(err) {
				firstErr = err
			}
		})
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, recordJSON(r)) })
		if firstErr != nil {
			break
		}
	}
	return recs, firstErr
}

func isCtxErr(err error) bool {
	return err == context.DeadlineExceeded || err == context.Canceled
}

func strOrNil(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

func recordJSON(r *kgo.Record) map[string]any {
	hs := []any{}
	for _, h := range r.Headers {
		hs = append(hs, map[string]any{"key": h.Key, "value": strOrNil(h.Value)})
	}
	tt := "create"
	if r.Attrs.TimestampType() == 1 {
		tt = "log_append"
	}
	return map[string]any{"topic": r.Topic, "partition": r.Partition, "offset": r.Offset,
		"key": strOrNil(r.Key), "value": strOrNil(r.Value), "headers": hs,
		"timestamp": r.Timestamp.UnixMilli(), "timestamp_type": tt}
}

// ---- list offsets ----

type listOffsetsArgs struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Spec      any    `json:"spec"`
	Isolation string `json:"isolation"`
}

func (d *driver) listOffsets(a listOffsetsArgs) (map[string]any, error) {
	if _, err := d.admin0(); err != nil {
		return nil, err
	}
	var ts int64
	switch s := a.Spec.(type) {
	case string:
		switch s {
		case "earliest":
			ts = -2
		case "latest":
			ts = -1
		case "max_timestamp":
			ts = -3
		default:
			return nil, fmtErr("bad spec %q", s)
		}
	case map[string]any:
		t, ok := s["timestamp"].(float64)
		if !ok {
			return nil, fmtErr("bad spec %v", s)
		}
		ts = int64(t)
	default:
		return nil, fmtErr("bad spec %v", a.Spec)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	if a.Isolation == "read_committed" {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = a.Topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = a.Partition, ts, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	c, cancel := ctx()
	defer cancel()
	resp, err := req.RequestWith(c, d.admCl)
	if err != nil {
		return nil, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, err
			}
			return map[string]any{"offset": p.Offset, "timestamp": p.Timestamp}, nil
		}
	}
	return nil, fmtErr("empty ListOffsets response")
}
