// SyncGroup (key 14), versions 0-5.
//
// Followers wait for the leader's SyncGroup, which carries every member's assignment; the
// logic is in broker/group. From v5 the protocol type and name are mandatory: a request
// without them gets INCONSISTENT_GROUP_PROTOCOL, as in Kafka.
package broker

import (
	"github.com/klite/klite/broker/server"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(14, 0, 5, groupOrdered(handleSyncGroup)) }

func handleSyncGroup(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.SyncGroupRequest)
	strs := []string{req.Group, req.MemberID}
	for _, p := range []*string{req.InstanceID, req.ProtocolType, req.Protocol} {
		if p != nil {
			strs = append(strs, *p)
		}
	}
	for _, a := range req.GroupAssignment {
		strs = append(strs, a.MemberID)
	}
	if overlongString(strs...) { // Kafka's reader refuses the request (join_group.go)
		respond(server.CloseConnection)
		return
	}
	if req.Version >= 5 && (req.ProtocolType == nil || req.Protocol == nil) {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code
		respond(resp)
		return
	}
	if !b.allowedGroup(rc, kmsg.ACLOperationRead, req.Group) { // ACLs, as Kafka
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		respond(resp)
		return
	}
	b.groups.SyncGroup(groupClient(rc), req, func(r *kmsg.SyncGroupResponse) { respond(r) })
}
