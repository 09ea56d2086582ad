package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// rawProduceTxn is rawProduce with a transactional ID ("" for none) on every request.
func rawProduceTxn(t *testing.T, cl *kgo.Client, txnID, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	if txnID != "" {
		req.TransactionID = kmsg.StringPtr(txnID)
	}
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("unexpected response shape %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

// txnRawBatch is rawBatch with the transactional bit set (CRC fixed).
func txnRawBatch(pid int64, epoch int16, seq int32) []byte {
	b := rawBatch(pid, epoch, seq, 1, time.Now().UnixMilli(), 0)
	b[22] |= attrTransactional
	setCount(b, 1)
	return b
}

// TestTxnProduceChecksTransactionalID: transactional batches must be sent under the
// transactional ID holding their producer ID, as Kafka 4.0 checks: without a transactional
// ID the request fails with TRANSACTIONAL_ID_AUTHORIZATION_FAILED (also with no producer ID),
// under another or an unknown transactional ID with INVALID_PRODUCER_ID_MAPPING, with an epoch
// ahead of the producer's with INVALID_PRODUCER_EPOCH. Nothing
// refused is stored or joins the owner's transaction.
func TestTxnProduceChecksTransactionalID(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "txchk", 1, nil)
	v := kversion.Stable()
	v.SetMaxKeyVersion(int16(kmsg.Produce), 11) // TV1: the partition is added explicitly
	cl := tb.client(t, kgo.MaxVersions(v))
	ctx := ctxT(t, 10*time.Second)
	init := func(id string) (int64, int16) {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID = kmsg.StringPtr(id)
		req.TransactionTimeoutMillis = 60000
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("init %s: %v %v", id, err, resp)
		}
		return resp.ProducerID, resp.ProducerEpoch
	}
	pidA, epA := init("tx-a")
	init("tx-b")
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = "tx-a", pidA, epA
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = "txchk", []int32{0}
	add.Topics = append(add.Topics, at)
	if r, err := add.RequestWith(ctx, cl); err != nil || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("AddPartitionsToTxn: %v %+v", err, r)
	}

	cases := []struct {
		what  string
		txnID string
		batch []byte
		want  *kerr.Error
	}{
		{"no transactional ID", "", txnRawBatch(pidA, epA, 0), kerr.TransactionalIDAuthorizationFailed},
		{"transactional bit without producer ID or transactional ID", "", txnRawBatch(-1, -1, -1), kerr.TransactionalIDAuthorizationFailed},
		{"another producer's transactional ID", "tx-b", txnRawBatch(pidA, epA, 0), kerr.InvalidProducerIDMapping},
		{"unknown transactional ID", "tx-nope", txnRawBatch(pidA, epA, 0), kerr.InvalidProducerIDMapping},
		// Kafka's verification fences any other epoch, answered INVALID_PRODUCER_EPOCH on Produce.
		{"epoch ahead of the producer's", "tx-a", txnRawBatch(pidA, epA+1, 0), kerr.InvalidProducerEpoch},
	}
	for _, c := range cases {
		if r := rawProduceTxn(t, cl, c.txnID, "txchk", c.batch); r.ErrorCode != c.want.Code {
			t.Errorf("%s: error %v, want %s", c.what, kerr.ErrorForCode(r.ErrorCode), c.want.Message)
		}
	}
	if _, hwm := tb.partitionOffsets(t, "txchk", 0); hwm != 0 {
		t.Fatalf("refused batches were stored: high watermark %d", hwm)
	}
	if r := rawProduceTxn(t, cl, "tx-a", "txchk", txnRawBatch(pidA, epA, 0)); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("owner's batch: error %v base %d", kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
	}
}
