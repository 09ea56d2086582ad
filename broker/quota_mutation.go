package broker

// Controller mutation quotas (KIP-599) on CreateTopics, CreatePartitions and DeleteTopics:
// each topic's partitions (created, added or deleted) are admitted against the client's
// controller_mutation_rate quota once the topic passed every other check, as Kafka's
// ReplicationControlManager applies ControllerRequestContext.applyPartitionChangeQuota;
// validate_only requests count too, as there. The quota's arithmetic and its strict and
// permissive modes are in broker/quota/mutation.go; the answer's throttle time is the larger
// of the mutation quota's and the request quota's (Kafka's
// RequestHandlerHelper.sendResponseMaybeThrottleWithControllerQuota).

import (
	"github.com/klite/klite/broker/quota"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// mutationQuota returns the request's controller mutation quota, strict from version
// strictSince (nil: no quota is stored at all).
func (b *Broker) mutationQuota(rc *ReqCtx, strictSince int16) *quota.MutationQuota {
	if !b.quotas.Any() {
		return nil
	}
	return b.quotaMgr.Mutations(rc.quotaUser(), rc.ClientID, rc.Version >= strictSince)
}

// admitMutation admits n partitions mutated, or returns THROTTLING_QUOTA_EXCEEDED with
// Kafka's message.
func (b *Broker) admitMutation(q *quota.MutationQuota, n int32) (*kerr.Error, string) {
	if q.Admit(int(n), b.now().UnixMilli()) {
		return nil, ""
	}
	return kerr.ThrottlingQuotaExceeded, "The throttling quota has been exceeded."
}

// answerMutation sends a mutation request's answer with its throttle time; clients of
// versions below clientThrottles do not back off themselves, so their answer is delayed.
func (b *Broker) answerMutation(rc *ReqCtx, q *quota.MutationQuota, resp kmsg.Response, clientThrottles int16, respond func(kmsg.Response)) {
	if q == nil {
		respond(resp)
		return
	}
	ms := b.decideThrottle(rc, quota.ControllerMutationRate, q.ThrottleMs(b.now().UnixMilli()))
	if r, ok := resp.(kmsg.SetThrottleResponse); ok && ms > 0 {
		r.SetThrottle(int32(min(ms, 1<<31-1)))
	}
	b.throttleAnswer(rc, resp, ms, rc.Version < clientThrottles, respond)
}
