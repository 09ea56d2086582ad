package storage

import (
	"bytes"
	"hash/crc32"
	"math/rand"
	"testing"
)

func TestCRC32CCombine(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, n := range []int{0, 1, 2, 3, 7, 8, 21, 100, 1000, 4096, 65537, 1 << 20} {
		data := make([]byte, n+40)
		r.Read(data)
		for _, split := range []int{0, 1, 21, 40} {
			a, b := data[:split], data[split:split+n]
			want := crc32.Checksum(append(append([]byte(nil), a...), b...), castagnoli)
			got := crc32cCombine(crc32.Checksum(a, castagnoli), crc32.Checksum(b, castagnoli), len(b))
			if got != want {
				t.Fatalf("len(A)=%d len(B)=%d: combine %08x, want %08x", split, n, got, want)
			}
		}
	}
}

// An entry header written with a caller-supplied CRC of the batch tail is byte-identical to
// one computed over the whole batch, and a wrong supplied CRC makes the entry fail its check.
func TestEntryHeaderWithSuppliedDataCRC(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for _, n := range []int{21, 22, 61, 1024, 300000} {
		data := make([]byte, n)
		r.Read(data)
		b := &Batch{TP: TopicPartition{TopicID: [16]byte{1, 2}, Partition: 3}, BaseOffset: 10, LastOffset: 20, MaxTimestamp: 99, Data: data}
		var plain, fast [entryHeaderSize]byte
		putEntryHeader(plain[:], b, 0)
		b.DataCRCFrom, b.DataCRC = 21, crc32.Checksum(data[21:], castagnoli)
		putEntryHeader(fast[:], b, 0)
		if !bytes.Equal(plain[:], fast[:]) {
			t.Fatalf("n=%d: header with supplied CRC differs:\n% x\n% x", n, plain, fast)
		}
		if !checkEntry(fast[:], data) {
			t.Fatalf("n=%d: entry does not verify", n)
		}
		b.DataCRC ^= 1
		putEntryHeader(fast[:], b, 0)
		if checkEntry(fast[:], data) {
			t.Fatalf("n=%d: entry with a wrong supplied CRC verifies", n)
		}
	}
}
