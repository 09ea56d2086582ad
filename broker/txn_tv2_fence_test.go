package broker

import (
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnProduceV12FencedEpoch: a transactional Produce v12+ batch (TV2, the partition is
// added implicitly) from a producer fenced by a newer InitProducerID is answered
// INVALID_PRODUCER_EPOCH, as Kafka does (never PRODUCER_FENCED on Produce); the new epoch's
// batch is accepted.
func TestTxnProduceV12FencedEpoch(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "tv2fence", 1, nil)
	cl := tb.client(t)
	init := func() (int64, int16) {
		req := kmsg.NewPtrInitProducerIDRequest()
		id := "tv2fence-id"
		req.TransactionalID = &id
		req.TransactionTimeoutMillis = 60000
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("init producer id: %v %d", err, resp.ErrorCode)
		}
		return resp.ProducerID, resp.ProducerEpoch
	}
	txnBatch := func(pid int64, epoch int16) []byte {
		b := rawBatch(pid, epoch, 0, 1, time.Now().UnixMilli(), 0)
		b[22] |= 0x10 // transactional
		b[17], b[18], b[19], b[20] = 0, 0, 0, 0
		c := crc32.Checksum(b[21:], crc32c)
		b[17], b[18], b[19], b[20] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
		return b
	}
	pid, old := init()
	pid2, cur := init()
	if pid2 != pid || cur <= old {
		t.Fatalf("second init: pid %d epoch %d, want pid %d and an epoch above %d", pid2, cur, pid, old)
	}
	got := rawProduceTxn(t, cl, "tv2fence-id", "tv2fence", txnBatch(pid, old))
	if got.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("fenced epoch: error %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(got.ErrorCode))
	}
	got = rawProduceTxn(t, cl, "tv2fence-id", "tv2fence", txnBatch(pid, cur))
	if got.ErrorCode != 0 || got.BaseOffset != 0 {
		t.Fatalf("current epoch: error %v offset %d, want success at offset 0", kerr.ErrorForCode(got.ErrorCode), got.BaseOffset)
	}
}
