package broker

// RecordBatch v2 header (message format v2), as stored in the WAL and served to consumers:
//
//	off  size  field
//	  0     8  baseOffset            (assigned by the broker)
//	  8     4  batchLength           (bytes after this field)
//	 12     4  partitionLeaderEpoch
//	 16     1  magic                 (2)
//	 17     4  crc                   (CRC-32C of bytes 21..end)
//	 21     2  attributes            (bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control)
//	 23     4  lastOffsetDelta
//	 27     8  firstTimestamp
//	 35     8  maxTimestamp
//	 43     8  producerId
//	 51     2  producerEpoch
//	 53     4  baseSequence
//	 57     4  recordCount
//	 61     -  records (compressed as a whole when codec != 0)

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const batchHeaderLen = 61

const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// batchHeader is the decoded fixed part of a RecordBatch.
type batchHeader struct {
	Length          int32
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	FirstTimestamp  int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	NumRecords      int32
}

func (h *batchHeader) codec() int8         { return int8(h.Attributes & attrCodecMask) }
func (h *batchHeader) logAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }
func (h *batchHeader) transactional() bool { return h.Attributes&attrTransactional != 0 }
func (h *batchHeader) control() bool       { return h.Attributes&attrControl != 0 }
func (h *batchHeader) lastSequence() int32 { return addSeq(h.BaseSequence, h.LastOffsetDelta) }
func (h *batchHeader) hasProducerID() bool { return h.ProducerID >= 0 }

// parseBatchHeader decodes the header of the batch at the start of b (no validation beyond
// length).
func parseBatchHeader(b []byte) (batchHeader, bool) {
	var h batchHeader
	if len(b) < batchHeaderLen {
		return h, false
	}
	h.Length = int32(binary.BigEndian.Uint32(b[8:]))
	h.Magic = int8(b[16])
	h.CRC = binary.BigEndian.Uint32(b[17:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[21:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[23:]))
	h.FirstTimestamp = int64(binary.BigEndian.Uint64(b[27:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[35:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[43:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[51:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[53:]))
	h.NumRecords = int32(binary.BigEndian.Uint32(b[57:]))
	return h, true
}

// batchError is a produce validation failure: a Kafka error code and a message for the
// response's ErrorMessage field.
type batchError struct {
	err *kerr.Error
	msg string
}

// validateProduceBatch checks the records of one partition in a produce request, the way
// Kafka's LogValidator does for message format v2. Compressed batches are not decompressed:
// their record count, offsets and timestamps come from the header (a difference from Kafka,
// which decompresses to validate each record).
func validateProduceBatch(records []byte, maxMessageBytes int32) (batchHeader, *batchError) {
	// v0/v1 message sets have the magic byte at the same position (offset 16).
	if len(records) >= 17 && records[16] < 2 {
		return batchHeader{}, &batchError{kerr.UnsupportedForMessageFormat, "klite only accepts message format v2 (RecordBatch)"}
	}
	h, ok := parseBatchHeader(records)
	if !ok {
		return h, &batchError{kerr.CorruptMessage, "record batch shorter than its header"}
	}
	if h.Magic != 2 {
		return h, &batchError{kerr.UnsupportedForMessageFormat, "unknown record batch magic"}
	}
	if int64(h.Length)+12 > int64(len(records)) || h.Length < batchHeaderLen-12 {
		return h, &batchError{kerr.CorruptMessage, "record batch length does not match the data"}
	}
	if int64(h.Length)+12 < int64(len(records)) {
		return h, &batchError{kerr.InvalidRecord, "produce requests must contain exactly one record batch per partition"}
	}
	if len(records) > int(maxMessageBytes) {
		return h, &batchError{kerr.MessageTooLarge, "record batch is larger than max.message.bytes"}
	}
	if crc32.Checksum(records[21:], crc32c) != h.CRC {
		return h, &batchError{kerr.CorruptMessage, "record batch CRC-32C mismatch"}
	}
	if h.codec() > 4 {
		return h, &batchError{kerr.CorruptMessage, "unknown compression codec"}
	}
	if h.LastOffsetDelta < 0 || h.NumRecords <= 0 || int64(h.LastOffsetDelta)+1 != int64(h.NumRecords) {
		return h, &batchError{kerr.InvalidRecord, "inconsistent batch offset range and record count"}
	}
	if h.control() {
		return h, &batchError{kerr.InvalidRecord, "clients are not allowed to write control records"}
	}
	if h.hasProducerID() && h.BaseSequence < 0 {
		return h, &batchError{kerr.InvalidRecord, "invalid sequence number"}
	}
	if h.codec() == 0 {
		if err := checkRecords(records[batchHeaderLen:], h.NumRecords); err != nil {
			return h, &batchError{kerr.InvalidRecord, err.Error()}
		}
	}
	return h, nil
}

// checkRecords decodes n uncompressed records and checks their offset deltas are 0..n-1.
func checkRecords(b []byte, n int32) error {
	for i := int32(0); i < n; i++ {
		l, sz := binary.Varint(b)
		if sz <= 0 || l < 0 || int64(len(b)-sz) < l {
			return errors.New("record is truncated")
		}
		var r kmsg.Record
		if err := r.ReadFrom(b[:sz+int(l)]); err != nil {
			return errors.New("record cannot be decoded")
		}
		if r.OffsetDelta != i {
			return errors.New("record has an invalid offset delta")
		}
		b = b[sz+int(l):]
	}
	if len(b) != 0 {
		return errors.New("record count does not match the records")
	}
	return nil
}

// stampBatch sets the broker-assigned base offset and, for LogAppendTime topics, the log
// append time (the timestamp type bit and max timestamp, as Kafka does), then recomputes the
// CRC when the covered bytes changed. b is modified in place.
func stampBatch(b []byte, baseOffset int64, logAppendTime int64) {
	binary.BigEndian.PutUint64(b[0:], uint64(baseOffset))
	binary.BigEndian.PutUint32(b[12:], 0) // partition leader epoch: klite's is always 0
	if logAppendTime >= 0 {
		attrs := binary.BigEndian.Uint16(b[21:]) | attrLogAppendTime
		binary.BigEndian.PutUint16(b[21:], attrs)
		binary.BigEndian.PutUint64(b[35:], uint64(logAppendTime))
		binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32c))
	}
}

// addSeq adds to a producer sequence number, wrapping at MaxInt32 like Kafka.
func addSeq(seq, delta int32) int32 {
	if int64(seq)+int64(delta) > int64(^uint32(0)>>1) {
		return int32(int64(seq) + int64(delta) - int64(^uint32(0)>>1) - 1)
	}
	return seq + delta
}

var decompressor = kgo.DefaultDecompressor()

// recordTimestamps returns each record's offset and timestamp in a stored batch,
// decompressing it if needed. For LogAppendTime batches every record has the max timestamp.
func recordTimestamps(batch []byte, baseOffset int64) ([][2]int64, error) {
	h, ok := parseBatchHeader(batch)
	if !ok {
		return nil, errors.New("short batch")
	}
	raw := batch[batchHeaderLen:]
	if c := h.codec(); c != 0 {
		var err error
		raw, err = decompressor.Decompress(raw, kgo.CompressionCodecType(c))
		if err != nil {
			return nil, err
		}
	}
	// The header's count is not trusted for capacity: a record takes at least 7 bytes.
	out := make([][2]int64, 0, min(max(int(h.NumRecords), 0), len(raw)/7+1))
	for len(raw) > 0 && int32(len(out)) < h.NumRecords {
		l, sz := binary.Varint(raw)
		if sz <= 0 || l < 0 || int64(len(raw)-sz) < l {
			return nil, errors.New("truncated record")
		}
		var r kmsg.Record
		if err := r.ReadFrom(raw[:sz+int(l)]); err != nil {
			return nil, err
		}
		ts := h.FirstTimestamp + r.TimestampDelta64
		if h.logAppendTime() {
			ts = h.MaxTimestamp
		}
		out = append(out, [2]int64{baseOffset + int64(r.OffsetDelta), ts})
		raw = raw[sz+int(l):]
	}
	return out, nil
}

func crc32Checksum(b []byte) uint32 { return crc32.Checksum(b, crc32c) }

// checkTimestamps applies message.timestamp.before.max.ms and after.max.ms to a CreateTime
// batch, as Kafka does per record (-1, "no timestamp", is exempt). The batch's max timestamp
// decides the upper bound exactly; the lower bound looks at each record when uncompressed.
func checkTimestamps(batch []byte, h *batchHeader, now, before, after int64) *batchError {
	tooNew := func(ts int64) bool { return ts >= 0 && after < now && ts > now+after }
	tooOld := func(ts int64) bool { return ts >= 0 && before < now && ts < now-before }
	if tooNew(h.MaxTimestamp) {
		return &batchError{kerr.InvalidTimestamp, "record timestamp is later than message.timestamp.after.max.ms allows"}
	}
	if before >= now {
		return nil
	}
	if h.codec() != 0 {
		if tooOld(h.FirstTimestamp) {
			return &batchError{kerr.InvalidTimestamp, "record timestamp is earlier than message.timestamp.before.max.ms allows"}
		}
		return nil
	}
	recs, err := recordTimestamps(batch, 0)
	if err != nil {
		return &batchError{kerr.InvalidRecord, err.Error()}
	}
	for _, r := range recs {
		if tooOld(r[1]) {
			return &batchError{kerr.InvalidTimestamp, "record timestamp is earlier than message.timestamp.before.max.ms allows"}
		}
	}
	return nil
}
