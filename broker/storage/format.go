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
	// entryFlagExternal marks an external entry (Batch.External): the header is followed by
	// a CRC-32C of the header alone instead of the batch bytes, which live elsewhere.
	entryFlagExternal = 2
	// externalCRCSize is the size of that header CRC; an external entry is
	// entryHeaderSize+externalCRCSize bytes on disk.
	externalCRCSize = 4
)

// entryLen is the size of b's entry on disk.
func entryLen(b *Batch) int {
	if b.External != nil {
		return entryHeaderSize + externalCRCSize
	}
	return entryHeaderSize + len(b.Data)
}

// putEntry writes b's entry (entryLen(b) bytes) into e: the header and the batch bytes, or for
// an external batch the header and the CRC of the header.
func putEntry(e []byte, b *Batch) {
	if b.External != nil {
		putEntryHeader(e, b, entryFlagExternal)
		binary.BigEndian.PutUint32(e[entryHeaderSize:], crc32.Checksum(e[:entryHeaderSize], castagnoli))
		return
	}
	putEntryHeader(e, b, 0)
	copy(e[entryHeaderSize:], b.Data)
}

// putEntryHeader writes the header for b with flags into h[:entryHeaderSize], CRC included
// (over the header fields after the CRC field, then b.Data).
func putEntryHeader(h []byte, b *Batch, flags byte) {
	_ = h[entryHeaderSize-1]
	binary.BigEndian.PutUint16(h[4:], entryMagic)
	h[6] = entryVersion
	h[7] = flags
	binary.BigEndian.PutUint32(h[8:], uint32(len(b.Data)))
	copy(h[12:28], b.TP.TopicID[:])
	binary.BigEndian.PutUint32(h[28:], uint32(b.TP.Partition))
	binary.BigEndian.PutUint64(h[32:], uint64(b.BaseOffset))
	binary.BigEndian.PutUint64(h[40:], uint64(b.LastOffset))
	binary.BigEndian.PutUint64(h[48:], uint64(b.MaxTimestamp))
	crc := crc32.Update(0, castagnoli, h[4:entryHeaderSize])
	if from := b.DataCRCFrom; from > 0 && from <= len(b.Data) {
		crc = crc32.Update(crc, castagnoli, b.Data[:from])
		crc = crc32cCombine(crc, b.DataCRC, len(b.Data)-from)
	} else {
		crc = crc32.Update(crc, castagnoli, b.Data)
	}
	binary.BigEndian.PutUint32(h[0:], crc)
}

// CRC-32C of a concatenation from the CRCs of its parts: crc(A||B) is crc(A) times x^(8|B|)
// plus crc(B), in GF(2)[x] modulo the Castagnoli polynomial (the pre- and post-inversion
// cancel out). Polynomials are bit-reflected, as in hash/crc32: bit 31 is x^0.
const castagnoliReflected = 0x82F63B78

// crc32cMulMod returns a*b modulo the polynomial.
func crc32cMulMod(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ castagnoliReflected
		} else {
			b >>= 1
		}
	}
	return p
}

// crc32cX2n[k] is x^(2^k) modulo the polynomial.
var crc32cX2n = func() (t [64]uint32) {
	t[0] = 1 << 30 // x^1
	for k := 1; k < len(t); k++ {
		t[k] = crc32cMulMod(t[k-1], t[k-1])
	}
	return t
}()

// crc32cCombine returns the CRC-32C of A||B given crcA, crcB and len(B).
func crc32cCombine(crcA, crcB uint32, lenB int) uint32 {
	// x^(8*lenB): bit k of lenB contributes x^(8*2^k) = x^(2^(k+3)).
	xn := uint32(1) << 31 // x^0
	for k, n := 3, uint64(lenB); n != 0; k, n = k+1, n>>1 {
		if n&1 != 0 {
			xn = crc32cMulMod(crc32cX2n[k], xn)
		}
	}
	return crc32cMulMod(xn, crcA) ^ crcB
}

// parseEntryHeader checks the fixed fields of a header and returns how many bytes of the
// entry follow it on disk: the batch bytes, or an external entry's header CRC.
func parseEntryHeader(h []byte) (n int, ok bool) {
	if len(h) < entryHeaderSize {
		return 0, false
	}
	if binary.BigEndian.Uint16(h[4:]) != entryMagic || h[6] != entryVersion || h[7] > entryFlagExternal {
		return 0, false
	}
	l := binary.BigEndian.Uint32(h[8:])
	if l > maxEntryPayload {
		return 0, false
	}
	switch h[7] {
	case entryFlagSeal:
		if l != 0 {
			return 0, false
		}
	case entryFlagExternal:
		if l == 0 { // Append refuses an empty external batch
			return 0, false
		}
		return externalCRCSize, true
	}
	return int(l), true
}

// checkEntry verifies the CRC of header h with p, the bytes parseEntryHeader says follow it:
// the CRC over header fields and batch bytes, or for an external entry (whose batch bytes
// are elsewhere) the CRC over the header.
func checkEntry(h, p []byte) bool {
	if h[7] == entryFlagExternal {
		return len(p) == externalCRCSize && crc32.Checksum(h[:entryHeaderSize], castagnoli) == binary.BigEndian.Uint32(p)
	}
	crc := crc32.Update(0, castagnoli, h[4:entryHeaderSize])
	crc = crc32.Update(crc, castagnoli, p)
	return crc == binary.BigEndian.Uint32(h[0:])
}

// isExternalHeader reports whether h is the header of an external entry.
func isExternalHeader(h []byte) bool {
	return binary.BigEndian.Uint16(h[4:]) == entryMagic && h[7] == entryFlagExternal
}

// decodeEntryHeader fills b's metadata from a verified header (b.Data is left alone), for an
// external entry also ExternalLen and the CRC that CheckExternal compares with.
func decodeEntryHeader(h []byte, b *Batch) {
	copy(b.TP.TopicID[:], h[12:28])
	b.TP.Partition = int32(binary.BigEndian.Uint32(h[28:]))
	b.BaseOffset = int64(binary.BigEndian.Uint64(h[32:]))
	b.LastOffset = int64(binary.BigEndian.Uint64(h[40:]))
	b.MaxTimestamp = int64(binary.BigEndian.Uint64(h[48:]))
	b.ExternalLen, b.extCRC = 0, 0
	if h[7] == entryFlagExternal {
		b.ExternalLen = int(binary.BigEndian.Uint32(h[8:]))
		b.extCRC = binary.BigEndian.Uint32(h[0:])
	}
}

func sortedSegs[V any](m map[uint64]V) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
