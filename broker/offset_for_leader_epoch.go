// OffsetForLeaderEpoch (key 23), versions 2-4.
//
// klite's partitions have one leader epoch, 0, for their whole life. CurrentLeaderEpoch -1
// skips the fencing check; any other value below 0 is FENCED_LEADER_EPOCH and above 0
// UNKNOWN_LEADER_EPOCH, as Kafka checks it against the current epoch. The requested
// LeaderEpoch 0 (the latest) ends at the log end offset (klite's high watermark: every
// acknowledged batch); a larger epoch, or -1, is unknown: epoch -1 and end offset -1 with no
// error, as Kafka answers from its epoch cache. A negative epoch below -1 precedes epoch 0,
// which starts at the log start offset. An unknown topic or partition is
// UNKNOWN_TOPIC_OR_PARTITION. ReplicaID (v3+) is ignored (there are no followers).
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(23, 2, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			p, kerrv := b.partition(rt.Topic, rp.Partition)
			if !b.allowedTopic(rc, kmsg.ACLOperationDescribe, rt.Topic) {
				kerrv = kerr.TopicAuthorizationFailed // ACLs, as Kafka
			}
			switch {
			case kerrv != nil:
				sp.ErrorCode = kerrv.Code
			case rp.CurrentLeaderEpoch != -1 && rp.CurrentLeaderEpoch < 0:
				sp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case rp.CurrentLeaderEpoch > 0:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			case rp.LeaderEpoch == 0:
				_, hwm := p.offsets()
				sp.LeaderEpoch, sp.EndOffset = 0, hwm
			case rp.LeaderEpoch < -1:
				logStart, _ := p.offsets()
				sp.LeaderEpoch, sp.EndOffset = rp.LeaderEpoch, logStart
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	respond(resp)
}
