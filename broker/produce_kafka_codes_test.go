package broker

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestProduceKafkaErrorCodes: malformed batches get the codes Kafka 4.0 gives them, in
// Kafka's order (its batch reader, then the log, then LogValidator), and failures raised in
// the log carry the partition's real log start offset (-1 for the others); acks=2 answers
// base offset -1.
func TestProduceKafkaErrorCodes(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "codes", 1, nil)
	cl := tb.client(t)
	now := time.Now().UnixMilli()
	for range 3 {
		if r := rawProduce(t, cl, "codes", rawBatch(-1, -1, -1, 1, now, 0)); r.ErrorCode != 0 {
			t.Fatalf("setup produce: %d", r.ErrorCode)
		}
	}
	adm := kadm.NewClient(cl)
	off := kadm.Offsets{}
	off.Add(kadm.Offset{Topic: "codes", Partition: 0, At: 2})
	if _, err := adm.DeleteRecords(context.Background(), off); err != nil {
		t.Fatal(err)
	}

	good := rawBatch(-1, -1, -1, 2, now, 1)
	edit := func(f func(b []byte) []byte) []byte {
		b := f(append([]byte(nil), good...))
		if len(b) >= batchHeaderLen {
			binary.BigEndian.PutUint32(b[17:], crc32Of(b))
		}
		return b
	}
	cases := []struct {
		what     string
		batch    []byte
		want     *kerr.Error
		logStart int64
	}{
		{"base offset 5", edit(func(b []byte) []byte { binary.BigEndian.PutUint64(b, 5); return b }), kerr.InvalidRecord, 2},
		{"magic 3", edit(func(b []byte) []byte { b[16] = 3; return b }), kerr.CorruptMessage, -1},
		{"magic 0", edit(func(b []byte) []byte { b[16] = 0; return b }), kerr.InvalidRecord, -1},
		{"length 10", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 10); return b }), kerr.CorruptMessage, -1},
		{"length 30", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 30); return b }), kerr.CorruptMessage, -1},
		{"length past the data", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], uint32(len(b))); return b }), kerr.InvalidRecord, -1},
		{"codec 5", edit(func(b []byte) []byte { b[22] |= 5; return b }), kerr.UnknownServerError, 2},
		{"codec 7", edit(func(b []byte) []byte { b[22] |= 7; return b }), kerr.UnknownServerError, 2},
		{"count mismatch", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[57:], 3); return b }), kerr.InvalidRecord, 2},
		{"bad crc", append(append([]byte(nil), good[:len(good)-1]...), good[len(good)-1]^0xff), kerr.CorruptMessage, -1},
		{"empty", []byte{}, kerr.InvalidRecord, -1},
	}
	for _, c := range cases {
		r := rawProduce(t, cl, "codes", c.batch)
		if r.ErrorCode != c.want.Code || r.LogStartOffset != c.logStart || r.BaseOffset != -1 {
			t.Errorf("%s: error %v log start %d base %d, want %s log start %d base -1", c.what, kerr.ErrorForCode(r.ErrorCode), r.LogStartOffset, r.BaseOffset, c.want.Message, c.logStart)
		}
	}
	// A few bytes after the batch (not a whole second batch) are dropped, as Kafka trims them.
	if r := rawProduce(t, cl, "codes", append(append([]byte(nil), good...), 1, 2, 3, 4, 5)); r.ErrorCode != 0 || r.BaseOffset != 3 {
		t.Fatalf("batch with 5 trailing bytes: error %v base %d", kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
	}
	if got := consumeN(t, tb, "codes", 3, kgo.FetchMaxWait(100*time.Millisecond)); len(got) != 3 || got[2].Offset != 4 {
		t.Fatalf("consumed %d records after the trimmed batch", len(got))
	}

	// A batch claiming LogAppendTime (the broker's to set) is INVALID_TIMESTAMP on a
	// LogAppendTime topic, with an error per record.
	lat := "LogAppendTime"
	createTopic(t, tb.admin(t), "codes-lat", 1, map[string]*string{"message.timestamp.type": &lat})
	latBatch := edit(func(b []byte) []byte { b[22] |= attrLogAppendTime; return b })
	if r := rawProduce(t, cl, "codes-lat", latBatch); r.ErrorCode != kerr.InvalidTimestamp.Code || len(r.ErrorRecords) != 2 {
		t.Errorf("LogAppendTime bit from the producer: error %v, %d record errors", kerr.ErrorForCode(r.ErrorCode), len(r.ErrorRecords))
	}
	if r := rawProduce(t, cl, "codes-lat", good); r.ErrorCode != 0 {
		t.Errorf("CreateTime batch to a LogAppendTime topic: error %v", kerr.ErrorForCode(r.ErrorCode))
	}

	// zstd needs Produce v7+.
	v := kversion.Stable()
	v.SetMaxKeyVersion(int16(kmsg.Produce), 6)
	old := tb.client(t, kgo.MaxVersions(v))
	if r := rawProduce(t, old, "codes", compressedBatch(t, 4, 1, now)); r.ErrorCode != kerr.UnsupportedCompressionType.Code {
		t.Errorf("zstd on Produce v6: error %v, want UNSUPPORTED_COMPRESSION_TYPE", kerr.ErrorForCode(r.ErrorCode))
	}

	// acks=2: INVALID_REQUIRED_ACKS with base offset -1 (raw: the client would set its own acks).
	req := kmsg.NewPtrProduceRequest()
	req.Version = 11
	req.Acks = 2
	req.TimeoutMillis = 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "codes"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = good
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// With it: a topic that does not exist (Kafka checks existence before acks) and a topic
	// listed with no partitions (left out of Kafka's answer).
	unknown := kmsg.NewProduceRequestTopic()
	unknown.Topic = "codes-missing"
	unknown.Partitions = append(unknown.Partitions, rp)
	empty := kmsg.NewProduceRequestTopic()
	empty.Topic = "codes-lat"
	req.Topics = append(req.Topics, unknown, empty)
	conn := dialRaw(t, tb.addr)
	if _, err := conn.Write(frame(req, 7)); err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = req.Version
	readResponse(t, conn, resp, true)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.InvalidRequiredAcks.Code || p.BaseOffset != -1 || p.LogStartOffset != -1 {
		t.Errorf("acks=2: error %d base %d log start %d", p.ErrorCode, p.BaseOffset, p.LogStartOffset)
	}
	if len(resp.Topics) != 2 || resp.Topics[1].Topic != "codes-missing" ||
		resp.Topics[1].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("acks=2 with an unknown and an empty topic: %+v, want codes then codes-missing (UNKNOWN_TOPIC_OR_PARTITION)", resp.Topics)
	}
}
