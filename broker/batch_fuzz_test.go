package broker

import (
	"encoding/binary"
	"testing"
)

// FuzzBatch feeds arbitrary bytes to produce-batch validation and, for batches that pass,
// to the timestamp decoding used by ListOffsets: neither may panic, and validation must be
// consistent with the header it reports.
func FuzzBatch(f *testing.F) {
	f.Add(rawBatch(-1, -1, -1, 3, 1000, 1), true)
	f.Add(rawBatch(7, 0, 5, 1, 1000, 0), false)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 49, 0, 0, 0, 0, 2}, true)
	f.Fuzz(func(t *testing.T, data []byte, fixCRC bool) {
		if fixCRC && len(data) >= batchHeaderLen {
			// Reach past the CRC check into header and record validation.
			binary.BigEndian.PutUint32(data[17:], crc32Checksum(data[21:]))
		}
		h, berr := validateProduceBatch(data, 1<<20)
		if berr != nil {
			return
		}
		if int(h.Length)+12 != len(data) || h.NumRecords != h.LastOffsetDelta+1 || h.Magic != 2 {
			t.Fatalf("accepted an inconsistent batch: %+v (len %d)", h, len(data))
		}
		recs, err := recordTimestamps(data, 100)
		if err != nil {
			if h.codec() == 0 {
				t.Fatalf("validated uncompressed batch does not decode: %v", err)
			}
			return
		}
		if h.codec() == 0 && len(recs) != int(h.NumRecords) {
			t.Fatalf("decoded %d records, header says %d", len(recs), h.NumRecords)
		}
		stampBatch(data, 5, 123)
		if crc32Checksum(data[21:]) != binary.BigEndian.Uint32(data[17:]) {
			t.Fatal("stamped batch has a stale CRC")
		}
	})
}
