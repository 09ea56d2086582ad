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
	"fmt"
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

// batchError is a produce validation failure: a Kafka error code, a message for the
// response's ErrorMessage field and, for per-record failures, the records at fault. logStart
// marks failures Kafka raises inside the log (it then answers the partition's real log start
// offset; -1 otherwise).
type batchError struct {
	err      *kerr.Error
	msg      string
	records  []kmsg.ProduceResponseTopicPartitionErrorRecord
	logStart bool
}

// timestampLimits are a topic's timestamp rules: message.timestamp.before.max.ms and
// after.max.ms checked against now (milliseconds) on CreateTime topics; logAppendTime marks a
// LogAppendTime topic, whose record timestamps are not checked.
type timestampLimits struct {
	now, before, after int64
	logAppendTime      bool
	// compacted: the topic's cleanup.policy includes compact. The same pass over the
	// records then lists those without a key in keyless (record indexes), for the caller
	// to refuse after its transactional checks (produce_compacted.go).
	compacted      bool
	keylessMessage string // the per-record error message for a keyless record
	keyless        []int32
}

// validateProduceBatch checks the records of one partition in a Produce request of the given
// version, the way Kafka 4.0 does for message format v2, in its order: how its batch reader
// frames the bytes (KafkaApis: one batch, magic 2), then the log's checks (base offset 0, size,
// CRC, codec), then LogValidator's: the header, then every record, after decompressing the
// payload when it is compressed (batch_records.go). Bytes after the batch too few to frame another
// (a partial second batch) are ignored, as Kafka trims them: the caller stores
// records[:h.Length+12].
func validateProduceBatch(records []byte, version int16, maxMessageBytes int32, ts *timestampLimits) (batchHeader, *batchError) {
	var h batchHeader
	noBatch := &batchError{err: kerr.InvalidRecord, msg: "produce requests must have at least one record batch per partition"}
	// Kafka's batch reader: a length under the smallest (v0) record overhead or a magic
	// above 2 is CORRUPT_MESSAGE; a batch cut short is no batch at all.
	frame := func(b []byte) (size int64, ok bool, berr *batchError) {
		if len(b) < 12 {
			return 0, false, nil
		}
		l := int32(binary.BigEndian.Uint32(b[8:]))
		if l < 14 {
			return 0, false, &batchError{err: kerr.CorruptMessage, msg: fmt.Sprintf("Record size %d is less than the minimum record overhead (14)", l)}
		}
		if len(b) < 17 {
			return 0, false, nil
		}
		if m := int8(b[16]); m < 0 || m > 2 {
			return 0, false, &batchError{err: kerr.CorruptMessage, msg: fmt.Sprintf("Invalid magic found in record: %d", m)}
		}
		if int64(len(b)) < int64(l)+12 {
			return 0, false, nil
		}
		return int64(l) + 12, true, nil
	}
	size, ok, berr := frame(records)
	if berr != nil {
		return h, berr
	}
	if !ok {
		return h, noBatch
	}
	if records[16] != 2 {
		if version < 3 {
			return h, &batchError{err: kerr.UnsupportedForMessageFormat, msg: "klite only accepts message format v2 (RecordBatch)"}
		}
		return h, &batchError{err: kerr.InvalidRecord, msg: fmt.Sprintf("Produce requests with version %d are only allowed to contain record batches with magic version 2", version)}
	}
	if _, more, berr := frame(records[size:]); berr != nil {
		return h, berr
	} else if more && version >= 3 {
		return h, &batchError{err: kerr.InvalidRecord, msg: fmt.Sprintf("Produce requests with version %d are only allowed to contain exactly one record batch", version)}
	} else if more {
		return h, &batchError{err: kerr.InvalidRecord, msg: "klite accepts exactly one record batch per partition"}
	}
	h, _ = parseBatchHeader(records) // at least 17 bytes; the rest is checked below
	batch := records[:size]
	if c := h.codec(); c == 4 && version < 7 && len(batch) >= 23 {
		return h, &batchError{err: kerr.UnsupportedCompressionType, msg: "Produce requests with version " + fmt.Sprint(version) + " are not allowed to use ZStandard compression"}
	}
	// The log's checks (UnifiedLog.analyzeAndValidateRecords).
	if base := int64(binary.BigEndian.Uint64(batch)); base != 0 {
		return h, &batchError{err: kerr.InvalidRecord, msg: fmt.Sprintf("The baseOffset of the record batch in the append should be 0, but it is %d", base), logStart: true}
	}
	if len(batch) > int(maxMessageBytes) {
		return h, &batchError{err: kerr.MessageTooLarge, msg: "record batch is larger than max.message.bytes"}
	}
	if len(batch) < batchHeaderLen {
		return h, &batchError{err: kerr.CorruptMessage, msg: fmt.Sprintf("Record batch is corrupt (the size %d is smaller than the minimum allowed overhead 61)", len(batch))}
	}
	if crc32.Checksum(batch[21:], crc32c) != h.CRC {
		return h, &batchError{err: kerr.CorruptMessage, msg: "record batch CRC-32C mismatch"}
	}
	if h.codec() > 4 { // Java's CompressionType.forId throws IllegalArgumentException
		return h, &batchError{err: kerr.UnknownServerError, msg: fmt.Sprintf("Unknown compression type id: %d", h.codec()), logStart: true}
	}
	// LogValidator.
	if h.LastOffsetDelta < 0 || h.NumRecords <= 0 || int64(h.LastOffsetDelta)+1 != int64(h.NumRecords) {
		return h, &batchError{err: kerr.InvalidRecord, msg: "inconsistent batch offset range and record count", logStart: true}
	}
	if h.control() {
		return h, &batchError{err: kerr.InvalidRecord, msg: "clients are not allowed to write control records", logStart: true}
	}
	if h.hasProducerID() && h.BaseSequence < 0 {
		return h, &batchError{err: kerr.InvalidRecord, msg: "invalid sequence number", logStart: true}
	}
	var recErrs []kmsg.ProduceResponseTopicPartitionErrorRecord
	timestampErrs := false
	ts.keyless = ts.keyless[:0]
	berr = walkRecords(batch[batchHeaderLen:], h.codec(), h.NumRecords, func(i, offsetDelta int32, tsDelta int64, keyNull bool) *batchError {
		// Kafka rewrites a compressed batch whose inner offsets are not 0..n-1; klite stores
		// batches as produced, so it refuses them (compressed or not).
		if offsetDelta != i {
			return &batchError{err: kerr.InvalidRecord, msg: "record has an invalid offset delta"}
		}
		if ts.compacted && keyNull {
			// LogValidator.validateRecord: the key error is the record's error, its
			// timestamp is not checked.
			ts.keyless = append(ts.keyless, i)
			recErrs = append(recErrs, kmsg.ProduceResponseTopicPartitionErrorRecord{RelativeOffset: i})
			return nil
		}
		t := h.FirstTimestamp + tsDelta
		if h.logAppendTime() {
			t = h.MaxTimestamp // what Kafka's record.timestamp() reads for such a batch
		}
		// Kafka's LogValidator.validateTimestamp: a CreateTime topic checks the range (-1, "no
		// timestamp", is exempt); otherwise a batch claiming LogAppendTime is refused (the
		// broker sets that type, not the producer), on either kind of topic.
		var msg string
		if !ts.logAppendTime && t != -1 {
			if diff := ts.now - t; diff > ts.before || -diff > ts.after {
				msg = fmt.Sprintf("Timestamp %d of message with offset %d is out of range. The timestamp should be within [%d, %d]", t, offsetDelta, ts.now-ts.before, ts.now+ts.after)
			}
		} else if h.logAppendTime() {
			msg = "Invalid timestamp type in message. Producer should not set timestamp type to LogAppendTime."
		}
		if msg != "" {
			e := kmsg.NewProduceResponseTopicPartitionErrorRecord()
			e.RelativeOffset, e.ErrorMessage = i, kmsg.StringPtr(msg)
			recErrs = append(recErrs, e)
			timestampErrs = true
		}
		return nil
	})
	if berr != nil {
		berr.logStart = true
		return h, berr
	}
	if timestampErrs {
		// Kafka answers INVALID_TIMESTAMP when any record's error is one, listing every
		// record error (keyless records' too).
		for j := range recErrs {
			if recErrs[j].ErrorMessage == nil {
				recErrs[j].ErrorMessage = kmsg.StringPtr(ts.keylessMessage)
			}
		}
		ts.keyless = ts.keyless[:0]
		return h, &batchError{err: kerr.InvalidTimestamp, msg: "One or more records have been rejected due to invalid timestamp", records: recErrs, logStart: true}
	}
	return h, nil
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
