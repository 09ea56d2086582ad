// ConsumerGroupHeartbeat (key 68), versions 0-1, and ConsumerGroupDescribe (key 69),
// versions 0-1: the KIP-848 consumer group protocol, as Kafka 4.0. The state machine (member
// epochs, target assignment, reconciliation, server-side assignors) is in broker/group
// (consumer*.go); these handlers only adapt requests.
package broker

import (
	"github.com/klite/klite/broker/group"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(68, 0, 1, groupOrdered(handleConsumerGroupHeartbeat))
	register(69, 0, 1, groupOrdered(handleConsumerGroupDescribe))
}

func handleConsumerGroupHeartbeat(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	if !b.allowedGroup(rc, kmsg.ACLOperationRead, req.Group) { // ACLs, as Kafka
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		respond(resp)
		return
	}
	b.groups.ConsumerGroupHeartbeat(groupClient(rc), req, func(r *kmsg.ConsumerGroupHeartbeatResponse) {
		r.Version = req.Version
		respond(r)
	})
}

func handleConsumerGroupDescribe(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.ConsumerGroupDescribeRequest)
	// ACLs, as Kafka: groups the principal may not DESCRIBE are answered first with
	// GROUP_AUTHORIZATION_FAILED; the coordinator describes the others.
	var denied []kmsg.ConsumerGroupDescribeResponseGroup
	allowed := make([]string, 0, len(req.Groups))
	for _, g := range req.Groups {
		if b.allowedGroup(rc, kmsg.ACLOperationDescribe, g) {
			allowed = append(allowed, g)
			continue
		}
		d := kmsg.NewConsumerGroupDescribeResponseGroup()
		d.Group, d.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
		denied = append(denied, d)
	}
	b.groups.ConsumerGroupDescribe(allowed, func(gs []kmsg.ConsumerGroupDescribeResponseGroup) {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
		for i := range gs {
			gs[i].AuthorizedOperations = -2147483648
			if req.IncludeAuthorizedOperations && gs[i].ErrorCode == 0 {
				gs[i].AuthorizedOperations = b.authorizedOps(rc, kmsg.ACLResourceTypeGroup, gs[i].Group)
			}
		}
		resp.Groups = append(denied, gs...)
		respond(resp)
	})
}

// groupTopics gives the group coordinator read access to topic metadata (for the
// server-side assignors of consumer groups).
func (b *Broker) groupTopics(cfg *group.Config) {
	cfg.TopicInfo = func(name string) (group.TopicInfo, bool) {
		t := b.topic(name)
		if t == nil {
			return group.TopicInfo{}, false
		}
		return group.TopicInfo{ID: t.id, Partitions: int32(len(t.partitions()))}, true
	}
	cfg.TopicNames = func() []string {
		b.mu.RLock()
		defer b.mu.RUnlock()
		out := make([]string, 0, len(b.topics))
		for n := range b.topics {
			out = append(out, n)
		}
		return out
	}
	cfg.TopicNameByID = func(id [16]byte) (string, bool) {
		t := b.topicByID(id)
		if t == nil {
			return "", false
		}
		return t.name, true
	}
}
