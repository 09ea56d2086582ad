// ListGroups (key 16), versions 0-5.
//
// Every group klite knows, including groups that only hold committed offsets. v4+ filter by
// state (case-insensitive), v5+ by type: "classic" or "consumer" (KIP-848 groups).
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(16, 0, 5, groupOrdered(handleListGroups)) }

func handleListGroups(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.ListGroupsRequest)
	b.groups.ListGroups(req.StatesFilter, req.TypesFilter, func(gs []kmsg.ListGroupsResponseGroup, err error) {
		resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
		if err != nil {
			resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		}
		// ACLs, as Kafka: DESCRIBE on the cluster lists every group, else those it may DESCRIBE.
		if !b.allowedCluster(rc, kmsg.ACLOperationDescribe) {
			kept := gs[:0]
			for _, g := range gs {
				if b.allowedGroup(rc, kmsg.ACLOperationDescribe, g.Group) {
					kept = append(kept, g)
				}
			}
			gs = kept
		}
		resp.Groups = gs
		respond(resp)
	})
}
