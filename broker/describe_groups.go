// DescribeGroups (key 15), versions 0-6.
//
// Members' metadata and assignments are shown only for Stable groups (as Kafka). An unknown
// group is reported in state Dead, with GROUP_ID_NOT_FOUND from v6 (KIP-1043) and no error
// before; a KIP-848 consumer group likewise (Dead, "is not a classic group").
// Authorized operations (v3+, when asked) are those Kafka reports without ACLs:
// READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(15, 0, 6, groupOrdered(handleDescribeGroups)) }

// groupAuthorizedOps is the bit set of READ(3), DELETE(6), DESCRIBE(8), DESCRIBE_CONFIGS(10)
// and ALTER_CONFIGS(11).
const groupAuthorizedOps = 1<<3 | 1<<6 | 1<<8 | 1<<10 | 1<<11

func handleDescribeGroups(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	b.groups.DescribeGroups(req.Groups, func(gs []kmsg.DescribeGroupsResponseGroup) {
		resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
		for i := range gs {
			g := &gs[i]
			dead := g.State == "Dead"
			if dead && req.Version < 6 {
				g.ErrorCode, g.ErrorMessage = 0, nil
			}
			g.AuthorizedOperations = -2147483648
			if req.IncludeAuthorizedOperations && !dead && g.ErrorCode == 0 {
				g.AuthorizedOperations = groupAuthorizedOps
			}
		}
		resp.Groups = gs
		respond(resp)
	})
}
