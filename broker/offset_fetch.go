// OffsetFetch (key 9), versions 1-9 (Kafka 4.0 removed 0).
//
// v1-v7 fetch one group (null topics from v2 = all its offsets, with a top-level error
// from v2); v8+ several groups. A group or partition without a committed offset gets offset
// -1 and no error, as in Kafka. With RequireStable (v7+) a partition whose group has an
// offset staged by an unfinished transaction gets UNSTABLE_OFFSET_COMMIT (txn_glue.go).
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(9, 1, 9, groupOrdered(handleOffsetFetch)) }

func handleOffsetFetch(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.OffsetFetchRequest)
	groups := req.Groups
	if req.Version < 8 {
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = req.Group
		if req.Topics != nil || req.Version < 2 {
			g.Topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
			for _, t := range req.Topics {
				g.Topics = append(g.Topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
			}
		}
		groups = []kmsg.OffsetFetchRequestGroup{g}
	}
	b.groups.FetchOffsets(groups, func(out []kmsg.OffsetFetchResponseGroup) {
		if req.RequireStable { // pending transactional offsets (txn_glue.go)
			b.markUnstableOffsets(out)
		}
		b.authorizeOffsetFetch(rc, groups, out)
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		if req.Version >= 8 {
			resp.Groups = out
			respond(resp)
			return
		}
		g := out[0]
		resp.ErrorCode = g.ErrorCode
		for _, t := range g.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
				if g.ErrorCode != 0 && req.Version < 2 {
					rp.ErrorCode = g.ErrorCode // v1 has no top-level error
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		respond(resp)
	})
}

// authorizeOffsetFetch applies ACLs as Kafka: a group the principal may not DESCRIBE gets
// GROUP_AUTHORIZATION_FAILED and nothing else; a named topic it may not DESCRIBE gets
// TOPIC_AUTHORIZATION_FAILED per partition; unauthorized topics are left out of "all offsets".
func (b *Broker) authorizeOffsetFetch(rc *ReqCtx, groups []kmsg.OffsetFetchRequestGroup, out []kmsg.OffsetFetchResponseGroup) {
	if b.authz == nil {
		return
	}
	for i := range out {
		g := &out[i]
		if !b.allowedGroup(rc, kmsg.ACLOperationDescribe, g.Group) {
			g.ErrorCode, g.Topics = kerr.GroupAuthorizationFailed.Code, nil
			continue
		}
		all := i < len(groups) && groups[i].Topics == nil
		kept := g.Topics[:0]
		for _, t := range g.Topics {
			if b.allowedTopic(rc, kmsg.ACLOperationDescribe, t.Topic) {
				kept = append(kept, t)
				continue
			}
			if all {
				continue
			}
			for j := range t.Partitions {
				p := &t.Partitions[j]
				p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode = -1, -1, kmsg.StringPtr(""), kerr.TopicAuthorizationFailed.Code
			}
			kept = append(kept, t)
		}
		g.Topics = kept
	}
}
