// DescribeGroups (key 15), versions 0-6.
//
// Members' metadata and assignments are shown only for Stable groups (as Kafka). An unknown
// group is reported in state Dead, with GROUP_ID_NOT_FOUND from v6 (KIP-1043) and no error
// before; a KIP-848 consumer group likewise (Dead, "is not a classic group"). Authorized
// operations (v3+, when asked): without ACLs those Kafka reports then (READ, DELETE,
// DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS), with ACLs the principal's. A group the principal
// may not DESCRIBE gets GROUP_AUTHORIZATION_FAILED and nothing else.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(15, 0, 6, groupOrdered(handleDescribeGroups)) }

func handleDescribeGroups(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	// ACLs, as Kafka: groups the principal may not DESCRIBE come first, with
	// GROUP_AUTHORIZATION_FAILED and nothing else; the coordinator describes the others.
	var denied []kmsg.DescribeGroupsResponseGroup
	allowed := make([]string, 0, len(req.Groups))
	for _, g := range req.Groups {
		if b.allowedGroup(rc, kmsg.ACLOperationDescribe, g) {
			allowed = append(allowed, g)
			continue
		}
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.Group, d.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
		denied = append(denied, d)
	}
	b.groups.DescribeGroups(allowed, func(gs []kmsg.DescribeGroupsResponseGroup) {
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for i := range gs {
			g := &gs[i]
			dead := g.State == "Dead"
			if dead && req.Version < 6 {
				g.ErrorCode, g.ErrorMessage = 0, nil
			}
			g.AuthorizedOperations = -2147483648
			// As Kafka: every group answered without an error gets them, a Dead (missing)
			// one below v6 too.
			if req.IncludeAuthorizedOperations && g.ErrorCode == 0 {
				g.AuthorizedOperations = b.authorizedOps(rc, kmsg.ACLResourceTypeGroup, g.Group)
			}
		}
		resp.Groups = append(denied, gs...)
		respond(resp)
	})
}
