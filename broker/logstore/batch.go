package logstore

// The Kafka v2 RecordBatch fields this package reads (layout in broker/batch.go):
// baseOffset @0 (8), batchLength @8 (4), partitionLeaderEpoch @12, magic @16, crc @17
// (CRC-32C of bytes 21..end), attributes @21 (2), lastOffsetDelta @23 (4), firstTimestamp
// @27 (8), maxTimestamp @35 (8), producerId @43 (8), producerEpoch @51, baseSequence @53,
// recordCount @57 (4), records @61. A control batch holds one record whose key is
// version int16 + type int16 (0 abort, 1 commit).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kgo"
)

const batchHeaderLen = 61

const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// batchInfo is what the log needs from a batch header.
type batchInfo struct {
	Base, Last     int64
	Size           int // whole batch: 12 + batchLength
	Attributes     int16
	FirstTimestamp int64
	MaxTimestamp   int64
	ProducerID     int64
	NumRecords     int32
}

func (b *batchInfo) transactional() bool { return b.Attributes&attrTransactional != 0 }
func (b *batchInfo) control() bool       { return b.Attributes&attrControl != 0 }
func (b *batchInfo) codec() int8         { return int8(b.Attributes & attrCodecMask) }

var errBadBatch = errors.New("logstore: malformed record batch")

// batchSize is the whole size of the batch whose header starts b (its length field plus
// the 12 bytes before it); b holds at least 12 bytes. Not checked: see parseBatch.
func batchSize(b []byte) int64 { return 12 + int64(int32(binary.BigEndian.Uint32(b[8:]))) }

// parseBatch decodes the header of the batch at the start of b and checks that the whole
// batch is present. It does not check the CRC (see checkBatchCRC).
func parseBatch(b []byte) (batchInfo, error) {
	var h batchInfo
	if len(b) < batchHeaderLen {
		return h, fmt.Errorf("%w: %d bytes, header needs %d", errBadBatch, len(b), batchHeaderLen)
	}
	length := int64(int32(binary.BigEndian.Uint32(b[8:])))
	if length < batchHeaderLen-12 || 12+length > int64(len(b)) {
		return h, fmt.Errorf("%w: length %d with %d bytes left", errBadBatch, length, len(b))
	}
	if b[16] != 2 {
		return h, fmt.Errorf("%w: magic %d", errBadBatch, b[16])
	}
	h.Base = int64(binary.BigEndian.Uint64(b))
	delta := int32(binary.BigEndian.Uint32(b[23:]))
	if delta < 0 || h.Base < 0 || h.Base > maxOffset-int64(delta) {
		return h, fmt.Errorf("%w: base offset %d, last offset delta %d", errBadBatch, h.Base, delta)
	}
	h.Last = h.Base + int64(delta)
	h.Size = int(12 + length)
	h.Attributes = int16(binary.BigEndian.Uint16(b[21:]))
	h.FirstTimestamp = int64(binary.BigEndian.Uint64(b[27:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[35:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[43:]))
	h.NumRecords = int32(binary.BigEndian.Uint32(b[57:]))
	return h, nil
}

const maxOffset = 1<<62 - 1

func checkBatchCRC(b []byte, h *batchInfo) bool {
	return crc32.Checksum(b[21:h.Size], crc32c) == binary.BigEndian.Uint32(b[17:])
}

// controlType returns 0 (abort) or 1 (commit) for a control batch, -1 if unreadable.
func controlType(b []byte, h *batchInfo) int {
	recs, err := records(b[:h.Size], h)
	if err != nil || len(recs) == 0 || len(recs[0].key) < 4 || recs[0].key == nil {
		return -1
	}
	return int(binary.BigEndian.Uint16(recs[0].key[2:]))
}

// record is one decoded record; raw is its full encoding (length varint included) so a
// compacted batch can be rebuilt from retained records without re-encoding them.
type record struct {
	offsetDelta int32
	tsDelta     int64
	key         []byte // nil: no key
	tombstone   bool   // null value
	raw         []byte
}

var decompressor = kgo.DefaultDecompressor()

// records decodes the batch's records (decompressing when needed).
func records(b []byte, h *batchInfo) ([]record, error) {
	raw := b[batchHeaderLen:h.Size]
	if c := h.codec(); c != 0 {
		var err error
		if raw, err = decompressor.Decompress(raw, kgo.CompressionCodecType(c)); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadBatch, err)
		}
	}
	// The header's count is not trusted for capacity: a record takes at least 7 bytes.
	out := make([]record, 0, min(max(int(h.NumRecords), 0), len(raw)/7+1))
	for len(raw) > 0 {
		r, n, err := decodeRecord(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		raw = raw[n:]
	}
	if len(out) != int(h.NumRecords) {
		return nil, fmt.Errorf("%w: %d records, header says %d", errBadBatch, len(out), h.NumRecords)
	}
	return out, nil
}

func decodeRecord(b []byte) (record, int, error) {
	var r record
	l, n := binary.Varint(b)
	if n <= 0 || l < 0 || l > int64(len(b)-n) {
		return r, 0, fmt.Errorf("%w: record length", errBadBatch)
	}
	total := n + int(l)
	r.raw = b[:total]
	p := b[n:total]
	if len(p) < 1 {
		return r, 0, fmt.Errorf("%w: empty record", errBadBatch)
	}
	p = p[1:] // attributes
	var ok bool
	var v int64
	if r.tsDelta, p, ok = varint(p); !ok {
		return r, 0, fmt.Errorf("%w: timestamp delta", errBadBatch)
	}
	if v, p, ok = varint(p); !ok || v < 0 || v > 1<<31-1 {
		return r, 0, fmt.Errorf("%w: offset delta", errBadBatch)
	}
	r.offsetDelta = int32(v)
	if v, p, ok = varint(p); !ok || v < -1 || v > int64(len(p)) {
		return r, 0, fmt.Errorf("%w: key length", errBadBatch)
	}
	if v >= 0 {
		r.key = p[:v:v]
		p = p[v:]
	}
	if v, p, ok = varint(p); !ok || v < -1 || v > int64(len(p)) {
		return r, 0, fmt.Errorf("%w: value length", errBadBatch)
	}
	r.tombstone = v < 0
	// Headers are not needed: the raw bytes are kept whole.
	return r, total, nil
}

func varint(p []byte) (int64, []byte, bool) {
	v, n := binary.Varint(p)
	if n <= 0 {
		return 0, p, false
	}
	return v, p[n:], true
}
