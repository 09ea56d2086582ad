package broker

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkValidateProduceBatch is the broker's CPU cost of validating one 128 KiB batch
// (128 records of 1 KiB of log-like text) per codec; b.SetBytes counts uncompressed bytes.
func BenchmarkValidateProduceBatch(b *testing.B) {
	now := time.Now().UnixMilli()
	plain := rawBatch(-1, -1, -1, 1, now, 0) // header template
	var recs []byte
	for i := 0; i < 128; i++ {
		v := []byte(fmt.Sprintf("%-1024s", fmt.Sprintf("user_id=%d GET /api/v1/orders status=200 latency_ms=%d", i*7919, i%97)))
		recs = appendRecord(recs, int32(i), v)
	}
	plain = withPayload(plain, 0, recs)
	setCount(plain, 128)
	ts := &timestampLimits{now: now, before: 1 << 62, after: 3600000}
	for codec := int8(0); codec <= 4; codec++ {
		batch := plain
		if codec != 0 {
			batch = withPayload(plain, codec, compressPayload(b, codec, recs))
		}
		name := map[int8]string{0: "none"}[codec] + codecNames[codec]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(recs)))
			b.ReportAllocs()
			for b.Loop() {
				if _, berr := validateProduceBatch(batch, 12, 1<<30, ts); berr != nil {
					b.Fatal(berr.msg)
				}
			}
		})
	}
}

// appendRecord appends one encoded record with offset delta i and value v.
func appendRecord(dst []byte, i int32, v []byte) []byte {
	r := kmsg.Record{OffsetDelta: i, Value: v}
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	return r.AppendTo(dst)
}

// setCount sets a batch's record count and last offset delta to n and fixes the CRC.
func setCount(b []byte, n int32) {
	binary.BigEndian.PutUint32(b[23:], uint32(n-1))
	binary.BigEndian.PutUint32(b[57:], uint32(n))
	binary.BigEndian.PutUint32(b[17:], crc32Of(b))
}
