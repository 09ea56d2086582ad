// JoinGroup (key 11), versions 0-9.
//
// The classic group protocol lives in broker/group; this handler only adapts the request.
// The response is sent when the join phase of the rebalance completes (or at once for
// errors, MEMBER_ID_REQUIRED on v4+ first joins, and static members rejoining a Stable group).
package broker

import (
	"github.com/klite/klite/broker/group"
	"github.com/klite/klite/broker/server"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(11, 0, 9, groupOrdered(handleJoinGroup)) }

// groupClient describes the requester to the coordinator; hosts are shown as Kafka shows them
// (a Java InetAddress: "/127.0.0.1").
func groupClient(rc *ReqCtx) group.Client {
	return group.Client{Version: rc.Version, ID: rc.ClientID, Host: "/" + rc.ClientHost}
}

func handleJoinGroup(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.JoinGroupRequest)
	strs := []string{req.Group, req.MemberID, req.ProtocolType}
	if req.InstanceID != nil {
		strs = append(strs, *req.InstanceID)
	}
	for _, p := range req.Protocols {
		strs = append(strs, p.Name)
	}
	if overlongString(strs...) {
		respond(server.CloseConnection)
		return
	}
	if !b.allowedGroup(rc, kmsg.ACLOperationRead, req.Group) { // ACLs, as Kafka
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation, resp.Protocol = kerr.GroupAuthorizationFailed.Code, -1, kmsg.StringPtr("")
		respond(resp)
		return
	}
	b.groups.JoinGroup(groupClient(rc), req, func(r *kmsg.JoinGroupResponse) { respond(r) })
}

// overlongString reports a string longer than 32767 bytes. Kafka's generated request readers
// refuse such a string (only a flexible version's compact string can carry one) and the
// broker closes the connection, so a group can never be named or joined with one.
func overlongString(ss ...string) bool {
	for _, s := range ss {
		if len(s) > 0x7fff {
			return true
		}
	}
	return false
}
