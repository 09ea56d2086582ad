// LeaveGroup (key 13), versions 0-5.
//
// v0-v2 name one member (the error is top-level); v3+ a batch of members, static ones by
// instance ID (KIP-345), with an error per member. Logic in broker/group.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(13, 0, 5, groupOrdered(handleLeaveGroup)) }

func handleLeaveGroup(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.LeaveGroupRequest)
	if !b.allowedGroup(rc, kmsg.ACLOperationRead, req.Group) { // ACLs, as Kafka
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		respond(resp)
		return
	}
	b.groups.LeaveGroup(groupClient(rc), req, func(r *kmsg.LeaveGroupResponse) { respond(r) })
}
