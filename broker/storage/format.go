package storage

import (
	"encoding/binary"
	"hash/crc32"
	"slices"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WAL entry header; see the diagram at the top of wal.go.
const (
	entryHeaderSize = 56
	entryMagic      = 0x4B57 // "KW"
	entryVersion    = 1
	// maxEntryPayload bounds the length field so that garbage cannot ask for huge buffers.
	maxEntryPayload = 1 << 30
)

// putEntryHeader writes the header for b into h[:entryHeaderSize], CRC included (over the
// header fields after the CRC field, then b.Data).
func putEntryHeader(h []byte, b *Batch) {
	_ = h[entryHeaderSize-1]
	binary.BigEndian.PutUint16(h[4:], entryMagic)
	h[6] = entryVersion
	h[7] = 0 // flags
	binary.BigEndian.PutUint32(h[8:], uint32(len(b.Data)))
	copy(h[12:28], b.TP.TopicID[:])
	binary.BigEndian.PutUint32(h[28:], uint32(b.TP.Partition))
	binary.BigEndian.PutUint64(h[32:], uint64(b.BaseOffset))
	binary.BigEndian.PutUint64(h[40:], uint64(b.LastOffset))
	binary.BigEndian.PutUint64(h[48:], uint64(b.MaxTimestamp))
	crc := crc32.Update(0, castagnoli, h[4:entryHeaderSize])
	crc = crc32.Update(crc, castagnoli, b.Data)
	binary.BigEndian.PutUint32(h[0:], crc)
}

// parseEntryHeader checks the fixed fields of a header and returns the payload length.
func parseEntryHeader(h []byte) (n int, ok bool) {
	if len(h) < entryHeaderSize {
		return 0, false
	}
	if binary.BigEndian.Uint16(h[4:]) != entryMagic || h[6] != entryVersion || h[7] != 0 {
		return 0, false
	}
	l := binary.BigEndian.Uint32(h[8:])
	if l > maxEntryPayload {
		return 0, false
	}
	return int(l), true
}

// checkEntry verifies the CRC of header h with payload p.
func checkEntry(h, p []byte) bool {
	crc := crc32.Update(0, castagnoli, h[4:entryHeaderSize])
	crc = crc32.Update(crc, castagnoli, p)
	return crc == binary.BigEndian.Uint32(h[0:])
}

// decodeEntryHeader fills b's metadata from a verified header (b.Data is left alone).
func decodeEntryHeader(h []byte, b *Batch) {
	copy(b.TP.TopicID[:], h[12:28])
	b.TP.Partition = int32(binary.BigEndian.Uint32(h[28:]))
	b.BaseOffset = int64(binary.BigEndian.Uint64(h[32:]))
	b.LastOffset = int64(binary.BigEndian.Uint64(h[40:]))
	b.MaxTimestamp = int64(binary.BigEndian.Uint64(h[48:]))
}

func sortedSegs[V any](m map[uint64]V) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
