// Heartbeat (key 12), versions 0-4.
//
// REBALANCE_IN_PROGRESS while the group prepares a rebalance, ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID and FENCED_INSTANCE_ID as Kafka; logic in broker/group.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(12, 0, 4, groupOrdered(handleHeartbeat)) }

func handleHeartbeat(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.HeartbeatRequest)
	if !b.allowedGroup(rc, kmsg.ACLOperationRead, req.Group) { // ACLs, as Kafka
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		respond(resp)
		return
	}
	if req.Group == "" { // as Kafka's coordinator
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.InvalidGroupID.Code
		respond(resp)
		return
	}
	b.groups.Heartbeat(groupClient(rc), req, func(r *kmsg.HeartbeatResponse) { respond(r) })
}
