package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestIdempotentDedup sends the same idempotent batch twice (a retry): the second answer
// carries the first offset and nothing is appended twice; a sequence gap gives
// OUT_OF_ORDER_SEQUENCE_NUMBER and a stale epoch INVALID_PRODUCER_EPOCH. Dedup survives a
// restart.
func TestIdempotentDedup(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	createTopic(t, tb.admin(t), "dedup", 1, nil)
	cl := tb.client(t)
	pid, epoch := initPID(t, cl)
	pid2, _ := initPID(t, cl)
	if pid2 == pid {
		t.Fatalf("two InitProducerID calls returned the same producer id %d", pid)
	}

	r := rawProduce(t, cl, "dedup", rawBatch(pid, epoch, 0, 3, 1000, 1))
	if r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("first batch: error %d base %d", r.ErrorCode, r.BaseOffset)
	}
	r = rawProduce(t, cl, "dedup", rawBatch(pid, epoch, 3, 2, 1000, 1))
	if r.ErrorCode != 0 || r.BaseOffset != 3 {
		t.Fatalf("second batch: error %d base %d", r.ErrorCode, r.BaseOffset)
	}
	// Retry of the first batch: same offset back, no new data.
	r = rawProduce(t, cl, "dedup", rawBatch(pid, epoch, 0, 3, 1000, 1))
	if r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("retried batch: error %d base %d, want 0 and offset 0", r.ErrorCode, r.BaseOffset)
	}
	// A gap: sequence 10 when 5 is expected.
	r = rawProduce(t, cl, "dedup", rawBatch(pid, epoch, 10, 1, 1000, 1))
	if r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: error %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", r.ErrorCode)
	}
	// A new epoch fences the old one.
	r = rawProduce(t, cl, "dedup", rawBatch(pid, epoch+1, 0, 1, 1000, 1))
	if r.ErrorCode != 0 || r.BaseOffset != 5 {
		t.Fatalf("new epoch: error %d base %d", r.ErrorCode, r.BaseOffset)
	}
	r = rawProduce(t, cl, "dedup", rawBatch(pid, epoch, 5, 1, 1000, 1))
	if r.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("stale epoch: error %d, want INVALID_PRODUCER_EPOCH", r.ErrorCode)
	}
	if _, hwm := tb.partitionOffsets(t, "dedup", 0); hwm != 6 {
		t.Fatalf("high watermark %d, want 6", hwm)
	}

	// After a restart the retry of the newest batch is still recognized.
	tb.Close()
	tb = startBroker(t, dir)
	cl = tb.client(t)
	r = rawProduce(t, cl, "dedup", rawBatch(pid, epoch+1, 0, 1, 1000, 1))
	if r.ErrorCode != 0 || r.BaseOffset != 5 {
		t.Fatalf("retry after restart: error %d base %d, want offset 5", r.ErrorCode, r.BaseOffset)
	}
	r = rawProduce(t, cl, "dedup", rawBatch(pid, epoch+1, 1, 1, 1000, 1))
	if r.ErrorCode != 0 || r.BaseOffset != 6 {
		t.Fatalf("next batch after restart: error %d base %d, want offset 6", r.ErrorCode, r.BaseOffset)
	}
	pid3, _ := initPID(t, cl)
	if pid3 <= pid2 {
		t.Fatalf("producer id %d after restart is not above %d", pid3, pid2)
	}
}

func (tb *testBroker) partitionOffsets(t *testing.T, topic string, part int32) (int64, int64) {
	t.Helper()
	p, err := tb.partition(topic, part)
	if err != nil {
		t.Fatalf("partition %s/%d: %v", topic, part, err)
	}
	return p.offsets()
}
