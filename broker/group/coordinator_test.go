package group

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestFirstMemberJoinsAndSyncs(t *testing.T) {
	h := newHarness(t, Config{})
	id, ch := h.newMember("g")
	r := await(t, ch)
	wantErr(t, "join", r.ErrorCode, nil)
	if r.Generation != 1 || r.LeaderID != id || r.MemberID != id || *r.Protocol != "range" || *r.ProtocolType != "consumer" {
		t.Fatalf("join response %+v", r)
	}
	if len(r.Members) != 1 || r.Members[0].MemberID != id || string(r.Members[0].ProtocolMetadata) != string(subscription("t")) {
		t.Fatalf("leader members %+v", r.Members)
	}
	if st := h.state("g"); st != "CompletingRebalance" {
		t.Fatalf("state %s", st)
	}
	s := await(t, h.syncAsync("g", id, 1, nil, map[string]string{id: "assign"}))
	wantErr(t, "sync", s.ErrorCode, nil)
	if string(s.MemberAssignment) != "assign" || *s.Protocol != "range" {
		t.Fatalf("sync %+v", s)
	}
	wantErr(t, "heartbeat", h.heartbeat("g", id, 1, nil), nil)
	wantErr(t, "heartbeat wrong generation", h.heartbeat("g", id, 2, nil), kerr.IllegalGeneration)
	wantErr(t, "heartbeat unknown member", h.heartbeat("g", "nobody", 1, nil), kerr.UnknownMemberID)
	wantErr(t, "heartbeat unknown group", h.heartbeat("nog", id, 1, nil), kerr.UnknownMemberID)
	d := h.describe("g")
	if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 1 || string(d.Members[0].MemberAssignment) != "assign" {
		t.Fatalf("describe %+v", d)
	}
}

func TestJoinValidation(t *testing.T) {
	h := newHarness(t, Config{})
	ids, _ := h.stableGroup("g", 1)
	r := await(t, h.joinAsync("g", "", func(r *kmsg.JoinGroupRequest) { r.ProtocolType = "connect" }))
	wantErr(t, "other protocol type", r.ErrorCode, kerr.InconsistentGroupProtocol)
	r = await(t, h.joinAsync("g", "", protos("roundrobin")))
	wantErr(t, "no common protocol", r.ErrorCode, kerr.InconsistentGroupProtocol)
	r = await(t, h.joinAsync("g", "", timeouts(time.Second, time.Second)))
	wantErr(t, "short session", r.ErrorCode, kerr.InvalidSessionTimeout)
	r = await(t, h.joinAsync("", ""))
	wantErr(t, "empty group", r.ErrorCode, kerr.InvalidGroupID)
	r = await(t, h.joinAsync("g", "bogus"))
	wantErr(t, "unknown member", r.ErrorCode, kerr.UnknownMemberID)
	if r.MemberID != "bogus" || r.Generation != -1 {
		t.Fatalf("error response %+v", r)
	}
	r = await(t, h.joinAsync("nog", "bogus"))
	wantErr(t, "unknown member, unknown group", r.ErrorCode, kerr.UnknownMemberID)
	// A follower-like rejoin with unchanged metadata in Stable from the leader rebalances.
	if st := h.state("g"); st != "Stable" {
		t.Fatalf("state %s after rejected joins", st)
	}
	_ = ids
}

func TestSecondMemberTriggersRebalance(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.stableGroup("g", 1)
	id2, ch2 := h.newMember("g")
	pending(h, ch2)
	if st := h.state("g"); st != "PreparingRebalance" {
		t.Fatalf("state %s", st)
	}
	wantErr(t, "heartbeat during rebalance", h.heartbeat("g", ids[0], gen, nil), kerr.RebalanceInProgress)
	// Commits from the old generation are still accepted while preparing (Kafka does so).
	wantErr(t, "commit during rebalance", h.commit(9, "g", ids[0], gen, map[string]int64{"t": 3}).Topics[0].Partitions[0].ErrorCode, nil)
	ch1 := h.joinAsync("g", ids[0])
	r1, r2 := await(t, ch1), await(t, ch2)
	if r1.Generation != gen+1 || r2.Generation != gen+1 || r1.LeaderID != ids[0] || r2.LeaderID != ids[0] {
		t.Fatalf("responses %+v %+v", r1, r2)
	}
	if len(r1.Members) != 2 || len(r2.Members) != 0 {
		t.Fatalf("members: leader %d follower %d", len(r1.Members), len(r2.Members))
	}
	// The follower's sync waits for the leader's.
	s2 := h.syncAsync("g", id2, gen+1, nil, nil)
	pending(h, s2)
	wantErr(t, "commit while completing", h.commit(9, "g", id2, gen+1, map[string]int64{"t": 3}).Topics[0].Partitions[0].ErrorCode, kerr.RebalanceInProgress)
	wantErr(t, "heartbeat while completing", h.heartbeat("g", id2, gen+1, nil), nil)
	s1 := await(t, h.syncAsync("g", ids[0], gen+1, nil, map[string]string{ids[0]: "A", id2: "B"}))
	if string(s1.MemberAssignment) != "A" || string(await(t, s2).MemberAssignment) != "B" {
		t.Fatal("assignments not delivered")
	}
}

func TestSessionExpiryDuringRebalance(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.stableGroup("g", 2)
	id3, ch3 := h.newMember("g")
	ch1 := h.joinAsync("g", ids[0])
	pending(h, ch1)
	// ids[1] never rejoins nor heartbeats: its session expires before the rebalance timeout.
	h.advance(testSession - time.Millisecond)
	pending(h, ch1)
	h.advance(time.Millisecond)
	r1, r3 := await(t, ch1), await(t, ch3)
	if r1.Generation != gen+1 || len(r1.Members) != 2 || r3.Generation != gen+1 {
		t.Fatalf("after expiry: %+v / %+v", r1, r3)
	}
	for _, m := range r1.Members {
		if m.MemberID == ids[1] {
			t.Fatal("expired member still in the group")
		}
	}
	wantErr(t, "expired member heartbeat", h.heartbeat("g", ids[1], gen, nil), kerr.UnknownMemberID)
	_ = id3
}

func TestRebalanceTimeoutRemovesMemberThatNeverRejoins(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.stableGroup("g", 2)
	ch1 := h.joinAsync("g", ids[0], timeouts(testSession, 20*time.Second))
	pending(h, ch1)
	// ids[1] keeps heartbeating (told REBALANCE_IN_PROGRESS) but never rejoins. The group's
	// rebalance timeout is the longest of its members' (30s, ids[1]'s).
	for i := 0; i < 5; i++ {
		h.advance(5 * time.Second)
		wantErr(t, "heartbeat", h.heartbeat("g", ids[1], gen, nil), kerr.RebalanceInProgress)
		pending(h, ch1)
	}
	h.advance(5*time.Second - time.Millisecond)
	pending(h, ch1)
	h.advance(time.Millisecond)
	r := await(t, ch1)
	if r.Generation != gen+1 || len(r.Members) != 1 || r.Members[0].MemberID != ids[0] {
		t.Fatalf("join after rebalance timeout %+v", r)
	}
	wantErr(t, "kicked member heartbeat", h.heartbeat("g", ids[1], gen, nil), kerr.UnknownMemberID)
}

func TestLeaderLeavesMidRebalance(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.stableGroup("g", 2)
	_, ch3 := h.newMember("g")
	ch2 := h.joinAsync("g", ids[1])
	pending(h, ch2)
	lr := h.leave("g", kmsg.LeaveGroupRequestMember{MemberID: ids[0]})
	wantErr(t, "leave", lr.Members[0].ErrorCode, nil)
	r2, r3 := await(t, ch2), await(t, ch3)
	if r2.LeaderID != ids[1] || r3.LeaderID != ids[1] || len(r2.Members) != 2 || r2.Generation != gen+1 {
		t.Fatalf("new leader not elected: %+v / %+v", r2, r3)
	}
}

func TestLeaderLeavesWhileCompleting(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.stableGroup("g", 2)
	ch1, ch2 := h.joinAsync("g", ids[0]), h.joinAsync("g", ids[1])
	// Leader rejoining a Stable group forces a rebalance.
	await(t, ch1)
	await(t, ch2)
	s2 := h.syncAsync("g", ids[1], gen+1, nil, nil)
	pending(h, s2)
	h.leave("g", kmsg.LeaveGroupRequestMember{MemberID: ids[0]})
	wantErr(t, "follower sync", await(t, s2).ErrorCode, kerr.RebalanceInProgress)
	if st := h.state("g"); st != "PreparingRebalance" {
		t.Fatalf("state %s", st)
	}
	r := await(t, h.joinAsync("g", ids[1]))
	if r.LeaderID != ids[1] || r.Generation != gen+2 {
		t.Fatalf("rejoin %+v", r)
	}
}

func TestPendingSyncExpiry(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.stableGroup("g", 2)
	ch1, ch2 := h.joinAsync("g", ids[0]), h.joinAsync("g", ids[1])
	await(t, ch1)
	await(t, ch2)
	await(t, h.syncAsync("g", ids[0], gen+1, nil, map[string]string{ids[0]: "x", ids[1]: "y"}))
	if st := h.state("g"); st != "Stable" {
		t.Fatalf("state %s", st)
	}
	// ids[1] never sends SyncGroup but keeps heartbeating: after the rebalance timeout it is
	// removed and the group rebalances.
	for i := 0; i < 4; i++ {
		h.advance(6 * time.Second)
		wantErr(t, "leader heartbeat", h.heartbeat("g", ids[0], gen+1, nil), nil)
		wantErr(t, "follower heartbeat", h.heartbeat("g", ids[1], gen+1, nil), nil)
	}
	h.advance(6*time.Second - time.Millisecond)
	if st := h.state("g"); st != "Stable" {
		t.Fatalf("state %s before the sync deadline", st)
	}
	h.advance(time.Millisecond)
	if st := h.state("g"); st != "PreparingRebalance" {
		t.Fatalf("state %s after pending sync expiry", st)
	}
	wantErr(t, "leader heartbeat", h.heartbeat("g", ids[0], gen+1, nil), kerr.RebalanceInProgress)
	wantErr(t, "removed follower heartbeat", h.heartbeat("g", ids[1], gen+1, nil), kerr.UnknownMemberID)
}

func TestLastMemberLeavesGroupBecomesEmpty(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.stableGroup("g", 1)
	r := h.leave("g", kmsg.LeaveGroupRequestMember{MemberID: "bogus"}, kmsg.LeaveGroupRequestMember{MemberID: ids[0]})
	wantErr(t, "unknown leave", r.Members[0].ErrorCode, kerr.UnknownMemberID)
	wantErr(t, "leave", r.Members[1].ErrorCode, nil)
	d := h.describe("g")
	if d.State != "Empty" || d.ProtocolType != "consumer" || d.Protocol != "" || len(d.Members) != 0 {
		t.Fatalf("describe %+v", d)
	}
	// The generation moved on: the old member's commit is refused, a simple commit accepted.
	wantErr(t, "old member commit", h.commit(9, "g", ids[0], gen, map[string]int64{"t": 1}).Topics[0].Partitions[0].ErrorCode, kerr.UnknownMemberID)
	wantErr(t, "simple commit", h.commit(9, "g", "", -1, map[string]int64{"t": 1}).Topics[0].Partitions[0].ErrorCode, nil)
	r = h.leave("nog", kmsg.LeaveGroupRequestMember{MemberID: "x"})
	wantErr(t, "leave unknown group", r.Members[0].ErrorCode, kerr.UnknownMemberID)
}

func TestStaticMemberRejoinWithoutRebalance(t *testing.T) {
	h := newHarness(t, Config{})
	inst := "i1"
	r := await(t, h.joinAsync("g", "", static(inst))) // static members skip MEMBER_ID_REQUIRED
	wantErr(t, "static join", r.ErrorCode, nil)
	old := r.MemberID
	await(t, h.syncAsync("g", old, 1, &inst, map[string]string{old: "mine"}))
	id2, ch2 := h.newMember("g")
	ch1 := h.joinAsync("g", old, static(inst))
	await(t, ch1)
	await(t, ch2)
	s2 := h.syncAsync("g", id2, 2, nil, nil)
	await(t, h.syncAsync("g", old, 2, &inst, map[string]string{old: "mine", id2: "yours"}))
	await(t, s2)

	// The static member restarts: it rejoins with no member ID and is answered at once, same
	// generation, new member ID; it was leader, so it gets the members and skips assignment.
	r = await(t, h.joinAsync("g", "", static(inst)))
	wantErr(t, "static rejoin", r.ErrorCode, nil)
	if r.Generation != 2 || r.MemberID == old || r.LeaderID != r.MemberID || !r.SkipAssignment || len(r.Members) != 2 {
		t.Fatalf("static rejoin %+v", r)
	}
	if st := h.state("g"); st != "Stable" {
		t.Fatalf("state %s: static rejoin rebalanced", st)
	}
	s := await(t, h.syncAsync("g", r.MemberID, 2, &inst, nil))
	if string(s.MemberAssignment) != "mine" {
		t.Fatalf("assignment %q", s.MemberAssignment)
	}
	wantErr(t, "fenced heartbeat", h.heartbeat("g", old, 2, &inst), kerr.FencedInstanceID)
	wantErr(t, "fenced join", await(t, h.joinAsync("g", old, static(inst))).ErrorCode, kerr.FencedInstanceID)
	wantErr(t, "old member id commit", h.commit(9, "g", old, 2, map[string]int64{"t": 1}).Topics[0].Partitions[0].ErrorCode, kerr.UnknownMemberID)
	wantErr(t, "other member unaffected", h.heartbeat("g", id2, 2, nil), nil)

	lr := h.leave("g",
		kmsg.LeaveGroupRequestMember{MemberID: old, InstanceID: &inst},
		kmsg.LeaveGroupRequestMember{InstanceID: &inst},
		kmsg.LeaveGroupRequestMember{InstanceID: &inst})
	got := []int16{lr.Members[0].ErrorCode, lr.Members[1].ErrorCode, lr.Members[2].ErrorCode}
	if got[0] != kerr.FencedInstanceID.Code || got[1] != 0 || got[2] != kerr.UnknownMemberID.Code {
		t.Fatalf("static leave errors %v", got)
	}
}

func TestStaticMemberKeptThroughRebalanceItMissed(t *testing.T) {
	h := newHarness(t, Config{})
	inst := "i1"
	r := await(t, h.joinAsync("g", "", static(inst)))
	sid := r.MemberID
	await(t, h.syncAsync("g", sid, 1, &inst, map[string]string{sid: "s"}))
	// A dynamic member joins; the static member heartbeats but does not rejoin before the
	// rebalance timeout. Kafka drops only dynamic laggards: the static one stays a member.
	did, ch2 := h.newMember("g")
	for i := 0; i < 5; i++ {
		h.advance(5 * time.Second)
		wantErr(t, "static heartbeat", h.heartbeat("g", sid, 1, &inst), kerr.RebalanceInProgress)
	}
	h.advance(5 * time.Second)
	r2 := await(t, ch2)
	if r2.LeaderID != did || r2.Generation != 2 || len(r2.Members) != 2 {
		t.Fatalf("join %+v", r2)
	}
	wantErr(t, "static heartbeat, old generation", h.heartbeat("g", sid, 1, &inst), kerr.IllegalGeneration)
	// It rejoins with its member ID and unchanged metadata: current generation, no new round.
	r = await(t, h.joinAsync("g", sid, static(inst)))
	if r.Generation != 2 || r.LeaderID != did || len(r.Members) != 0 {
		t.Fatalf("static rejoin %+v", r)
	}
}

func TestMemberIDRequiredPendingBlocksJoinUntilTimeout(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.stableGroup("g", 1)
	// A second client gets its member ID but never comes back.
	r := await(t, h.joinAsync("g", ""))
	wantErr(t, "first join", r.ErrorCode, kerr.MemberIDRequired)
	// The pending member does not start a rebalance; the group stays Stable.
	if st := h.state("g"); st != "Stable" {
		t.Fatalf("state %s", st)
	}
	// The leader rejoins (forcing a rebalance), which waits for the pending member until its
	// session timeout.
	ch := h.joinAsync("g", ids[0])
	pending(h, ch)
	h.advance(testSession)
	r = await(t, ch)
	if r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("join %+v", r)
	}
}

func TestInitialRebalanceDelay(t *testing.T) {
	h := newHarness(t, Config{InitialRebalanceDelay: 300 * time.Millisecond})
	id1, ch1 := h.newMember("g")
	pending(h, ch1)
	h.advance(200 * time.Millisecond)
	id2, ch2 := h.newMember("g")
	h.advance(100 * time.Millisecond)
	// id2 arrived inside the delay: the window is extended once more.
	pending(h, ch1)
	h.advance(300 * time.Millisecond)
	r1, r2 := await(t, ch1), await(t, ch2)
	if r1.Generation != 1 || r2.Generation != 1 || len(r1.Members) != 2 || r1.LeaderID != id1 {
		t.Fatalf("initial rebalance %+v / %+v", r1, r2)
	}
	_ = id2
}

func TestProtocolSelection(t *testing.T) {
	h := newHarness(t, Config{InitialRebalanceDelay: time.Second})
	_, ch1 := h.newMember("g", protos("roundrobin", "range"))
	_, ch2 := h.newMember("g", protos("range", "sticky"))
	_, ch3 := h.newMember("g", protos("sticky", "range", "roundrobin"))
	h.advance(time.Second) // members arrived during the delay: it is extended once
	pending(h, ch1)
	h.advance(time.Second)
	for _, ch := range []<-chan *kmsg.JoinGroupResponse{ch1, ch2, ch3} {
		if r := await(t, ch); *r.Protocol != "range" {
			t.Fatalf("protocol %s, want range (the only one all support)", *r.Protocol)
		}
	}
}

func TestOffsetCommitRules(t *testing.T) {
	h := newHarness(t, Config{MaxMetadataBytes: 10})
	code := func(r *kmsg.OffsetCommitResponse) int16 { return r.Topics[0].Partitions[0].ErrorCode }
	wantErr(t, "v8 unknown group with generation", code(h.commit(8, "nog", "", 5, map[string]int64{"t": 1})), kerr.IllegalGeneration)
	wantErr(t, "v9 unknown group with generation", code(h.commit(9, "nog", "", 5, map[string]int64{"t": 1})), kerr.GroupIDNotFound)
	wantErr(t, "simple commit", code(h.commit(9, "simple", "", -1, map[string]int64{"t": 42})), nil)
	wantErr(t, "simple commit with member id on empty group", code(h.commit(9, "simple", "m1", -1, map[string]int64{"t": 43})), nil)
	wantErr(t, "generation on empty group", code(h.commit(9, "simple", "", 5, map[string]int64{"t": 1})), kerr.UnknownMemberID)
	p := h.fetch("simple", "t")
	if p.Offset != 43 || p.LeaderEpoch != 7 || *p.Metadata != "md-t" || p.ErrorCode != 0 {
		t.Fatalf("fetch %+v", p)
	}
	if p := h.fetch("nog", "t"); p.Offset != -1 || p.LeaderEpoch != -1 || p.ErrorCode != 0 {
		t.Fatalf("fetch unknown group %+v", p)
	}
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Group, r.Generation = "simple", -1
	big := "0123456789abc"
	r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, Metadata: &big}}}}
	ch := make(chan *kmsg.OffsetCommitResponse, 1)
	h.c.CommitOffsets(Client{Version: 9}, r, func(x *kmsg.OffsetCommitResponse) { ch <- x })
	wantErr(t, "metadata too large", code(await(t, ch)), kerr.OffsetMetadataTooLarge)

	ids, gen := h.stableGroup("g", 1)
	wantErr(t, "member commit", code(h.commit(9, "g", ids[0], gen, map[string]int64{"t": 5})), nil)
	wantErr(t, "wrong generation", code(h.commit(9, "g", ids[0], gen+1, map[string]int64{"t": 5})), kerr.IllegalGeneration)
	wantErr(t, "simple commit on stable group", code(h.commit(9, "g", "", -1, map[string]int64{"t": 5})), kerr.UnknownMemberID)
	wantErr(t, "unknown member", code(h.commit(9, "g", "x", gen, map[string]int64{"t": 5})), kerr.UnknownMemberID)
}

func TestAdmin(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.stableGroup("busy", 1)
	h.commit(9, "busy", ids[0], gen, map[string]int64{"t": 1, "other": 2})
	h.commit(9, "idle", "", -1, map[string]int64{"t": 1})

	list := func(states ...string) []string {
		ch := make(chan []kmsg.ListGroupsResponseGroup, 1)
		h.c.ListGroups(states, nil, func(gs []kmsg.ListGroupsResponseGroup, err error) { ch <- gs })
		var out []string
		for _, g := range await(t, ch) {
			out = append(out, g.Group+"/"+g.GroupState+"/"+g.ProtocolType+"/"+g.GroupType)
		}
		return out
	}
	if got := fmt.Sprint(list()); got != "[busy/Stable/consumer/classic idle/Empty//classic]" {
		t.Fatalf("list %s", got)
	}
	if got := fmt.Sprint(list("stable")); got != "[busy/Stable/consumer/classic]" {
		t.Fatalf("list stable %s", got)
	}
	d := h.describe("nope")
	if d.State != "Dead" || d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("describe unknown %+v", d)
	}

	od := func(group string, topics ...string) *kmsg.OffsetDeleteResponse {
		r := kmsg.NewPtrOffsetDeleteRequest()
		r.Group = group
		for _, tp := range topics {
			r.Topics = append(r.Topics, kmsg.OffsetDeleteRequestTopic{Topic: tp, Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}})
		}
		ch := make(chan *kmsg.OffsetDeleteResponse, 1)
		h.c.DeleteOffsets(r, func(x *kmsg.OffsetDeleteResponse) { ch <- x })
		return await(t, ch)
	}
	r := od("busy", "t", "other")
	wantErr(t, "delete subscribed", r.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic)
	wantErr(t, "delete unsubscribed", r.Topics[1].Partitions[0].ErrorCode, nil)
	if p := h.fetch("busy", "other"); p.Offset != -1 {
		t.Fatalf("offset not deleted: %+v", p)
	}
	wantErr(t, "offset delete unknown group", od("nope", "t").ErrorCode, kerr.GroupIDNotFound)

	del := func(ids ...string) []int16 {
		ch := make(chan []kmsg.DeleteGroupsResponseGroup, 1)
		h.c.DeleteGroups(ids, func(x []kmsg.DeleteGroupsResponseGroup) { ch <- x })
		var out []int16
		for _, g := range await(t, ch) {
			out = append(out, g.ErrorCode)
		}
		return out
	}
	got := del("busy", "idle", "nope")
	if got[0] != kerr.NonEmptyGroup.Code || got[1] != 0 || got[2] != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete groups %v", got)
	}
	if p := h.fetch("idle", "t"); p.Offset != -1 {
		t.Fatalf("deleted group's offset still there: %+v", p)
	}
	if got := fmt.Sprint(list()); got != "[busy/Stable/consumer/classic]" {
		t.Fatalf("list after delete %s", got)
	}
}

func TestOffsetsSurviveRestart(t *testing.T) {
	h := newHarness(t, Config{})
	ids, gen := h.stableGroup("g", 2)
	h.commit(9, "g", ids[0], gen, map[string]int64{"t": 100})
	h.commit(9, "simple", "", -1, map[string]int64{"t": 7, "u": 8})
	h.commit(9, "gone", "", -1, map[string]int64{"t": 1})
	ch := make(chan []kmsg.DeleteGroupsResponseGroup, 1)
	h.c.DeleteGroups([]string{"gone"}, func(x []kmsg.DeleteGroupsResponseGroup) { ch <- x })
	await(t, ch)

	h.restart()
	if p := h.fetch("g", "t"); p.Offset != 100 || p.LeaderEpoch != 7 || *p.Metadata != "md-t" {
		t.Fatalf("after restart %+v", p)
	}
	if p := h.fetch("simple", "u"); p.Offset != 8 {
		t.Fatalf("after restart %+v", p)
	}
	if p := h.fetch("gone", "t"); p.Offset != -1 {
		t.Fatalf("deleted group came back %+v", p)
	}
	// The group's last generation is back: members carry on heartbeating.
	d := h.describe("g")
	if d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("group after restart %+v", d)
	}
	wantErr(t, "heartbeat after restart", h.heartbeat("g", ids[1], gen, nil), nil)
	s := await(t, h.syncAsync("g", ids[1], gen, nil, nil))
	if string(s.MemberAssignment) != "a1" {
		t.Fatalf("assignment after restart %q", s.MemberAssignment)
	}
	// A member that does not come back after the restart expires.
	h.advance(testSession)
	wantErr(t, "expired", h.heartbeat("g", ids[0], gen, nil), kerr.UnknownMemberID)
}

// A commit whose log append fails answers NOT_COORDINATOR, as Kafka 4.0 maps a storage error
// (finding 6 of issue 18: UNKNOWN_SERVER_ERROR, answered before, is not retried by clients).
func TestCommitFailsWhenLogFails(t *testing.T) {
	h := newHarness(t, Config{})
	h.log.FailAppends(fmt.Errorf("disk full"))
	r := h.commit(9, "g", "", -1, map[string]int64{"t": 5})
	wantErr(t, "commit on failing disk", r.Topics[0].Partitions[0].ErrorCode, kerr.NotCoordinator)
	h.log.FailAppends(nil)
	if p := h.fetch("g", "t"); p.Offset != -1 {
		t.Fatalf("failed commit visible: %+v", p)
	}
}

func TestCompaction(t *testing.T) {
	h := newHarness(t, Config{CompactBytes: 4096})
	for i := 0; i < 500; i++ {
		h.commit(9, "g", "", -1, map[string]int64{"t": int64(i), "u": int64(2 * i)})
	}
	if s := h.log.Size(); s > 3*4096 {
		t.Fatalf("log not compacted: %d bytes", s)
	}
	h.restart()
	if p := h.fetch("g", "t"); p.Offset != 499 {
		t.Fatalf("after compaction+restart %+v", p)
	}
	if p := h.fetch("g", "u"); p.Offset != 998 {
		t.Fatalf("after compaction+restart %+v", p)
	}
}

func TestOffsetRetention(t *testing.T) {
	h := newHarness(t, Config{OffsetsRetention: time.Hour, RetentionCheckInterval: time.Minute})
	h.commit(9, "simple", "", -1, map[string]int64{"t": 1})
	ids, gen := h.stableGroup("g", 1)
	h.commit(9, "g", ids[0], gen, map[string]int64{"t": 5, "unsub": 6})
	alive := func(d time.Duration) { // advance, keeping the member's session alive
		for i := time.Duration(0); i < d; i += 5 * time.Second {
			h.advance(5 * time.Second)
			wantErr(t, "heartbeat", h.heartbeat("g", ids[0], gen, nil), nil)
		}
	}
	alive(30 * time.Minute)
	h.commit(9, "simple", "", -1, map[string]int64{"u": 1})
	alive(31 * time.Minute)
	// 1h+ later: simple group's old offset expired, its newer one not; the stable group keeps
	// its subscribed topic's offset but loses the other.
	if p := h.fetch("simple", "t"); p.Offset != -1 {
		t.Fatalf("simple t not expired %+v", p)
	}
	if p := h.fetch("simple", "u"); p.Offset != 1 {
		t.Fatalf("simple u expired early %+v", p)
	}
	if p := h.fetch("g", "t"); p.Offset != 5 {
		t.Fatalf("subscribed offset expired %+v", p)
	}
	if p := h.fetch("g", "unsub"); p.Offset != -1 {
		t.Fatalf("unsubscribed offset kept %+v", p)
	}
	// Once the group is empty for the retention period, everything goes, and so does the group.
	h.leave("g", kmsg.LeaveGroupRequestMember{MemberID: ids[0]})
	h.advance(time.Hour + time.Minute)
	if p := h.fetch("g", "t"); p.Offset != -1 {
		t.Fatalf("empty group's offset kept %+v", p)
	}
	if d := h.describe("g"); d.State != "Dead" {
		t.Fatalf("expired group still listed: %+v", d)
	}
}

func TestCloseAnswersWaitingJoins(t *testing.T) {
	h := newHarness(t, Config{})
	ids, _ := h.stableGroup("g", 2)
	ch := h.joinAsync("g", ids[0])
	pending(h, ch)
	h.c.Close()
	wantErr(t, "join pending at close", await(t, ch).ErrorCode, kerr.NotCoordinator)
	// After Close, requests are refused at once.
	wantErr(t, "join after close", await(t, h.joinAsync("g", "")).ErrorCode, kerr.CoordinatorNotAvailable)
}

func TestDeleteTopicOffsets(t *testing.T) {
	h := newHarness(t, Config{})
	h.commit(9, "g", "", -1, map[string]int64{"t": 1, "u": 2})
	h.c.DeleteTopicOffsets("t")
	if p := h.fetch("g", "t"); p.Offset != -1 {
		t.Fatalf("offset of deleted topic kept: %+v", p)
	}
	if p := h.fetch("g", "u"); p.Offset != 2 {
		t.Fatalf("other topic's offset lost: %+v", p)
	}
	h.restart()
	if p := h.fetch("g", "t"); p.Offset != -1 {
		t.Fatalf("offset of deleted topic back after restart: %+v", p)
	}
}

func TestFetchAllOffsetsAndMultipleGroups(t *testing.T) {
	h := newHarness(t, Config{})
	h.commit(9, "g1", "", -1, map[string]int64{"b": 2, "a": 1})
	h.commit(9, "g2", "", -1, map[string]int64{"c": 3})
	all := func(g string) kmsg.OffsetFetchRequestGroup { return kmsg.OffsetFetchRequestGroup{Group: g} }
	ch := make(chan []kmsg.OffsetFetchResponseGroup, 1)
	h.c.FetchOffsets([]kmsg.OffsetFetchRequestGroup{all("g1"), all("g2"), all("none")}, func(r []kmsg.OffsetFetchResponseGroup) { ch <- r })
	got := await(t, ch)
	var s []string
	for _, g := range got {
		for _, tp := range g.Topics {
			for _, p := range tp.Partitions {
				s = append(s, fmt.Sprintf("%s/%s/%d=%d", g.Group, tp.Topic, p.Partition, p.Offset))
			}
		}
		if g.ErrorCode != 0 {
			t.Fatalf("group %s error %d", g.Group, g.ErrorCode)
		}
	}
	if fmt.Sprint(s) != "[g1/a/0=1 g1/b/0=2 g2/c/0=3]" || len(got) != 3 || got[2].Group != "none" || len(got[2].Topics) != 0 {
		t.Fatalf("fetch all: %v (%d groups)", s, len(got))
	}
}

// A restarted static member keeps the client ID and host of its first incarnation in
// DescribeGroups, as in Kafka 4.0 (checked against it), while it gets a new member ID.
func TestStaticRejoinKeepsFirstClientID(t *testing.T) {
	h := newHarness(t, Config{})
	inst := "i1"
	join := func(cl Client) *kmsg.JoinGroupResponse {
		r := kmsg.NewPtrJoinGroupRequest()
		r.Version = 9
		r.Group, r.InstanceID, r.ProtocolType = "g", &inst, "consumer"
		r.SessionTimeoutMillis = int32(testSession.Milliseconds())
		r.RebalanceTimeoutMillis = int32(testRebalance.Milliseconds())
		protos("range")(r)
		ch := make(chan *kmsg.JoinGroupResponse, 1)
		h.c.JoinGroup(cl, r, func(resp *kmsg.JoinGroupResponse) { ch <- resp })
		return await(t, ch)
	}
	first := join(Client{Version: 9, ID: "first", Host: "/10.0.0.1"})
	await(t, h.syncAsync("g", first.MemberID, first.Generation, &inst, map[string]string{first.MemberID: "x"}))
	second := join(Client{Version: 9, ID: "second", Host: "/10.0.0.2"})
	wantErr(t, "static rejoin", second.ErrorCode, nil)
	if second.MemberID == first.MemberID {
		t.Fatal("static rejoin kept the member ID")
	}
	d := h.describe("g")
	if len(d.Members) != 1 || d.Members[0].MemberID != second.MemberID || d.Members[0].ClientID != "first" || d.Members[0].ClientHost != "/10.0.0.1" {
		t.Fatalf("described members %+v", d.Members)
	}
}

// If the new member ID of a restarted static member cannot be persisted, the old one is put
// back (it keeps working) and the joiner gets the error with no member ID, as Kafka does
// (NOT_COORDINATOR for a storage error: appendGroupMetadataErrorToResponseError).
func TestStaticRejoinRevertedWhenLogFails(t *testing.T) {
	h := newHarness(t, Config{})
	inst := "i1"
	r := await(t, h.joinAsync("g", "", static(inst)))
	old := r.MemberID
	await(t, h.syncAsync("g", old, r.Generation, &inst, map[string]string{old: "mine"}))
	h.log.FailAppends(fmt.Errorf("disk full"))
	r2 := await(t, h.joinAsync("g", "", static(inst)))
	h.log.FailAppends(nil)
	wantErr(t, "static rejoin on a failing log", r2.ErrorCode, kerr.NotCoordinator)
	if r2.MemberID != "" || r2.Generation != r.Generation || r2.LeaderID != old {
		t.Fatalf("failed static rejoin answered %+v", r2)
	}
	wantErr(t, "old member ID heartbeat", h.heartbeat("g", old, r.Generation, &inst), nil)
	if d := h.describe("g"); d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != old {
		t.Fatalf("group after failed static rejoin: %+v", d)
	}
	// The next attempt, with the log healthy, replaces it.
	r3 := await(t, h.joinAsync("g", "", static(inst)))
	wantErr(t, "static rejoin", r3.ErrorCode, nil)
	wantErr(t, "old member ID fenced", h.heartbeat("g", old, r.Generation, &inst), kerr.FencedInstanceID)
}

// A SyncGroup whose assignment cannot be stored answers NOT_COORDINATOR to every waiting
// member and the group rebalances, as Kafka does (the assignment was answered before even
// though it was never stored).
func TestSyncFailsWhenLogFails(t *testing.T) {
	h := newHarness(t, Config{})
	id, ch := h.newMember("g")
	r := await(t, ch)
	wantErr(t, "join", r.ErrorCode, nil)
	h.log.FailAppends(fmt.Errorf("disk full"))
	s := await(t, h.syncAsync("g", id, r.Generation, nil, map[string]string{id: "mine"}))
	h.log.FailAppends(nil)
	wantErr(t, "sync on a failing log", s.ErrorCode, kerr.NotCoordinator)
	if st := h.state("g"); st != "PreparingRebalance" {
		t.Fatalf("group after a failed sync: %s, want PreparingRebalance", st)
	}
}

// A member joining with 1 MB of protocol metadata: the leader's SyncGroup cannot store the
// group (over the coordinator's record limit, as Kafka's 1 MB max.message.bytes for
// __consumer_offsets) and answers NOT_COORDINATOR, as Kafka 4.0 does; nothing is stored and
// the group rebalances.
func TestSyncRefusesGroupRecordOverLimit(t *testing.T) {
	h := newHarness(t, Config{})
	big := func(r *kmsg.JoinGroupRequest) { r.Protocols[0].Metadata = make([]byte, 1<<20) }
	id, ch := h.newMember("g", big)
	r := await(t, ch)
	wantErr(t, "join", r.ErrorCode, nil)
	s := await(t, h.syncAsync("g", id, r.Generation, nil, map[string]string{id: "mine"}))
	wantErr(t, "sync of a group over the record limit", s.ErrorCode, kerr.NotCoordinator)
	if st := h.state("g"); st != "PreparingRebalance" {
		t.Fatalf("group after a refused sync: %s, want PreparingRebalance", st)
	}
	// Slightly less metadata is stored.
	id2, ch2 := h.newMember("g2", func(r *kmsg.JoinGroupRequest) { r.Protocols[0].Metadata = make([]byte, 1000<<10) })
	r2 := await(t, ch2)
	s2 := await(t, h.syncAsync("g2", id2, r2.Generation, nil, map[string]string{id2: "mine"}))
	wantErr(t, "sync under the limit", s2.ErrorCode, nil)
}
