// Heartbeat (key 12), versions 0-4.
//
// REBALANCE_IN_PROGRESS while the group prepares a rebalance, ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID and FENCED_INSTANCE_ID as Kafka; logic in broker/group.
package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(12, 0, 4, groupOrdered(handleHeartbeat)) }

func handleHeartbeat(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.HeartbeatRequest)
	b.groups.Heartbeat(groupClient(rc), req, func(r *kmsg.HeartbeatResponse) { respond(r) })
}
