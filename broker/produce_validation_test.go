package broker

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/klite/klite/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestProduceValidation checks Kafka's error codes for bad batches; nothing bad is stored.
func TestProduceValidation(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	small := "200"
	createTopic(t, adm, "val", 1, map[string]*string{"max.message.bytes": &small})
	cl := tb.client(t)

	good := rawBatch(-1, -1, -1, 2, 1000, 1)
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	magic1 := append([]byte(nil), good...)
	magic1[16] = 1
	badCount := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(badCount[57:], 3)
	binary.BigEndian.PutUint32(badCount[17:], crc32Of(badCount))
	control := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(control[21:], attrControl)
	binary.BigEndian.PutUint32(control[17:], crc32Of(control))
	badDelta := rawBatch(-1, -1, -1, 2, 1000, 1)
	// Make the second record's offset delta 5 (the records are 1-byte varint framed).
	badDelta = rebuildWithOffsetDelta(t, badDelta)
	big := rawBatch(-1, -1, -1, 20, 1000, 1)
	twoBatches := append(append([]byte(nil), good...), good...)
	truncated := good[:len(good)-3]

	cases := []struct {
		name  string
		topic string
		batch []byte
		want  *kerr.Error
	}{
		{"bad crc", "val", badCRC, kerr.CorruptMessage},
		{"magic 1", "val", magic1, kerr.InvalidRecord}, // Produce v3+: "only allowed to contain magic 2"
		{"count mismatch", "val", badCount, kerr.InvalidRecord},
		{"control batch", "val", control, kerr.InvalidRecord},
		{"bad offset delta", "val", badDelta, kerr.InvalidRecord},
		{"too large", "val", big, kerr.MessageTooLarge},
		{"two batches", "val", twoBatches, kerr.InvalidRecord},
		{"truncated", "val", truncated, kerr.InvalidRecord}, // Kafka's reader frames no batch at all
		{"unknown topic", "nope", good, kerr.UnknownTopicOrPartition},
	}
	for _, c := range cases {
		r := rawProduce(t, cl, c.topic, c.batch)
		if r.ErrorCode != c.want.Code {
			t.Errorf("%s: error %d (%v), want %s", c.name, r.ErrorCode, kerr.ErrorForCode(r.ErrorCode), c.want.Message)
		}
	}
	// Timestamps: more than an hour ahead is refused by default; before.max.ms when set.
	future := time.Now().Add(2 * time.Hour).UnixMilli()
	if r := rawProduce(t, cl, "val", rawBatch(-1, -1, -1, 2, future, 1)); r.ErrorCode != kerr.InvalidTimestamp.Code {
		t.Errorf("timestamp two hours ahead: error %d, want INVALID_TIMESTAMP", r.ErrorCode)
	}
	week := "604800000"
	createTopic(t, adm, "val-old", 1, map[string]*string{"message.timestamp.before.max.ms": &week})
	old := time.Now().Add(-8 * 24 * time.Hour).UnixMilli()
	if r := rawProduce(t, cl, "val-old", rawBatch(-1, -1, -1, 2, old, 1)); r.ErrorCode != kerr.InvalidTimestamp.Code {
		t.Errorf("timestamp eight days old with before.max.ms one week: error %d, want INVALID_TIMESTAMP", r.ErrorCode)
	}
	if r := rawProduce(t, cl, "val-old", rawBatch(-1, -1, -1, 2, time.Now().UnixMilli(), 1)); r.ErrorCode != 0 {
		t.Errorf("current timestamp: error %d", r.ErrorCode)
	}
	if _, hwm := tb.partitionOffsets(t, "val", 0); hwm != 0 {
		t.Fatalf("rejected batches were stored: high watermark %d", hwm)
	}
	if r := rawProduce(t, cl, "val", good); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("good batch: error %d base %d", r.ErrorCode, r.BaseOffset)
	}
}

func crc32Of(b []byte) uint32 {
	return crc32Checksum(b[21:])
}

// rebuildWithOffsetDelta rewrites the second record of a 2-record batch built by rawBatch
// to have offset delta 5, fixing the CRC.
func rebuildWithOffsetDelta(t *testing.T, b []byte) []byte {
	t.Helper()
	raw := b[batchHeaderLen:]
	l, sz := binary.Varint(raw)
	second := raw[sz+int(l):]
	// second record: length varint (1 byte), attributes (1), timestamp delta varint (1), offset delta varint
	if second[3] != 2 { // varint(1) zigzag = 2
		t.Fatalf("unexpected record layout %x", second[:4])
	}
	second[3] = 10 // varint(5)
	binary.BigEndian.PutUint32(b[17:], crc32Of(b))
	return b
}

// TestProduceStorageError makes the WAL fail like a full disk: producers get
// KAFKA_STORAGE_ERROR, nothing already stored is lost, and appends work again once healed.
func TestProduceStorageError(t *testing.T) {
	wal := storage.NewMemWAL()
	meta := storage.NewMemMetaLog()
	tb := startBroker(t, t.TempDir(), func(c *Config) { c.WAL, c.Meta = wal, meta })
	createTopic(t, tb.admin(t), "full", 1, nil)
	cl := tb.client(t)
	if r := rawProduce(t, cl, "full", rawBatch(-1, -1, -1, 3, 1000, 1)); r.ErrorCode != 0 {
		t.Fatalf("first produce: %d", r.ErrorCode)
	}
	wal.FailAppends(errors.New("no space left on device"))
	if r := rawProduce(t, cl, "full", rawBatch(-1, -1, -1, 3, 1000, 1)); r.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("produce on a full disk: error %d, want KAFKA_STORAGE_ERROR", r.ErrorCode)
	}
	wal.FailAppends(nil)
	if r := rawProduce(t, cl, "full", rawBatch(-1, -1, -1, 2, 1000, 1)); r.ErrorCode != 0 || r.BaseOffset != 3 {
		t.Fatalf("produce after healing: error %d base %d, want offset 3", r.ErrorCode, r.BaseOffset)
	}
	got := consumeN(t, tb, "full", 5, kgo.FetchMaxWait(100*time.Millisecond))
	if len(got) != 5 || got[4].Offset != 4 {
		t.Fatalf("got %d records", len(got))
	}
}
