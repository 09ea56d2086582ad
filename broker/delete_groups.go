// DeleteGroups (key 42), versions 0-2.
//
// Deletes Empty groups with their committed offsets; NON_EMPTY_GROUP for groups with
// members, GROUP_ID_NOT_FOUND for unknown ones, as Kafka.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(42, 0, 2, groupOrdered(handleDeleteGroups)) }

func handleDeleteGroups(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	// ACLs, as Kafka: groups the principal may not DELETE get GROUP_AUTHORIZATION_FAILED
	// (listed after the others) and are left alone.
	// A group named twice is answered once (Kafka keeps the groups in a set).
	var denied []kmsg.DeleteGroupsResponseGroup
	allowed := make([]string, 0, len(req.Groups))
	seen := make(map[string]bool, len(req.Groups))
	for _, g := range req.Groups {
		if seen[g] {
			continue
		}
		seen[g] = true
		if b.allowedGroup(rc, kmsg.ACLOperationDelete, g) {
			allowed = append(allowed, g)
			continue
		}
		d := kmsg.NewDeleteGroupsResponseGroup()
		d.Group, d.ErrorCode = g, kerr.GroupAuthorizationFailed.Code
		denied = append(denied, d)
	}
	b.groups.DeleteGroups(allowed, func(gs []kmsg.DeleteGroupsResponseGroup) {
		resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		resp.Groups = append(gs, denied...)
		respond(resp)
	})
}
