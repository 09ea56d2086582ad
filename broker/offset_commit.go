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

func init() { register(8, 2, 9, groupOrdered(handleOffsetCommit)) }

func handleOffsetCommit(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	// known is the request with only existing partitions; unknown remembers the others.
	known := *req
	known.Topics = nil
	// ACLs, as Kafka: without READ on the group every partition gets GROUP_AUTHORIZATION_FAILED;
	// without READ on a topic its partitions get TOPIC_AUTHORIZATION_FAILED.
	groupOK := b.allowedGroup(rc, kmsg.ACLOperationRead, req.Group)
	unknown := map[string]map[int32]int16{}
	// Kafka answers a rejected topic (unknown, or not authorized) with its partitions as asked,
	// so one listed with no partitions is still echoed; an existing one with none is dropped.
	emptyRejected := map[string]bool{}
	for _, t := range req.Topics {
		n, ok := b.topicPartitions(t.Topic)
		kt := t
		kt.Partitions = nil
		topicOK := b.allowedTopic(rc, kmsg.ACLOperationRead, t.Topic)
		if len(t.Partitions) == 0 && (!groupOK || !topicOK || !ok) {
			emptyRejected[t.Topic] = true
		}
		for _, p := range t.Partitions {
			code := int16(0)
			switch {
			case !groupOK:
				code = kerr.GroupAuthorizationFailed.Code
			case !topicOK:
				code = kerr.TopicAuthorizationFailed.Code
			case !ok || p.Partition < 0 || p.Partition >= n:
				code = kerr.UnknownTopicOrPartition.Code
			}
			if code != 0 {
				if unknown[t.Topic] == nil {
					unknown[t.Topic] = map[int32]int16{}
				}
				unknown[t.Topic][p.Partition] = code
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
		// Kafka lists the partitions it rejected up front (topics in request order), then the
		// coordinator's answers; mirror that so responses compare equal.
		index := map[string]int{}
		topicAt := func(topic string) int {
			i, ok := index[topic]
			if !ok {
				i = len(resp.Topics)
				index[topic] = i
				rt := kmsg.NewOffsetCommitResponseTopic()
				rt.Topic = topic
				resp.Topics = append(resp.Topics, rt)
			}
			return i
		}
		add := func(topic string, p int32, code int16) {
			i := topicAt(topic)
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, code
			resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
		}
		for _, t := range req.Topics {
			if len(t.Partitions) == 0 && emptyRejected[t.Topic] {
				topicAt(t.Topic)
			}
			for _, p := range t.Partitions {
				if code := unknown[t.Topic][p.Partition]; code != 0 {
					add(t.Topic, p.Partition, code)
				}
			}
		}
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				if unknown[t.Topic][p.Partition] == 0 {
					add(t.Topic, p.Partition, codes[t.Topic][p.Partition])
				}
			}
		}
		respond(resp)
	}
	if len(known.Topics) == 0 {
		build(nil)
		return
	}
	b.groups.CommitOffsets(groupClient(rc), &known, build)
}
