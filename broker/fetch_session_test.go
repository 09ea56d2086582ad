package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionFetch sends one fetch of the given session id/epoch over partitions parts (offsets)
// of topic, forgetting forget; no long poll.
func (tb *testBroker) sessionFetch(t *testing.T, cl *kgo.Client, topic string, id, epoch int32, parts map[int32]int64, forget []int32) *kmsg.FetchResponse {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 0, 1, 1<<20
	req.SessionID, req.SessionEpoch = id, epoch
	tid := tb.topic(topic).id
	if len(parts) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, tid
		for p := int32(0); p < 16; p++ {
			if off, ok := parts[p]; ok {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, 1<<20
				rt.Partitions = append(rt.Partitions, rp)
			}
		}
		req.Topics = append(req.Topics, rt)
	}
	if len(forget) > 0 {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.TopicID, ft.Partitions = topic, tid, forget
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
	}
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// answered lists partition -> (error, batch bytes) of a fetch answer.
func answered(resp *kmsg.FetchResponse) map[int32][2]int {
	out := map[int32][2]int{}
	for _, st := range resp.Topics {
		for _, p := range st.Partitions {
			out[p.Partition] = [2]int{int(p.ErrorCode), len(p.RecordBatches)}
		}
	}
	return out
}

// KIP-227 as Kafka answers it: a full fetch with epoch 0 opens a session; incremental fetches
// name only what changed and get only partitions with records, errors or a new high
// watermark / log start; forgotten partitions are dropped; wrong epochs and unknown sessions
// are errors; epoch -1 closes the session.
func TestFetchSessions(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "fs", 3, nil)
	cl := tb.client(t)
	for p := int32(0); p < 3; p++ {
		if r := rawProduceTo(t, cl, "fs", p, rawBatch(-1, -1, -1, 2, 1000, 1)); r.ErrorCode != 0 {
			t.Fatal(r.ErrorCode)
		}
	}

	// Full fetch, new session: every partition, a session ID.
	resp := tb.sessionFetch(t, cl, "fs", 0, 0, map[int32]int64{0: 0, 1: 0, 2: 0}, nil)
	id := resp.SessionID
	if resp.ErrorCode != 0 || id == 0 {
		t.Fatalf("full fetch: error %d session %d", resp.ErrorCode, id)
	}
	if got := answered(resp); len(got) != 3 || got[0][1] == 0 {
		t.Fatalf("full fetch answered %v", got)
	}

	// Incremental, the client moved past the data of partitions 0 and 1 only: partition 2
	// (still at offset 0) has records again, 0 and 1 have nothing new and are left out.
	resp = tb.sessionFetch(t, cl, "fs", id, 1, map[int32]int64{0: 2, 1: 2}, nil)
	if resp.ErrorCode != 0 || resp.SessionID != id {
		t.Fatalf("incremental: error %d session %d", resp.ErrorCode, resp.SessionID)
	}
	if got := answered(resp); len(got) != 1 || got[2][1] == 0 {
		t.Fatalf("incremental answered %v, want only partition 2 with records", got)
	}
	// Nothing changed: an empty answer.
	resp = tb.sessionFetch(t, cl, "fs", id, 2, map[int32]int64{2: 2}, nil)
	if got := answered(resp); len(got) != 0 {
		t.Fatalf("unchanged session answered %v", got)
	}
	// New data on partition 1: only it comes back, with its records (offset 2 from the session).
	if r := rawProduceTo(t, cl, "fs", 1, rawBatch(-1, -1, -1, 1, 2000, 1)); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	resp = tb.sessionFetch(t, cl, "fs", id, 3, nil, nil)
	got := answered(resp)
	if len(got) != 1 || got[1][1] == 0 {
		t.Fatalf("after a produce answered %v, want partition 1 with records", got)
	}
	if hwm := resp.Topics[0].Partitions[0].HighWatermark; hwm != 3 {
		t.Fatalf("partition 1 high watermark %d, want 3", hwm)
	}
	// Forget partition 1, then produce to it: it is no longer fetched.
	resp = tb.sessionFetch(t, cl, "fs", id, 4, map[int32]int64{1: 3}, []int32{1})
	if got := answered(resp); len(got) != 0 {
		t.Fatalf("forgetting answered %v", got)
	}
	if r := rawProduceTo(t, cl, "fs", 1, rawBatch(-1, -1, -1, 1, 3000, 1)); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	if got := answered(tb.sessionFetch(t, cl, "fs", id, 5, nil, nil)); len(got) != 0 {
		t.Fatalf("forgotten partition answered: %v", got)
	}
	// A fetch offset out of range is an error, always answered.
	if got := answered(tb.sessionFetch(t, cl, "fs", id, 6, map[int32]int64{0: 99}, nil)); got[0][0] != int(kerr.OffsetOutOfRange.Code) {
		t.Fatalf("out of range answered %v", got)
	}
	// Wrong epoch, unknown session.
	if r := tb.sessionFetch(t, cl, "fs", id, 6, nil, nil); r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code || len(r.Topics) != 0 {
		t.Fatalf("replayed epoch: error %d", r.ErrorCode)
	}
	if r := tb.sessionFetch(t, cl, "fs", id+1, 1, nil, nil); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown session: error %d", r.ErrorCode)
	}
	// Epoch -1 closes the session (a sessionless answer); the ID is then unknown.
	resp = tb.sessionFetch(t, cl, "fs", id, -1, map[int32]int64{0: 0}, nil)
	if resp.ErrorCode != 0 || resp.SessionID != 0 || len(answered(resp)) != 1 {
		t.Fatalf("closing fetch: error %d session %d answered %v", resp.ErrorCode, resp.SessionID, answered(resp))
	}
	if r := tb.sessionFetch(t, cl, "fs", id, 8, nil, nil); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("closed session: error %d", r.ErrorCode)
	}
}

// An incremental fetch long-polls on every partition of its session, including ones the
// request does not name.
func TestFetchSessionLongPollCoversSession(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "fl", 2, nil)
	cl := tb.client(t)
	resp := tb.sessionFetch(t, cl, "fl", 0, 0, map[int32]int64{0: 0, 1: 0}, nil)
	id := resp.SessionID
	if id == 0 {
		t.Fatal("no session")
	}
	done := make(chan *kmsg.FetchResponse, 1)
	go func() {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 10000, 1, 1<<20
		req.SessionID, req.SessionEpoch = id, 1
		r, err := req.RequestWith(ctxT(t, 15*time.Second), cl)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	select {
	case r := <-done:
		t.Fatalf("fetch returned before any produce: %v", answered(r))
	case <-time.After(300 * time.Millisecond):
	}
	if r := rawProduceTo(t, tb.client(t), "fl", 1, rawBatch(-1, -1, -1, 1, 1000, 1)); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	select {
	case r := <-done:
		if got := answered(r); len(got) != 1 || got[1][1] == 0 {
			t.Fatalf("woken fetch answered %v, want partition 1 with records", got)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("session fetch not woken by a produce to a partition of its session")
	}
}

// A franz-go consumer (which uses fetch sessions) reads everything through incremental
// fetches of one session.
func TestFetchSessionWithClient(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "fc", 3, nil)
	pcl := tb.client(t, kgo.DefaultProduceTopic("fc"))
	const n = 300
	for i := range n {
		r := &kgo.Record{Value: []byte{byte(i)}, Partition: int32(i % 3)}
		if err := pcl.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ccl := tb.client(t, kgo.ConsumeTopics("fc"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	got := 0
	ctx := ctxT(t, 20*time.Second)
	for got < n && ctx.Err() == nil {
		got += ccl.PollFetches(ctx).NumRecords()
	}
	if got != n {
		t.Fatalf("consumed %d records, want %d", got, n)
	}
	// A few more polls with nothing new: incremental fetches of the same session.
	for range 3 {
		pctx := ctxT(t, 500*time.Millisecond)
		if k := ccl.PollFetches(pctx).NumRecords(); k != 0 {
			t.Fatalf("%d records after the end", k)
		}
	}
	tb.fetchSessions.mu.Lock()
	defer tb.fetchSessions.mu.Unlock()
	if len(tb.fetchSessions.byID) != 1 {
		t.Fatalf("%d fetch sessions, want the consumer's one", len(tb.fetchSessions.byID))
	}
	for _, s := range tb.fetchSessions.byID {
		s.mu.Lock()
		epoch, parts := s.epoch, len(s.parts)
		s.mu.Unlock()
		if epoch < 3 || parts != 3 {
			t.Fatalf("session at epoch %d with %d partitions, want incremental fetches over 3", epoch, parts)
		}
	}
}
