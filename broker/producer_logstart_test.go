package broker

import (
	"testing"
	"time"
)

// Kafka keeps an idempotent producer's state when the log start passes all of its batches
// (DeleteRecords, retention): since KIP-360 (KAFKA-7190) ProducerStateManager only drops a
// producer at producer.id.expiration.ms, so the producer neither gets UNKNOWN_PRODUCER_ID
// nor OUT_OF_ORDER_SEQUENCE for its next batch, and a retry of its last batch is still
// answered as a duplicate at its original offset; across a restart too.
func TestProducerStateOutlivesLogStart(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	createTopic(t, tb.admin(t), "pls", 1, nil)
	cl := tb.client(t)
	pid, epoch := initPID(t, cl)
	now := time.Now().UnixMilli()
	produce := func(seq int32, n int, wantBase int64, what string) {
		t.Helper()
		r := rawProduce(t, cl, "pls", rawBatch(pid, epoch, seq, n, now, 0))
		if r.ErrorCode != 0 || r.BaseOffset != wantBase {
			t.Fatalf("%s: error %d at offset %d, want 0 at %d", what, r.ErrorCode, r.BaseOffset, wantBase)
		}
	}
	produce(0, 3, 0, "first batch")
	produce(3, 2, 3, "second batch")
	if dr := deleteRecords(t, tb.admin(t), "pls", 5); dr.Err != nil || dr.LowWatermark != 5 {
		t.Fatalf("DeleteRecords: %v, low watermark %d", dr.Err, dr.LowWatermark)
	}
	produce(3, 2, 3, "retry of the batch below the log start") // a duplicate: its original offset
	produce(5, 1, 5, "next batch after the log start passed the producer's batches")
	if err := tb.sealAll(); err != nil {
		t.Fatal(err)
	}
	if dr := deleteRecords(t, tb.admin(t), "pls", 6); dr.Err != nil || dr.LowWatermark != 6 {
		t.Fatalf("DeleteRecords: %v, low watermark %d", dr.Err, dr.LowWatermark)
	}
	cl.Close()
	tb.Close()

	tb = startBroker(t, dir)
	cl = tb.client(t)
	produce(5, 1, 5, "retry after the restart")
	produce(6, 1, 6, "next batch after the restart")
	if ls, hwm := tb.partitionOffsets(t, "pls", 0); ls != 6 || hwm != 7 {
		t.Fatalf("log start %d, high watermark %d; want 6, 7", ls, hwm)
	}
}
