package broker

// A compacted topic (cleanup.policy containing "compact") refuses records without a key,
// as Kafka's LogValidator.validateKey: the partition gets INVALID_RECORD, one record error
// per keyless record (its index in the batch), and Kafka's summary message. The keys are
// seen by the one validation pass over the records (validateProduceBatch, which decompresses
// a compressed batch once); this file turns what it found into the answer.

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
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

// keylessMessage is Kafka's per-record error for a keyless record of a compacted topic.
func keylessMessage(topic string, partition int32) string {
	return fmt.Sprintf("Compacted topic cannot accept message without key in topic partition %s-%d", topic, partition)
}

// keylessRecordErrors returns the per-record errors and the partition error for the keyless
// records (indexes in the batch) of a batch produced to a compacted topic; nil, nil when
// there are none.
func keylessRecordErrors(keyless []int32, msg string) ([]kmsg.ProduceResponseTopicPartitionErrorRecord, *batchError) {
	if len(keyless) == 0 {
		return nil, nil
	}
	errs := make([]kmsg.ProduceResponseTopicPartitionErrorRecord, 0, len(keyless))
	var shown []string
	for _, i := range keyless {
		errs = append(errs, kmsg.ProduceResponseTopicPartitionErrorRecord{RelativeOffset: i, ErrorMessage: kmsg.StringPtr(msg)})
		if len(shown) < 3 {
			shown = append(shown, fmt.Sprintf("RecordError(batchIndex=%d, message='%s')", i, msg))
		}
	}
	return errs, &batchError{err: kerr.InvalidRecord, msg: fmt.Sprintf("One or more records have been rejected due to %d record errors in total, and only showing the first three errors at most: [%s]",
		len(errs), strings.Join(shown, ", "))}
}
