package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMergeDeleteRecordsTopics: a repeated topic is one topic, a repeated partition keeps the
// last offset given, and a topic with no partitions is left out (Kafka keys the request by
// partition).
func TestMergeDeleteRecordsTopics(t *testing.T) {
	topic := func(name string, parts ...[2]int64) kmsg.DeleteRecordsRequestTopic {
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = name
		for _, p := range parts {
			rp := kmsg.NewDeleteRecordsRequestTopicPartition()
			rp.Partition, rp.Offset = int32(p[0]), p[1]
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	got := mergeDeleteRecordsTopics([]kmsg.DeleteRecordsRequestTopic{
		topic("empty"), topic("a", [2]int64{0, 1}, [2]int64{1, 5}), topic("b", [2]int64{0, 2}), topic("a", [2]int64{0, 3}, [2]int64{2, 4}), topic("empty"),
	})
	if len(got) != 2 || got[0].Topic != "a" || got[1].Topic != "b" {
		t.Fatalf("topics %+v, want a then b", got)
	}
	a := got[0].Partitions
	if len(a) != 3 || a[0].Partition != 0 || a[0].Offset != 3 || a[1].Partition != 1 || a[2].Partition != 2 {
		t.Fatalf("topic a partitions %+v, want 0 (offset 3), 1, 2", a)
	}
}
