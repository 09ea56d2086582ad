package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchKafkaEdgeCases: Fetch answers Kafka 4.0 gives for odd limits and fields: MaxBytes 0
// returns only the first batch, a negative MaxBytes or PartitionMaxBytes fails partitions with
// data, isolation level 2 fails the request, a leader epoch ahead is UNKNOWN_LEADER_EPOCH and
// a replica fetch is refused (klite has no followers).
func TestFetchKafkaEdgeCases(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "fe", 1, nil)
	cl := tb.client(t)
	now := time.Now().UnixMilli()
	var first int
	for i := range 3 {
		b := rawBatch(-1, -1, -1, 2, now, 1)
		if i == 0 {
			first = len(b)
		}
		if r := rawProduce(t, cl, "fe", b); r.ErrorCode != 0 {
			t.Fatalf("produce: %d", r.ErrorCode)
		}
	}
	fetch := func(req *kmsg.FetchRequest) *kmsg.FetchResponse {
		t.Helper()
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	part := func(resp *kmsg.FetchResponse) kmsg.FetchResponseTopicPartition {
		t.Helper()
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("response shape: error %d, %d topics", resp.ErrorCode, len(resp.Topics))
		}
		return resp.Topics[0].Partitions[0]
	}

	if p := part(fetch(tb.fetchReq("fe", 0, 0, 0, 0, 1<<20))); p.ErrorCode != 0 || len(p.RecordBatches) != first {
		t.Errorf("MaxBytes 0: error %d, %d bytes, want the first batch (%d bytes)", p.ErrorCode, len(p.RecordBatches), first)
	}
	for _, c := range []struct {
		what              string
		maxBytes, partMax int32
	}{{"MaxBytes -1", -1, 1 << 20}, {"PartitionMaxBytes -1", 1 << 20, -1}} {
		p := part(fetch(tb.fetchReq("fe", 0, 0, 0, c.maxBytes, c.partMax)))
		if p.ErrorCode != kerr.UnknownServerError.Code || len(p.RecordBatches) != 0 || p.HighWatermark != -1 {
			t.Errorf("%s: error %d, %d bytes, high watermark %d", c.what, p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
		}
		// Nothing to read at the high watermark: no read, no error.
		if p := part(fetch(tb.fetchReq("fe", 6, 0, 0, c.maxBytes, c.partMax))); p.ErrorCode != 0 {
			t.Errorf("%s at the high watermark: error %d", c.what, p.ErrorCode)
		}
	}

	req := tb.fetchReq("fe", 0, 0, 0, 1<<20, 1<<20)
	req.IsolationLevel = 2
	if resp := fetch(req); resp.ErrorCode != kerr.UnknownServerError.Code || len(resp.Topics) != 0 {
		t.Errorf("isolation level 2: error %d, %d topics", resp.ErrorCode, len(resp.Topics))
	}
	// With no partition to read Kafka never looks at the isolation level: the unknown
	// partition is answered as usual, and a topic listed with no partitions is left out.
	req = tb.fetchReq("fe", 0, 0, 0, 1<<20, 1<<20)
	req.IsolationLevel = 2
	req.Topics[0].Partitions[0].Partition = 9
	req.Topics = append(req.Topics, kmsg.NewFetchRequestTopic())
	req.Topics[1].Topic, req.Topics[1].TopicID = "fe", req.Topics[0].TopicID
	if resp := fetch(req); resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 ||
		resp.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || resp.Topics[0].Partitions[0].AbortedTransactions == nil {
		t.Errorf("isolation level 2, unknown partition and an empty topic: %+v", resp)
	}

	for _, c := range []struct {
		what    string
		epoch   int32
		replica int32
		want    *kerr.Error
	}{
		{"leader epoch 1", 1, -1, kerr.UnknownLeaderEpoch},
		{"leader epoch -2", -2, -1, kerr.FencedLeaderEpoch},
		{"leader epoch 0", 0, -1, nil},
		{"replica fetch", -1, 7, kerr.NotLeaderForPartition},
		{"replica fetch with epoch", 0, 7, kerr.UnknownLeaderEpoch},
	} {
		req := tb.fetchReq("fe", 0, 0, 0, 1<<20, 1<<20)
		req.Topics[0].Partitions[0].CurrentLeaderEpoch = c.epoch
		req.ReplicaID, req.ReplicaState.ID = c.replica, c.replica
		p := part(fetch(req))
		switch {
		case c.want == nil && (p.ErrorCode != 0 || len(p.RecordBatches) == 0):
			t.Errorf("%s: error %d, %d bytes", c.what, p.ErrorCode, len(p.RecordBatches))
		case c.want != nil && (p.ErrorCode != c.want.Code || len(p.RecordBatches) != 0):
			t.Errorf("%s: error %v, %d bytes, want %s", c.what, kerr.ErrorForCode(p.ErrorCode), len(p.RecordBatches), c.want.Message)
		}
	}
}

// TestNullVersusEmptyArrays: where Kafka 4.0 sends an empty list and where null. Fetch:
// unknown partitions (answered before reading) carry an empty aborted transaction list,
// read_committed reads a list, read_uncommitted reads and read errors null. CreateTopics:
// error rows carry an empty config list.
func TestNullVersusEmptyArrays(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "ne", 1, nil)
	cl := tb.client(t)
	if r := rawProduce(t, cl, "ne", rawBatch(-1, -1, -1, 1, time.Now().UnixMilli(), 0)); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	fetchOne := func(partition int32, offset int64, isolation int8) kmsg.FetchResponseTopicPartition {
		t.Helper()
		req := tb.fetchReq("ne", offset, 0, 0, 1<<20, 1<<20)
		req.IsolationLevel = isolation
		req.Topics[0].Partitions[0].Partition = partition
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0]
	}
	for _, c := range []struct {
		what      string
		partition int32
		offset    int64
		isolation int8
		wantNull  bool
	}{
		{"read_uncommitted read", 0, 0, 0, true},
		{"read_committed read", 0, 0, 1, false},
		{"read_committed at the end", 0, 1, 1, false},
		{"unknown partition", 5, 0, 0, false},
		{"offset out of range", 0, 9, 1, true},
	} {
		p := fetchOne(c.partition, c.offset, c.isolation)
		if (p.AbortedTransactions == nil) != c.wantNull {
			t.Errorf("%s (error %d): aborted transactions null=%v, want null=%v", c.what, p.ErrorCode, p.AbortedTransactions == nil, c.wantNull)
		}
	}
	resp := createTopicsRaw(t, cl, creatable("ne", 1))
	if st := resp.Topics[0]; st.ErrorCode != kerr.TopicAlreadyExists.Code || st.Configs == nil {
		t.Errorf("CreateTopics error row: error %d, configs null=%v, want an empty list", st.ErrorCode, st.Configs == nil)
	}
}
