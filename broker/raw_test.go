package broker

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawBatch builds an uncompressed RecordBatch v2 with n records whose timestamps are
// firstTS + i*step.
func rawBatch(pid int64, epoch int16, seq int32, n int, firstTS, step int64) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{TimestampDelta64: int64(i) * step, OffsetDelta: int32(i), Key: []byte{byte(i)}, Value: []byte("value")}
		body := r.AppendTo(nil)
		// AppendTo writes Length as given; recompute it from the encoded body.
		r.Length = int32(len(body) - 1)
		recs = r.AppendTo(recs)
	}
	b := make([]byte, batchHeaderLen, batchHeaderLen+len(recs))
	binary.BigEndian.PutUint32(b[8:], uint32(batchHeaderLen-12+len(recs)))
	binary.BigEndian.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	binary.BigEndian.PutUint32(b[23:], uint32(n-1))
	binary.BigEndian.PutUint64(b[27:], uint64(firstTS))
	binary.BigEndian.PutUint64(b[35:], uint64(firstTS+int64(n-1)*step))
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[57:], uint32(n))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32c))
	return b
}

// rawProduce sends one ProduceRequest (acks=all) for topic/partition 0 and returns the
// partition response.
func rawProduce(t *testing.T, cl *kgo.Client, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	return rawProduceTo(t, cl, topic, 0, batch)
}

// rawProduceTo is rawProduce for any partition.
func rawProduceTo(t *testing.T, cl *kgo.Client, topic string, partition int32, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
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

func initPID(t *testing.T, cl *kgo.Client) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("init producer id: %v %d", err, resp.ErrorCode)
	}
	return resp.ProducerID, resp.ProducerEpoch
}
