// OffsetDelete (key 47), version 0.
//
// Deletes committed offsets of an Empty group, or of topics a "consumer" group with members
// is not subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise); other non-empty groups get
// NON_EMPTY_GROUP, unknown groups GROUP_ID_NOT_FOUND, unknown topics or partitions
// UNKNOWN_TOPIC_OR_PARTITION, as in Kafka 4.0.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(47, 0, 0, groupOrdered(handleOffsetDelete)) }

func handleOffsetDelete(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	if !b.allowedGroup(rc, kmsg.ACLOperationDelete, req.Group) { // ACLs, as Kafka
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		respond(resp)
		return
	}
	if req.Group == "" { // as Kafka's coordinator
		resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = kerr.InvalidGroupID.Code
		respond(resp)
		return
	}
	known := *req
	known.Topics = nil
	var unknown []kmsg.OffsetDeleteResponseTopic
	for _, t := range req.Topics {
		n, ok := b.topicPartitions(t.Topic)
		kt := t
		kt.Partitions = nil
		ut := kmsg.NewOffsetDeleteResponseTopic()
		ut.Topic = t.Topic
		topicOK := b.allowedTopic(rc, kmsg.ACLOperationRead, t.Topic)
		for _, p := range t.Partitions {
			if !topicOK || !ok || p.Partition < 0 || p.Partition >= n {
				up := kmsg.NewOffsetDeleteResponseTopicPartition()
				up.Partition, up.ErrorCode = p.Partition, kerr.UnknownTopicOrPartition.Code
				if !topicOK {
					up.ErrorCode = kerr.TopicAuthorizationFailed.Code
				}
				ut.Partitions = append(ut.Partitions, up)
				continue
			}
			kt.Partitions = append(kt.Partitions, p)
		}
		if len(kt.Partitions) > 0 {
			known.Topics = append(known.Topics, kt)
		}
		if len(ut.Partitions) > 0 {
			unknown = append(unknown, ut)
		}
	}
	b.groups.DeleteOffsets(&known, func(r *kmsg.OffsetDeleteResponse) {
		if r.ErrorCode == 0 {
			r.Topics = append(unknown, r.Topics...)
		}
		respond(r)
	})
}
