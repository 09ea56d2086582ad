// SyncGroup (key 14), versions 0-5.
//
// Followers wait for the leader's SyncGroup, which carries every member's assignment; the
// logic is in broker/group.
package broker

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.SyncGroupRequest)
	b.groups.SyncGroup(groupClient(rc), req, func(r *kmsg.SyncGroupResponse) { respond(r) })
}
