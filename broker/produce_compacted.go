package broker

// A compacted topic (cleanup.policy containing "compact") refuses records without a key,
// as Kafka's LogValidator.validateKey: the partition gets INVALID_RECORD, one record error
// per keyless record (its index in the batch), and Kafka's summary message. Compressed
// batches are decompressed for the check, as Kafka does.

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// compacted reports whether the topic's cleanup.policy includes compact.
func (t *topic) compacted() bool {
	v, _ := t.config("cleanup.policy")
	for _, p := range strings.Split(v, ",") {
		if strings.TrimSpace(p) == "compact" {
			return true
		}
	}
	return false
}

// keylessRecordErrors returns the per-record errors and the partition error for the
// keyless records of a batch produced to a compacted topic; nil, nil when there are none.
func (t *topic) keylessRecordErrors(topic string, partition int32, batch []byte, h *batchHeader) ([]kmsg.ProduceResponseTopicPartitionErrorRecord, *batchError) {
	if !t.compacted() || h.control() {
		return nil, nil
	}
	raw := batch[batchHeaderLen:]
	if c := h.codec(); c != 0 {
		var err error
		if raw, err = decompressor.Decompress(raw, kgo.CompressionCodecType(c)); err != nil {
			return nil, &batchError{err: kerr.CorruptMessage, msg: "cannot decompress the record batch"}
		}
	}
	var errs []kmsg.ProduceResponseTopicPartitionErrorRecord
	var shown []string
	for i := int32(0); len(raw) > 0 && i < h.NumRecords; i++ {
		l, sz := binary.Varint(raw)
		if sz <= 0 || l < 0 || int64(len(raw)-sz) < l {
			return nil, &batchError{err: kerr.CorruptMessage, msg: "truncated record"}
		}
		var r kmsg.Record
		if err := r.ReadFrom(raw[:sz+int(l)]); err != nil {
			return nil, &batchError{err: kerr.CorruptMessage, msg: "malformed record"}
		}
		raw = raw[sz+int(l):]
		if r.Key != nil {
			continue
		}
		msg := fmt.Sprintf("Compacted topic cannot accept message without key in topic partition %s-%d", topic, partition)
		errs = append(errs, kmsg.ProduceResponseTopicPartitionErrorRecord{RelativeOffset: i, ErrorMessage: kmsg.StringPtr(msg)})
		if len(shown) < 3 {
			shown = append(shown, fmt.Sprintf("RecordError(batchIndex=%d, message='%s')", i, msg))
		}
	}
	if len(errs) == 0 {
		return nil, nil
	}
	return errs, &batchError{err: kerr.InvalidRecord, msg: fmt.Sprintf("One or more records have been rejected due to %d record errors in total, and only showing the first three errors at most: [%s]",
		len(errs), strings.Join(shown, ", "))}
}
