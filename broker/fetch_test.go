package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchReq builds a fetch for partition 0; kgo picks the version (v13+ names topics by ID,
// so both the name and the ID are filled in).
func (tb *testBroker) fetchReq(topic string, offset int64, maxWait, minBytes, maxBytes, partMax int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, maxBytes
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	if t := tb.topic(topic); t != nil {
		rt.TopicID = t.id
	}
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = offset, partMax
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// TestFetchLongPollWokenByProduce: a fetch waiting for data (10 s max wait) is answered as
// soon as a produce lands, not at the end of its wait.
func TestFetchLongPollWokenByProduce(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "lp", 1, nil)
	fcl := tb.client(t)
	type result struct {
		resp *kmsg.FetchResponse
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		resp, err := tb.fetchReq("lp", 0, 10000, 1, 1<<20, 1<<20).RequestWith(ctxT(t, 15*time.Second), fcl)
		done <- result{resp, err, time.Since(start)}
	}()
	// The fetch must still be waiting before anything is produced.
	select {
	case r := <-done:
		t.Fatalf("fetch returned before any produce: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	if r := rawProduce(t, tb.client(t), "lp", rawBatch(-1, -1, -1, 2, 1000, 1)); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		p := r.resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.HighWatermark != 2 || len(p.RecordBatches) == 0 {
			t.Fatalf("woken fetch: error %d hwm %d %d bytes", p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
		}
		if r.took > 5*time.Second {
			t.Fatalf("fetch took %v: not woken by the produce", r.took)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("fetch not answered after the produce")
	}
}

// TestFetchLimitsAndErrors: KIP-74 limits (first batch always returned, later batches only
// within the limits), max wait expiry with min bytes unmet, OFFSET_OUT_OF_RANGE.
func TestFetchLimitsAndErrors(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "lim", 1, nil)
	cl := tb.client(t)
	var sizes []int
	for i := 0; i < 3; i++ {
		b := rawBatch(-1, -1, -1, 5, 1000, 1)
		sizes = append(sizes, len(b))
		if r := rawProduce(t, cl, "lim", b); r.ErrorCode != 0 {
			t.Fatal(r.ErrorCode)
		}
	}
	get := func(req *kmsg.FetchRequest) kmsg.FetchResponseTopicPartition {
		t.Helper()
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0]
	}
	// Limits smaller than one batch: the first batch still comes back, alone.
	if p := get(tb.fetchReq("lim", 0, 0, 1, 10, 10)); len(p.RecordBatches) != sizes[0] {
		t.Fatalf("tiny limits: %d bytes, want exactly the first batch (%d)", len(p.RecordBatches), sizes[0])
	}
	// Partition limit of two batches.
	if p := get(tb.fetchReq("lim", 0, 0, 1, 1<<20, int32(sizes[0]+sizes[1]))); len(p.RecordBatches) != sizes[0]+sizes[1] {
		t.Fatalf("partition limit: %d bytes, want two batches", len(p.RecordBatches))
	}
	// Fetch from the middle of the second batch returns that whole batch onwards.
	if p := get(tb.fetchReq("lim", 7, 0, 1, 1<<20, 1<<20)); len(p.RecordBatches) != sizes[1]+sizes[2] {
		t.Fatalf("mid-batch fetch: %d bytes", len(p.RecordBatches))
	}
	// Min bytes never reached: answered at max wait with what there is.
	start := time.Now()
	p := get(tb.fetchReq("lim", 15, 300, 1, 1<<20, 1<<20))
	if took := time.Since(start); took < 250*time.Millisecond || len(p.RecordBatches) != 0 || p.ErrorCode != 0 {
		t.Fatalf("empty long poll: took %v, %d bytes, error %d", took, len(p.RecordBatches), p.ErrorCode)
	}
	if p.RecordBatches == nil {
		t.Fatal("empty partition sent null records; Kafka sends empty records")
	}
	// As Kafka answers a failed read: unknown offsets (-1), checked against Kafka 4.0.2.
	if p := get(tb.fetchReq("lim", 16, 0, 1, 1<<20, 1<<20)); p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != -1 || p.LogStartOffset != -1 {
		t.Fatalf("offset past the end: error %d hwm %d log start %d", p.ErrorCode, p.HighWatermark, p.LogStartOffset)
	}
	if p := get(tb.fetchReq("nope", 0, 0, 1, 1<<20, 1<<20)); p.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("unknown topic: error %d", p.ErrorCode)
	}
	// Consumers that start beyond the end get reset by the client: kgo recovers.
	got := consumeN(t, tb, "lim", 15, kgo.FetchMaxBytes(100), kgo.FetchMaxPartitionBytes(100))
	if len(got) != 15 || got[14].Offset != 14 {
		t.Fatalf("consumer with tiny limits got %d records", len(got))
	}
}
