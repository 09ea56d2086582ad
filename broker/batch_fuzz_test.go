package broker

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// FuzzBatch feeds arbitrary bytes to produce-batch validation and, for batches that pass,
// to the timestamp decoding used by ListOffsets: neither may panic, validation must be
// consistent with the header it reports, and every batch it accepts must decode.
func FuzzBatch(f *testing.F) {
	f.Add(rawBatch(-1, -1, -1, 3, 1000, 1), true)
	f.Add(rawBatch(7, 0, 5, 1, 1000, 0), false)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 49, 0, 0, 0, 0, 2}, true)
	for codec := int8(1); codec <= 4; codec++ {
		f.Add(compressedBatch(f, codec, 3, 1000), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, fixCRC bool) {
		if fixCRC && len(data) >= batchHeaderLen {
			// Reach past the CRC check into header and record validation.
			binary.BigEndian.PutUint32(data[17:], crc32Checksum(data[21:]))
		}
		h, berr := validateProduceBatch(data, 12, 1<<20, &timestampLimits{now: 5000, before: 1 << 62, after: 1 << 62})
		if berr != nil {
			return
		}
		// Bytes that do not frame a whole second batch may follow (Kafka ignores them).
		if int(h.Length)+12 > len(data) || h.NumRecords != h.LastOffsetDelta+1 || h.Magic != 2 {
			t.Fatalf("accepted an inconsistent batch: %+v (len %d)", h, len(data))
		}
		data = data[:int(h.Length)+12]
		// Whatever is accepted, compressed or not, consumers can decode.
		recs, err := recordTimestamps(data, 100)
		if err != nil {
			t.Fatalf("validated batch (codec %d) does not decode: %v", h.codec(), err)
		}
		if len(recs) != int(h.NumRecords) {
			t.Fatalf("decoded %d records, header says %d", len(recs), h.NumRecords)
		}
		stampBatch(data, 5, 123)
		if crc32Checksum(data[21:]) != binary.BigEndian.Uint32(data[17:]) {
			t.Fatal("stamped batch has a stale CRC")
		}
	})
}

// FuzzRecordPayload feeds arbitrary payloads straight to the record walker under every codec
// (the decoders see the bytes without a CRC in the way): no panic, and a payload it accepts
// holds exactly the records it was told (each visited once, in order).
func FuzzRecordPayload(f *testing.F) {
	plain := rawBatch(-1, -1, -1, 3, 1000, 1)[batchHeaderLen:]
	f.Add(plain, uint8(0), int32(3))
	for codec := int8(1); codec <= 4; codec++ {
		f.Add(compressPayload(f, codec, plain), uint8(codec), int32(3))
	}
	f.Fuzz(func(t *testing.T, payload []byte, codec uint8, n int32) {
		n = n % 1000 // bounded work per input
		if n < 0 {
			n = -n
		}
		var seen int32
		berr := walkRecords(payload, int8(codec%5), n, func(i, _ int32, _ int64, _ bool) *batchError {
			if i != seen {
				t.Fatalf("visited record %d, want %d", i, seen)
			}
			seen++
			return nil
		})
		if berr == nil && seen != n {
			t.Fatalf("accepted a payload of %d records, told %d", seen, n)
		}
	})
}

// FuzzWalkSlice checks walkSlice's fast path against walkSource, the byte-at-a-time walker
// it stands in for: on any payload both visit the same records with the same fields and
// return the same error.
func FuzzWalkSlice(f *testing.F) {
	f.Add(rawBatch(-1, -1, -1, 3, 1000, 1)[batchHeaderLen:], int32(3))
	f.Add(rawBatch(-1, -1, -1, 5, 40, 3)[batchHeaderLen:], int32(4))
	f.Add([]byte{0x0c, 0, 0, 0, 1, 0, 0x02, 0x02, 1, 2, 3, 4}, int32(1))
	f.Fuzz(func(t *testing.T, payload []byte, n int32) {
		n = n % 1000
		if n < 0 {
			n = -n
		}
		type visit struct {
			i, off  int32
			ts      int64
			keyNull bool
		}
		walk := func(fast bool) ([]visit, *batchError) {
			var vs []visit
			v := func(i, off int32, ts int64, keyNull bool) *batchError {
				vs = append(vs, visit{i, off, ts, keyNull})
				if len(vs) == 7 && keyNull {
					return &batchError{err: kerr.InvalidRecord, msg: "visitor refused"}
				}
				return nil
			}
			if fast {
				return vs, walkSlice(payload, n, v)
			}
			src := sliceSource{b: payload}
			berr := walkSource(&src, 0, n, v)
			return vs, berr
		}
		fv, fe := walk(true)
		sv, se := walk(false)
		if !slices.Equal(fv, sv) {
			t.Fatalf("visits differ: fast %v, byte at a time %v", fv, sv)
		}
		if (fe == nil) != (se == nil) || fe != nil && (fe.err != se.err || fe.msg != se.msg) {
			t.Fatalf("errors differ: fast %+v, byte at a time %+v", fe, se)
		}
	})
}
