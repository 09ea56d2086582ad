package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cgHarness is a harness whose topics are fixed: "t" with 4 partitions.
func cgHarness(t testing.TB) *harness {
	return newHarness(t, Config{
		TopicInfo: func(name string) (TopicInfo, bool) {
			return TopicInfo{ID: topicID(name), Partitions: 4}, name == "t"
		},
	})
}

func (h *harness) cgJoin(group, memberID string) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.RebalanceTimeoutMillis = group, memberID, 30000
	req.SubscribedTopicNames = []string{"t"}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	ch := make(chan *kmsg.ConsumerGroupHeartbeatResponse, 1)
	h.c.ConsumerGroupHeartbeat(Client{Version: 1, ID: "c", Host: "/h"}, req, func(r *kmsg.ConsumerGroupHeartbeatResponse) { ch <- r })
	return await(h.t, ch)
}

func (h *harness) cgLeave(group, memberID string) {
	h.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.MemberEpoch = group, memberID, leaveEpoch
	ch := make(chan *kmsg.ConsumerGroupHeartbeatResponse, 1)
	h.c.ConsumerGroupHeartbeat(Client{Version: 1}, req, func(r *kmsg.ConsumerGroupHeartbeatResponse) { ch <- r })
	wantErr(h.t, "leave", await(h.t, ch).ErrorCode, nil)
}

func (h *harness) cgDescribe(group string) kmsg.ConsumerGroupDescribeResponseGroup {
	h.t.Helper()
	ch := make(chan []kmsg.ConsumerGroupDescribeResponseGroup, 1)
	h.c.ConsumerGroupDescribe([]string{group}, func(gs []kmsg.ConsumerGroupDescribeResponseGroup) { ch <- gs })
	return await(h.t, ch)[0]
}

func (h *harness) deleteGroup(group string) int16 {
	h.t.Helper()
	ch := make(chan []kmsg.DeleteGroupsResponseGroup, 1)
	h.c.DeleteGroups([]string{group}, func(gs []kmsg.DeleteGroupsResponseGroup) { ch <- gs })
	return await(h.t, ch)[0].ErrorCode
}

// TestConsumerGroupAcrossTypes: the answers Kafka 4.0 gives when a request for one group
// type meets a group of the other.
func TestConsumerGroupAcrossTypes(t *testing.T) {
	h := cgHarness(t)
	if r := h.cgJoin("cg", "m1"); r.ErrorCode != 0 || r.MemberEpoch != 1 || len(r.Assignment.Topics) != 1 || len(r.Assignment.Topics[0].Partitions) != 4 {
		t.Fatalf("join: %+v", r)
	}
	// DescribeGroups describes classic groups only.
	d := h.describe("cg")
	if d.State != "Dead" || d.ErrorCode != kerr.GroupIDNotFound.Code || *d.ErrorMessage != "Group cg is not a classic group." {
		t.Fatalf("DescribeGroups on a consumer group: %+v", d)
	}
	// A classic JoinGroup on a consumer group with members joins it (KIP-394 first).
	r := await(t, h.joinAsync("cg", ""))
	wantErr(t, "classic join to a consumer group", r.ErrorCode, kerr.MemberIDRequired)
	// Classic heartbeat / sync / leave do not know consumer-protocol members.
	wantErr(t, "classic heartbeat", h.heartbeat("cg", "m1", 1, nil), kerr.UnknownMemberID)
	// A group with members cannot be deleted.
	wantErr(t, "delete", h.deleteGroup("cg"), kerr.NonEmptyGroup)

	// A classic group with members of another protocol type is not a consumer group.
	id, jch := h.newMember("classic", func(r *kmsg.JoinGroupRequest) { r.ProtocolType = "connect" })
	jr := await(t, jch)
	await(t, h.syncAsync("classic", id, jr.Generation, nil, map[string]string{id: "x"}))
	if r := h.cgJoin("classic", "m2"); r.ErrorCode != kerr.GroupIDNotFound.Code || *r.ErrorMessage != "Group classic is not a consumer group." {
		t.Fatalf("consumer join to a classic group: %+v", r)
	}
	if d := h.cgDescribe("classic"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("ConsumerGroupDescribe on a classic group: %+v", d)
	}

	// An empty classic group (offsets only) becomes a consumer group and keeps its offsets.
	wantErr(t, "simple commit", h.commit(9, "simple", "", -1, map[string]int64{"t": 42}).Topics[0].Partitions[0].ErrorCode, nil)
	if r := h.cgJoin("simple", "m3"); r.ErrorCode != 0 {
		t.Fatalf("consumer join to an empty classic group: %+v", r)
	}
	if d := h.cgDescribe("simple"); d.ErrorCode != 0 || len(d.Members) != 1 {
		t.Fatalf("converted group: %+v", d)
	}
	if p := h.fetch("simple", "t"); p.Offset != 42 {
		t.Fatalf("offset after conversion: %d", p.Offset)
	}
	// And an empty consumer group becomes a classic group on a classic join.
	h.cgLeave("simple", "m3")
	id, jch = h.newMember("simple")
	if jr := await(t, jch); jr.ErrorCode != 0 || jr.LeaderID != id {
		t.Fatalf("classic join to an empty consumer group: %+v", jr)
	}
	if d := h.describe("simple"); d.ErrorCode != 0 || d.State != "CompletingRebalance" {
		t.Fatalf("converted back: %+v", d)
	}
	if p := h.fetch("simple", "t"); p.Offset != 42 {
		t.Fatalf("offset after conversion back: %d", p.Offset)
	}

	// Once empty, a consumer group can be deleted; it is gone after a restart too.
	h.cgLeave("cg", "m1")
	wantErr(t, "delete empty", h.deleteGroup("cg"), nil)
	h.restart()
	if d := h.cgDescribe("cg"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("deleted group after restart: %+v", d)
	}
}

// TestConsumerHeartbeatWritesOnlyChanges: a settled member's heartbeats write nothing to
// groups.log; a change (a second member) does.
func TestConsumerHeartbeatWritesOnlyChanges(t *testing.T) {
	h := cgHarness(t)
	r := h.cgJoin("cg", "m1")
	if r.ErrorCode != 0 {
		t.Fatalf("join: %+v", r)
	}
	size := h.log.Size()
	for i := 0; i < 3; i++ {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Version = 1
		req.Group, req.MemberID, req.MemberEpoch = "cg", "m1", r.MemberEpoch
		ch := make(chan *kmsg.ConsumerGroupHeartbeatResponse, 1)
		h.c.ConsumerGroupHeartbeat(Client{Version: 1}, req, func(r *kmsg.ConsumerGroupHeartbeatResponse) { ch <- r })
		if got := await(t, ch); got.ErrorCode != 0 || got.MemberEpoch != r.MemberEpoch {
			t.Fatalf("heartbeat: %+v", got)
		}
	}
	if h.log.Size() != size {
		t.Fatalf("steady heartbeats wrote %d bytes", h.log.Size()-size)
	}
	if r := h.cgJoin("cg", "m2"); r.ErrorCode != 0 {
		t.Fatalf("second join: %+v", r)
	}
	if h.log.Size() == size {
		t.Fatal("a new member was not written")
	}
}

// TestGroupConfigs: consumer.session.timeout.ms and consumer.heartbeat.interval.ms set for a
// group are validated, take effect on its members and survive a restart.
func TestGroupConfigs(t *testing.T) {
	h := cgHarness(t)
	set := func(kv map[string]string) (*kerr.Error, string) {
		return h.c.AlterGroupConfigs("cg", false, func(cur map[string]string) (map[string]string, *kerr.Error, string) {
			for k, v := range kv {
				cur[k] = v
			}
			return cur, nil, ""
		})
	}
	if e, msg := set(map[string]string{"consumer.session.timeout.ms": "61000"}); e != kerr.InvalidConfig ||
		msg != "consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms" {
		t.Fatalf("out of bounds: %v %q", e, msg)
	}
	if e, msg := set(map[string]string{"no.such": "1"}); e != kerr.InvalidConfig || msg != "Unknown group config name: no.such" {
		t.Fatalf("unknown name: %v %q", e, msg)
	}
	if e, msg := set(map[string]string{"consumer.session.timeout.ms": "50000", "consumer.heartbeat.interval.ms": "6000"}); e != nil {
		t.Fatalf("set: %v %q", e, msg)
	}
	h.restart()
	if m, err := h.c.GroupConfigs("cg"); err != nil || m["consumer.session.timeout.ms"] != "50000" || len(m) != 2 {
		t.Fatalf("configs after restart: %v %v", m, err)
	}
	if r := h.cgJoin("cg", "m1"); r.ErrorCode != 0 || r.HeartbeatIntervalMillis != 6000 {
		t.Fatalf("join: %+v", r)
	}
	h.advance(46 * time.Second) // past the default 45 s, within the group's 50 s
	if d := h.cgDescribe("cg"); len(d.Members) != 1 {
		t.Fatalf("member expired before the group's session timeout: %+v", d)
	}
	h.advance(5 * time.Second)
	if d := h.cgDescribe("cg"); len(d.Members) != 0 {
		t.Fatalf("member still there after the group's session timeout: %+v", d)
	}
}
