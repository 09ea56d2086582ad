package broker

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupOverlongStrings: a group ID (or other string) longer than 32767 bytes, possible
// only in a flexible version's compact string, makes Kafka's request reader refuse the
// request and close the connection; klite does the same for JoinGroup and SyncGroup, and
// creates no group.
func TestGroupOverlongStrings(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	long := strings.Repeat("g", 40000)

	join := kmsg.NewPtrJoinGroupRequest()
	join.Version = 9
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = long, "consumer", 10000, 10000
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", []byte{0}
	join.Protocols = append(join.Protocols, p)
	conn := dialRaw(t, tb.addr)
	conn.Write(frame(join, 1))
	expectClosed(t, conn, "JoinGroup with a 40000-byte group ID")

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version = 5
	sync.Group, sync.MemberID = "g", long
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	conn = dialRaw(t, tb.addr)
	conn.Write(frame(sync, 1))
	expectClosed(t, conn, "SyncGroup with a 40000-byte member ID")

	// A normal request on a new connection still works, and no group was made.
	lg := kmsg.NewPtrListGroupsRequest()
	lg.Version = 4
	conn = dialRaw(t, tb.addr)
	conn.Write(frame(lg, 2))
	resp := kmsg.NewPtrListGroupsResponse()
	resp.Version = 4
	readResponse(t, conn, resp, true)
	if len(resp.Groups) != 0 {
		t.Fatalf("groups after refused joins: %+v", resp.Groups)
	}
}
