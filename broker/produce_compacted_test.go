package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCompactedTopicRefusesKeylessRecords: INVALID_RECORD with one record error per
// keyless record, as Kafka's LogValidator; nothing of the batch is stored.
func TestCompactedTopicRefusesKeylessRecords(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	compact := "compact,delete"
	createTopic(t, adm, "cmp", 1, map[string]*string{"cleanup.policy": &compact})
	cl := tb.client(t)

	// Records 1 and 3 of four have no key (rawBatch keys every record; drop two).
	batch := rawBatchKeys(t, [][]byte{[]byte("a"), nil, []byte("c"), nil})
	r := rawProduce(t, cl, "cmp", batch)
	if r.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("error %d, want INVALID_RECORD", r.ErrorCode)
	}
	if len(r.ErrorRecords) != 2 || r.ErrorRecords[0].RelativeOffset != 1 || r.ErrorRecords[1].RelativeOffset != 3 {
		t.Fatalf("record errors %+v, want batch indexes 1 and 3", r.ErrorRecords)
	}
	want := "Compacted topic cannot accept message without key in topic partition cmp-0"
	if m := r.ErrorRecords[0].ErrorMessage; m == nil || *m != want {
		t.Errorf("record error message %v, want %q", m, want)
	}
	if r.ErrorMessage == nil || !strings.HasPrefix(*r.ErrorMessage, "One or more records have been rejected due to 2 record errors") {
		t.Errorf("partition error message %v", r.ErrorMessage)
	}
	if _, hwm := tb.partitionOffsets(t, "cmp", 0); hwm != 0 {
		t.Fatalf("a refused batch was stored: high watermark %d", hwm)
	}
	// Compressed batches are checked too; keyed records go in.
	zcl := tb.client(t, kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.RecordRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := zcl.ProduceSync(ctx, &kgo.Record{Topic: "cmp", Value: []byte("no key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless compressed record: %v, want INVALID_RECORD", err)
	}
	if err := zcl.ProduceSync(ctx, &kgo.Record{Topic: "cmp", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("keyed record: %v", err)
	}
	// A delete-only topic takes keyless records.
	createTopic(t, adm, "plain", 1, nil)
	if r := rawProduce(t, cl, "plain", batch); r.ErrorCode != 0 {
		t.Fatalf("keyless records on a delete topic: error %d", r.ErrorCode)
	}
}

// rawBatchKeys is rawBatch with the given keys (nil: no key), timestamped now.
func rawBatchKeys(t *testing.T, keys [][]byte) []byte {
	t.Helper()
	b := rawBatch(-1, -1, -1, len(keys), time.Now().UnixMilli(), 0)
	var recs []byte
	for i, k := range keys {
		r := kmsg.Record{OffsetDelta: int32(i), Key: k, Value: []byte("value")}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1)
		recs = r.AppendTo(recs)
	}
	b = append(b[:batchHeaderLen], recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(batchHeaderLen-12+len(recs)))
	binary.BigEndian.PutUint32(b[17:], crc32Of(b))
	return b
}

// A compressed batch produced to a compacted topic is decompressed once: the keys are checked
// in the same pass as the record framing and timestamps.
func TestCompactedCompressedBatchDecompressedOnce(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	compact := "compact"
	createTopic(t, tb.admin(t), "cmp1", 1, map[string]*string{"cleanup.policy": &compact})
	var n atomic.Int64
	testHookDecompress = func() { n.Add(1) }
	defer func() { testHookDecompress = nil }()
	zcl := tb.client(t, kgo.ProducerBatchCompression(kgo.GzipCompression()), kgo.RecordRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := zcl.ProduceSync(ctx, &kgo.Record{Topic: "cmp1", Key: []byte("k"), Value: []byte(strings.Repeat("v", 4096))}).FirstErr(); err != nil {
		t.Fatalf("keyed record: %v", err)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("the batch was decompressed %d times, want once", got)
	}
	err := zcl.ProduceSync(ctx, &kgo.Record{Topic: "cmp1", Value: []byte(strings.Repeat("v", 4096))}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless record: %v, want INVALID_RECORD", err)
	}
	if got := n.Load(); got != 2 {
		t.Fatalf("after a keyless batch: %d decompressions, want 2", got)
	}
}

// A batch with a keyless record and a record out of the timestamp range: Kafka's
// LogValidator gives each its own record error and, since one is a timestamp error, answers
// INVALID_TIMESTAMP listing both.
func TestCompactedKeylessAndTimestampErrorsTogether(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	compact, before := "compact", "60000"
	createTopic(t, tb.admin(t), "cmp2", 1, map[string]*string{"cleanup.policy": &compact, "message.timestamp.before.max.ms": &before})
	now := time.Now().UnixMilli()
	b := rawBatch(-1, -1, -1, 2, now, 0)
	var recs []byte
	for _, r := range []kmsg.Record{
		{OffsetDelta: 0, Value: []byte("no key")},
		{OffsetDelta: 1, Key: []byte("k"), TimestampDelta64: -3_600_000, Value: []byte("old")},
	} {
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
	}
	b = append(b[:batchHeaderLen], recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(batchHeaderLen-12+len(recs)))
	binary.BigEndian.PutUint32(b[17:], crc32Of(b))
	r := rawProduce(t, tb.client(t), "cmp2", b)
	if r.ErrorCode != kerr.InvalidTimestamp.Code {
		t.Fatalf("error %d, want INVALID_TIMESTAMP", r.ErrorCode)
	}
	if len(r.ErrorRecords) != 2 || r.ErrorRecords[0].RelativeOffset != 0 || r.ErrorRecords[1].RelativeOffset != 1 {
		t.Fatalf("record errors %+v, want records 0 (no key) and 1 (timestamp)", r.ErrorRecords)
	}
	if m := r.ErrorRecords[0].ErrorMessage; m == nil || !strings.HasPrefix(*m, "Compacted topic cannot accept message without key") {
		t.Fatalf("record 0 error %v", m)
	}
}
