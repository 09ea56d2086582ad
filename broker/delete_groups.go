// DeleteGroups (key 42), versions 0-2.
//
// Deletes Empty groups with their committed offsets; NON_EMPTY_GROUP for groups with
// members, GROUP_ID_NOT_FOUND for unknown ones, as Kafka.
package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(42, 0, 2, groupOrdered(handleDeleteGroups)) }

func handleDeleteGroups(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	b.groups.DeleteGroups(req.Groups, func(gs []kmsg.DeleteGroupsResponseGroup) {
		resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
		resp.Groups = gs
		respond(resp)
	})
}
