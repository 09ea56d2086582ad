package broker

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

var codecNames = map[int8]string{1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

// compressPayload compresses b with codec as the franz-go producer does.
func compressPayload(t testing.TB, codec int8, b []byte) []byte {
	t.Helper()
	cc := map[int8]kgo.CompressionCodec{1: kgo.GzipCompression(), 2: kgo.SnappyCompression(), 3: kgo.Lz4Compression(), 4: kgo.ZstdCompression()}[codec]
	c, err := kgo.DefaultCompressor(cc)
	if err != nil {
		t.Fatal(err)
	}
	out, got := c.Compress(new(bytes.Buffer), b)
	if int8(got) != codec {
		t.Fatalf("compressed with codec %d, want %d", got, codec)
	}
	return append([]byte(nil), out...)
}

// withPayload rebuilds a batch made by rawBatch around a new records payload and codec,
// with a valid length and CRC.
func withPayload(batch []byte, codec int8, payload []byte) []byte {
	b := append(append([]byte(nil), batch[:batchHeaderLen]...), payload...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	attrs := binary.BigEndian.Uint16(b[21:])&^attrCodecMask | uint16(codec)
	binary.BigEndian.PutUint16(b[21:], attrs)
	binary.BigEndian.PutUint32(b[17:], crc32Of(b))
	return b
}

// compressedBatch is rawBatch(-1, -1, -1, n, firstTS, 1) with its records compressed.
func compressedBatch(t testing.TB, codec int8, n int, firstTS int64) []byte {
	plain := rawBatch(-1, -1, -1, n, firstTS, 1)
	return withPayload(plain, codec, compressPayload(t, codec, plain[batchHeaderLen:]))
}

// TestProduceCompressedValidation: compressed batches are decompressed to validate them as
// Kafka 4.0 does. A payload the codec cannot decode is refused with UNKNOWN_SERVER_ERROR
// (Kafka: a KafkaException from the codec), records that do not match the header with
// INVALID_RECORD, and out-of-range timestamps with INVALID_TIMESTAMP and per-record errors;
// nothing refused is stored, and what is accepted is readable by a consumer.
func TestProduceCompressedValidation(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	week := "604800000"
	createTopic(t, adm, "cz", 1, map[string]*string{"message.timestamp.before.max.ms": &week})
	cl := tb.client(t)
	now := time.Now().UnixMilli()

	garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x11}, 40)
	plain := rawBatch(-1, -1, -1, 3, now, 1)
	records := plain[batchHeaderLen:]
	for codec := int8(1); codec <= 4; codec++ {
		name := codecNames[codec]
		cases := []struct {
			what  string
			batch []byte
			want  *kerr.Error
		}{
			{"garbage payload", withPayload(plain, codec, garbage), kerr.UnknownServerError},
			// Header says 3 records, the payload holds 2.
			{"fewer records than counted", withPayload(plain, codec, compressPayload(t, codec, records[:len(records)*2/3])), kerr.InvalidRecord},
			// Header says 3, the payload holds 3 and trailing bytes.
			{"bytes after the last record", withPayload(plain, codec, compressPayload(t, codec, append(append([]byte(nil), records...), 0, 0))), kerr.InvalidRecord},
			{"bad offset delta", withPayload(plain, codec, compressPayload(t, codec, rebuildWithOffsetDelta(t, rawBatch(-1, -1, -1, 2, now, 1))[batchHeaderLen:])), kerr.InvalidRecord},
			{"empty payload", withPayload(plain, codec, nil), nil},
		}
		for _, c := range cases {
			r := rawProduce(t, cl, "cz", c.batch)
			if c.want == nil {
				if r.ErrorCode == 0 {
					t.Errorf("%s %s: accepted", name, c.what)
				}
				continue
			}
			if r.ErrorCode != c.want.Code {
				t.Errorf("%s %s: error %d (%v), want %s", name, c.what, r.ErrorCode, kerr.ErrorForCode(r.ErrorCode), c.want.Message)
			}
		}
		// A record eight days old in the middle of a compressed batch.
		old := rawBatch(-1, -1, -1, 3, now, 1)
		binary.BigEndian.PutUint64(old[27:], uint64(now-8*24*3600*1000)) // first timestamp
		r := rawProduce(t, cl, "cz", withPayload(old, codec, compressPayload(t, codec, old[batchHeaderLen:])))
		if r.ErrorCode != kerr.InvalidTimestamp.Code || len(r.ErrorRecords) != 3 || r.ErrorRecords[2].RelativeOffset != 2 {
			t.Errorf("%s old timestamps: error %d, record errors %+v; want INVALID_TIMESTAMP for records 0-2", name, r.ErrorCode, r.ErrorRecords)
		}
	}
	// gzip cut short: the stream ends before the records do (Kafka: EOFException).
	gz := compressPayload(t, 1, records)
	if r := rawProduce(t, cl, "cz", withPayload(plain, 1, gz[:len(gz)/2])); r.ErrorCode != kerr.InvalidRecord.Code {
		t.Errorf("truncated gzip: error %d, want INVALID_RECORD", r.ErrorCode)
	}
	if _, hwm := tb.partitionOffsets(t, "cz", 0); hwm != 0 {
		t.Fatalf("refused batches were stored: high watermark %d", hwm)
	}

	// Valid batches of every codec, and snappy both xerial-framed and raw, are stored and read back.
	want := 0
	for codec := int8(1); codec <= 4; codec++ {
		if r := rawProduce(t, cl, "cz", compressedBatch(t, codec, 3, now)); r.ErrorCode != 0 || r.BaseOffset != int64(want) {
			t.Fatalf("%s valid batch: error %d base %d", codecNames[codec], r.ErrorCode, r.BaseOffset)
		}
		want += 3
	}
	if r := rawProduce(t, cl, "cz", withPayload(plain, 2, s2.EncodeSnappy(nil, records))); r.ErrorCode != 0 {
		t.Fatalf("raw snappy batch: error %d", r.ErrorCode)
	}
	want += 3
	got := consumeN(t, tb, "cz", want, kgo.FetchMaxWait(100*time.Millisecond))
	if len(got) != want || got[want-1].Offset != int64(want-1) || string(got[want-1].Value) != "value" {
		t.Fatalf("consumed %d records, want %d", len(got), want)
	}
}
