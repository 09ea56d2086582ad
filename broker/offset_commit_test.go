package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetCommitEmptyTopics: a topic listed with no partitions is echoed when Kafka rejects
// it (unknown topic: its partitions as asked, none) and dropped when it exists (Kafka 4.0).
func TestOffsetCommitEmptyTopics(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "oc", 1, nil)
	cl := tb.client(t)
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.Generation = "oc-g", -1
	for _, name := range []string{"oc-missing", "oc", "oc"} {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = name
		req.Topics = append(req.Topics, rt)
	}
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 1
	req.Topics[2].Partitions = append(req.Topics[2].Partitions, rp)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 2 || resp.Topics[0].Topic != "oc-missing" || len(resp.Topics[0].Partitions) != 0 ||
		resp.Topics[1].Topic != "oc" || len(resp.Topics[1].Partitions) != 1 || resp.Topics[1].Partitions[0].ErrorCode != 0 {
		t.Fatalf("answer %+v, want oc-missing (no partitions) then oc partition 0 committed", resp.Topics)
	}
}
