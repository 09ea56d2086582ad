// OffsetCommit (key 8), versions 2-9 (Kafka 4.0 removed 0-1).
//
// Partitions of unknown topics, or past a topic's partition count, get
// UNKNOWN_TOPIC_OR_PARTITION here; the rest go to the coordinator, which answers once the
// commit is fsynced to the group log. Generation -1 with no member is a simple commit
// (accepted while the group has no members); an unknown group with a generation gets
// ILLEGAL_GENERATION before v9 and GROUP_ID_NOT_FOUND from v9, as in Kafka 4.0.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(8, 2, 9, handleOffsetCommit) }

func handleOffsetCommit(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	// known is the request with only existing partitions; unknown remembers the others.
	known := *req
	known.Topics = nil
	unknown := map[string]map[int32]bool{}
	for _, t := range req.Topics {
		n, ok := b.topicPartitions(t.Topic)
		kt := t
		kt.Partitions = nil
		for _, p := range t.Partitions {
			if !ok || p.Partition < 0 || p.Partition >= n {
				if unknown[t.Topic] == nil {
					unknown[t.Topic] = map[int32]bool{}
				}
				unknown[t.Topic][p.Partition] = true
				continue
			}
			kt.Partitions = append(kt.Partitions, p)
		}
		if len(kt.Partitions) > 0 {
			known.Topics = append(known.Topics, kt)
		}
	}
	build := func(got *kmsg.OffsetCommitResponse) {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		codes := map[string]map[int32]int16{}
		if got != nil {
			for _, t := range got.Topics {
				if codes[t.Topic] == nil {
					codes[t.Topic] = map[int32]int16{}
				}
				for _, p := range t.Partitions {
					codes[t.Topic][p.Partition] = p.ErrorCode
				}
			}
		}
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				if unknown[t.Topic][p.Partition] {
					rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				} else {
					rp.ErrorCode = codes[t.Topic][p.Partition]
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		respond(resp)
	}
	if len(known.Topics) == 0 {
		build(nil)
		return
	}
	b.groups.CommitOffsets(groupClient(rc), &known, build)
}
