package group

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func classicAssignment(ps ...int32) string {
	a := kmsg.NewConsumerMemberAssignment()
	a.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "t", Partitions: ps}}
	return string(a.AppendTo(nil))
}

// classicPair brings up classic group g with two members: the first owns t-0 and t-1, the
// second t-2 and t-3.
func (h *harness) classicPair(group string) ([2]string, int32) {
	h.t.Helper()
	ids, gen := h.stableGroup(group, 2)
	// One more generation with real assignments: both rejoin, the leader assigns.
	c0, c1 := h.joinAsync(group, ids[0]), h.joinAsync(group, ids[1])
	r0, r1 := await(h.t, c0), await(h.t, c1)
	wantErr(h.t, "rejoin", r0.ErrorCode, nil)
	wantErr(h.t, "rejoin", r1.ErrorCode, nil)
	gen = r0.Generation
	s1 := h.syncAsync(group, ids[1], gen, nil, nil)
	wantErr(h.t, "leader sync", await(h.t, h.syncAsync(group, ids[0], gen, nil, map[string]string{
		ids[0]: classicAssignment(0, 1), ids[1]: classicAssignment(2, 3)})).ErrorCode, nil)
	wantErr(h.t, "follower sync", await(h.t, s1).ErrorCode, nil)
	return [2]string{ids[0], ids[1]}, gen
}

// classicRejoin rejoins a classic member of a consumer group and syncs; it returns the
// generation and the partitions of t the member was given.
func (h *harness) classicRejoin(group, id string) (int32, []int32) {
	h.t.Helper()
	jr := await(h.t, h.joinAsync(group, id))
	wantErr(h.t, "classic rejoin", jr.ErrorCode, nil)
	if jr.LeaderID != "" || len(jr.Members) != 0 || *jr.ProtocolType != "consumer" || *jr.Protocol != "range" {
		h.t.Fatalf("classic join to a consumer group: %+v", jr)
	}
	sr := await(h.t, h.syncAsync(group, id, jr.Generation, nil, nil))
	wantErr(h.t, "classic sync", sr.ErrorCode, nil)
	a, err := decodeClassicAssignment(sr.MemberAssignment)
	if err != nil {
		h.t.Fatal(err)
	}
	return jr.Generation, a["t"]
}

// consumerOwners lists, per partition of t, the members ConsumerGroupDescribe shows owning
// it; it fails the test if two members own one partition.
func (h *harness) consumerOwners(group string) map[int32]string {
	h.t.Helper()
	d := h.cgDescribe(group)
	out := map[int32]string{}
	for _, m := range d.Members {
		for _, t := range m.Assignment.TopicPartitions {
			for _, p := range t.Partitions {
				if o, ok := out[p]; ok {
					h.t.Fatalf("partition %d owned by %s and %s", p, o, m.MemberID)
				}
				out[p] = m.MemberID
			}
		}
	}
	return out
}

// TestOnlineUpgrade: a classic group whose members use the consumer embedded protocol is
// converted when a ConsumerGroupHeartbeat member joins (Kafka 4.0's default migration
// policy); the classic members keep their partitions until told to rejoin, then get their
// share from the server-side assignor, and no partition is ever owned twice.
func TestOnlineUpgrade(t *testing.T) {
	h := cgHarness(t)
	ids, gen := h.classicPair("g")

	r := h.cgJoin("g", "c1")
	if r.ErrorCode != 0 || r.MemberEpoch != gen+1 {
		t.Fatalf("consumer join to a classic group: %+v (generation %d)", r, gen)
	}
	d := h.cgDescribe("g")
	if d.ErrorCode != 0 || len(d.Members) != 3 || d.Epoch != gen+1 {
		t.Fatalf("converted group: %+v", d)
	}
	if owners := h.consumerOwners("g"); owners[0] != ids[0] || owners[3] != ids[1] {
		t.Fatalf("classic members kept their partitions: %v", owners)
	}
	// A Stable classic group's heartbeat now says rebalance: the group epoch moved on.
	wantErr(t, "classic heartbeat after upgrade", h.heartbeat("g", ids[0], gen, nil), kerr.RebalanceInProgress)
	if d := h.describe("g"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("DescribeGroups on the converted group: %+v", d)
	}

	// The members reconcile: classic ones by rejoining whenever told, the consumer one by
	// heartbeating with what it owns, until all are stable at one epoch.
	gens := map[string]int32{ids[0]: gen, ids[1]: gen}
	var cOwned []int32
	for round := 0; round < 10; round++ {
		for _, id := range ids {
			if code := h.heartbeat("g", id, gens[id], nil); code == kerr.RebalanceInProgress.Code {
				gens[id], _ = h.classicRejoin("g", id)
			} else {
				wantErr(t, "classic heartbeat", code, nil)
			}
		}
		r = h.cgBeat("g", "c1", r.MemberEpoch, cOwned)
		if r.ErrorCode != 0 {
			t.Fatalf("consumer heartbeat: %+v", r)
		}
		if r.Assignment != nil {
			cOwned = nil
			for _, at := range r.Assignment.Topics {
				cOwned = append(cOwned, at.Partitions...)
			}
		}
		h.consumerOwners("g")
		if d := h.cgDescribe("g"); d.State == "Stable" {
			break
		}
	}
	d = h.cgDescribe("g")
	owners := h.consumerOwners("g")
	count := map[string]int{}
	for _, o := range owners {
		count[o]++
	}
	if d.State != "Stable" || len(owners) != 4 || count["c1"] < 1 || count[ids[0]] < 1 || count[ids[1]] < 1 {
		t.Fatalf("after reconciliation: state %s, owners %v", d.State, owners)
	}
	for _, id := range ids {
		if gens[id] != d.Epoch {
			t.Fatalf("classic member %s at generation %d, group epoch %d", id, gens[id], d.Epoch)
		}
	}
	// Classic members commit with their member epoch as generation.
	wantErr(t, "classic commit", h.commit(8, "g", ids[0], gens[ids[0]], map[string]int64{"t": 5}).Topics[0].Partitions[0].ErrorCode, nil)
	wantErr(t, "classic commit, old generation", h.commit(8, "g", ids[0], gen, map[string]int64{"t": 5}).Topics[0].Partitions[0].ErrorCode, kerr.IllegalGeneration)

	// Classic membership survives a restart.
	h.restart()
	wantErr(t, "classic heartbeat after restart", h.heartbeat("g", ids[1], gens[ids[1]], nil), nil)
	if d := h.cgDescribe("g"); len(d.Members) != 3 || d.State != "Stable" {
		t.Fatalf("after restart: %+v", d)
	}
}

// cgBeat sends a ConsumerGroupHeartbeat at epoch reporting owned partitions of t.
func (h *harness) cgBeat(group, memberID string, epoch int32, owned []int32) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = group, memberID, epoch, -1
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if len(owned) > 0 {
		req.Topics = append(req.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: topicID("t"), Partitions: owned})
	}
	ch := make(chan *kmsg.ConsumerGroupHeartbeatResponse, 1)
	h.c.ConsumerGroupHeartbeat(Client{Version: 1, ID: "c", Host: "/h"}, req, func(r *kmsg.ConsumerGroupHeartbeatResponse) { ch <- r })
	return await(h.t, ch)
}

// TestClassicMemberOfConsumerGroup: the answers Kafka 4.0 gives classic requests to a
// consumer group with members.
func TestClassicMemberOfConsumerGroup(t *testing.T) {
	h := newHarness(t, Config{
		ConsumerMaxGroupSize: 3,
		MaxGroupSize:         1, // classic groups only
		TopicInfo: func(name string) (TopicInfo, bool) {
			return TopicInfo{ID: topicID(name), Partitions: 4}, name == "t"
		},
	})
	if r := h.cgJoin("cg", "c1"); r.ErrorCode != 0 {
		t.Fatalf("join: %+v", r)
	}
	// KIP-394 first, then the member is in, with the member epoch as its generation.
	id, jch := h.newMember("cg")
	jr := await(t, jch)
	if jr.ErrorCode != 0 || jr.MemberID != id || jr.Generation != 2 || jr.LeaderID != "" {
		t.Fatalf("classic join: %+v", jr)
	}
	// Other protocol types, and protocols the classic members do not share, are refused.
	r := await(t, h.joinAsync("cg", "", func(r *kmsg.JoinGroupRequest) { r.ProtocolType = "connect" }))
	wantErr(t, "other protocol type", r.ErrorCode, kerr.InconsistentGroupProtocol)
	r = await(t, h.joinAsync("cg", "", protos("roundrobin")))
	wantErr(t, "unshared protocol", r.ErrorCode, kerr.InconsistentGroupProtocol)
	if r.MemberID != "" {
		t.Fatalf("refused join answered with member ID %q", r.MemberID)
	}
	// Subscription metadata that does not decode: Kafka's internal error, as Kafka.
	r = await(t, h.joinAsync("cg", "x", func(r *kmsg.JoinGroupRequest) { r.Protocols[0].Metadata = []byte{0, 1} }))
	wantErr(t, "undecodable subscription", r.ErrorCode, kerr.UnknownServerError)

	wantErr(t, "sync, wrong generation", await(t, h.syncAsync("cg", id, 1, nil, nil)).ErrorCode, kerr.IllegalGeneration)
	sr := kmsg.NewPtrSyncGroupRequest()
	sr.Version = 5
	sr.Group, sr.MemberID, sr.Generation = "cg", id, jr.Generation
	other := "roundrobin"
	sr.Protocol = &other
	sch := make(chan *kmsg.SyncGroupResponse, 1)
	h.c.SyncGroup(Client{Version: 5}, sr, func(r *kmsg.SyncGroupResponse) { sch <- r })
	wantErr(t, "sync, other protocol", await(t, sch).ErrorCode, kerr.InconsistentGroupProtocol)
	if s := await(t, h.syncAsync("cg", id, jr.Generation, nil, nil)); s.ErrorCode != 0 || *s.Protocol != "range" {
		t.Fatalf("sync: %+v", s)
	}

	// Classic requests do not speak for consumer-protocol members.
	wantErr(t, "heartbeat for a consumer member", h.heartbeat("cg", "c1", 2, nil), kerr.UnknownMemberID)
	wantErr(t, "heartbeat, unknown", h.heartbeat("cg", "nobody", 2, nil), kerr.UnknownMemberID)
	wantErr(t, "heartbeat, wrong generation", h.heartbeat("cg", id, 1, nil), kerr.IllegalGeneration)
	lr := h.leave("cg", kmsg.LeaveGroupRequestMember{MemberID: "nobody"})
	wantErr(t, "LeaveGroup of an unknown member", lr.Members[0].ErrorCode, kerr.UnknownMemberID)

	// group.consumer.max.size counts both kinds of members (group.max.size is for classic
	// groups).
	if r := h.cgJoin("cg", "c2"); r.ErrorCode != 0 {
		t.Fatalf("third member: %+v", r)
	}
	r = await(t, h.joinAsync("cg", ""))
	wantErr(t, "fourth member", r.ErrorCode, kerr.GroupMaxSizeReached)

	// A classic member leaves through LeaveGroup: the group epoch moves on.
	before := h.cgDescribe("cg").Epoch
	lr = h.leave("cg", kmsg.LeaveGroupRequestMember{MemberID: id})
	wantErr(t, "classic leave", lr.Members[0].ErrorCode, nil)
	if d := h.cgDescribe("cg"); len(d.Members) != 2 || d.Epoch != before+1 {
		t.Fatalf("after the classic member left: %+v", d)
	}
	// As Kafka 4.0 (for the admin client), LeaveGroup removes consumer-protocol members too,
	// by instance ID or member ID; the answer echoes the request's member ID.
	lr = h.leave("cg", kmsg.LeaveGroupRequestMember{MemberID: "c1"})
	if m := lr.Members[0]; m.ErrorCode != 0 || m.MemberID != "c1" {
		t.Fatalf("LeaveGroup of a consumer member: %+v", lr)
	}
	if d := h.cgDescribe("cg"); len(d.Members) != 1 || d.Members[0].MemberID != "c2" || d.Epoch != before+2 {
		t.Fatalf("after LeaveGroup of a consumer member: %+v", d)
	}
}

// TestOnlineDowngradeByLeaveGroup: a LeaveGroup that removes the last consumer-protocol
// members (an admin removing members) downgrades the group too.
func TestOnlineDowngradeByLeaveGroup(t *testing.T) {
	h := cgHarness(t)
	ids, _ := h.classicPair("g")
	h.cgJoin("g", "c1")
	h.cgJoin("g", "c2")
	lr := h.leave("g", kmsg.LeaveGroupRequestMember{MemberID: "c1"}, kmsg.LeaveGroupRequestMember{MemberID: "c2"},
		kmsg.LeaveGroupRequestMember{MemberID: "c3"})
	if lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != 0 || lr.Members[2].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", lr.Members)
	}
	if d := h.describe("g"); d.ErrorCode != 0 || d.State != "PreparingRebalance" || len(d.Members) != len(ids) {
		t.Fatalf("downgraded group: %+v", d)
	}
}

// TestClassicMemberTimeouts: a classic member told to rejoin has its rebalance timeout to do
// so, and one that joined has it to sync; otherwise it is removed from the consumer group.
func TestClassicMemberTimeouts(t *testing.T) {
	h := cgHarness(t)
	h.cgJoin("cg", "c1")
	id, jch := h.newMember("cg", timeouts(time.Minute, 5*time.Second))
	jr := await(t, jch)
	// No sync within the rebalance timeout.
	h.advance(5 * time.Second)
	if d := h.cgDescribe("cg"); len(d.Members) != 1 {
		t.Fatalf("member that did not sync is still there: %+v", d.Members)
	}
	wantErr(t, "sync after removal", await(t, h.syncAsync("cg", id, jr.Generation, nil, nil)).ErrorCode, kerr.UnknownMemberID)

	id, jch = h.newMember("cg", timeouts(time.Minute, 5*time.Second))
	jr = await(t, jch)
	wantErr(t, "sync", await(t, h.syncAsync("cg", id, jr.Generation, nil, nil)).ErrorCode, nil)
	h.cgJoin("cg", "c2") // bumps the group epoch: the classic member must rejoin
	wantErr(t, "heartbeat", h.heartbeat("cg", id, jr.Generation, nil), kerr.RebalanceInProgress)
	h.advance(4 * time.Second)
	// Telling it again does not extend its deadline.
	wantErr(t, "heartbeat again", h.heartbeat("cg", id, jr.Generation, nil), kerr.RebalanceInProgress)
	h.advance(time.Second)
	if d := h.cgDescribe("cg"); len(d.Members) != 2 {
		t.Fatalf("member that did not rejoin is still there: %+v", d.Members)
	}
}

// TestOnlineDowngrade: when the last consumer-protocol member leaves a group whose other
// members use the classic protocol, the group becomes a classic group again at the group
// epoch, keeps the assignment and rebalances; the classic members carry on.
func TestOnlineDowngrade(t *testing.T) {
	h := cgHarness(t)
	ids, gen := h.classicPair("g")
	if r := h.cgJoin("g", "c1"); r.ErrorCode != 0 {
		t.Fatalf("upgrade: %+v", r)
	}
	epoch := h.cgDescribe("g").Epoch
	h.cgLeave("g", "c1")
	d := h.describe("g")
	if d.ErrorCode != 0 || d.State != "PreparingRebalance" || d.ProtocolType != "consumer" || len(d.Members) != 2 {
		t.Fatalf("downgraded group: %+v", d)
	}
	if c := h.cgDescribe("g"); c.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("ConsumerGroupDescribe after downgrade: %+v", c)
	}
	// The members were at the classic generation; the group is at the consumer group epoch.
	wantErr(t, "heartbeat at the old generation", h.heartbeat("g", ids[0], gen, nil), kerr.IllegalGeneration)
	wantErr(t, "heartbeat at the group epoch", h.heartbeat("g", ids[0], epoch, nil), kerr.RebalanceInProgress)
	c0, c1 := h.joinAsync("g", ids[0]), h.joinAsync("g", ids[1])
	r0, r1 := await(t, c0), await(t, c1)
	if r0.ErrorCode != 0 || r1.ErrorCode != 0 || r0.Generation != epoch+1 {
		t.Fatalf("rejoin after downgrade: %+v / %+v", r0, r1)
	}
	leader := r0
	if r1.LeaderID == r1.MemberID {
		leader = r1
	}
	if len(leader.Members) != 2 {
		t.Fatalf("leader's join: %+v", leader)
	}
	// Restarted, it is still a classic group.
	h.restart()
	if d := h.describe("g"); d.ErrorCode != 0 {
		t.Fatalf("after restart: %+v", d)
	}
	var names []string
	for _, m := range d.Members {
		names = append(names, m.MemberID)
	}
	sort.Strings(names)
	want := []string{ids[0], ids[1]}
	sort.Strings(want)
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("members %v, want %v", names, want)
	}
}

// TestOnlineUpgradeRefused: groups Kafka does not upgrade answer GROUP_ID_NOT_FOUND.
func TestOnlineUpgradeRefused(t *testing.T) {
	h := cgHarness(t)
	// Another protocol type (Kafka Connect's, say).
	id, jch := h.newMember("connect", func(r *kmsg.JoinGroupRequest) { r.ProtocolType = "connect" })
	jr := await(t, jch)
	await(t, h.syncAsync("connect", id, jr.Generation, nil, map[string]string{id: "x"}))
	if r := h.cgJoin("connect", "m"); r.ErrorCode != kerr.GroupIDNotFound.Code || *r.ErrorMessage != "Group connect is not a consumer group." {
		t.Fatalf("consumer join to a connect group: %+v", r)
	}
	// An assignment the consumer protocol cannot read.
	id, jch = h.newMember("bad")
	jr = await(t, jch)
	await(t, h.syncAsync("bad", id, jr.Generation, nil, map[string]string{id: "x"}))
	if r := h.cgJoin("bad", "m"); r.ErrorCode != kerr.GroupIDNotFound.Code ||
		*r.ErrorMessage != "Cannot upgrade the classic group bad to consumer group because the embedded consumer protocol is malformed." {
		t.Fatalf("consumer join to a malformed group: %+v", r)
	}
	if d := h.describe("bad"); d.ErrorCode != 0 || d.State != "Stable" {
		t.Fatalf("refused group changed: %+v", d)
	}
	// An assignment with user data of the client's assignor (cooperative-sticky in
	// librdkafka, custom assignors): the server-side assignor would lose it.
	ud := kmsg.NewConsumerMemberAssignment()
	ud.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "t", Partitions: []int32{0}}}
	ud.UserData = []byte("x")
	id, jch = h.newMember("userdata")
	jr = await(t, jch)
	await(t, h.syncAsync("userdata", id, jr.Generation, nil, map[string]string{id: string(ud.AppendTo(nil))}))
	if r := h.cgJoin("userdata", "m"); r.ErrorCode != kerr.GroupIDNotFound.Code || r.MemberID != nil || r.MemberEpoch != 0 {
		t.Fatalf("consumer join to a group whose assignor keeps user data: %+v", r)
	}
	if d := h.describe("userdata"); d.ErrorCode != 0 || d.State != "Stable" {
		t.Fatalf("refused group changed: %+v", d)
	}
	// A heartbeat other than a join does not convert.
	ids, _ := h.classicPair("g")
	r := h.cgBeat("g", "m", 3, nil)
	if r.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("heartbeat to a classic group: %+v", r)
	}
	if d := h.describe("g"); d.ErrorCode != 0 || len(d.Members) != len(ids) {
		t.Fatalf("classic group after refused heartbeat: %+v", d)
	}
}

func sizedHarness(t *testing.T, classicMax, consumerMax int) *harness {
	return newHarness(t, Config{
		MaxGroupSize:         classicMax,
		ConsumerMaxGroupSize: consumerMax,
		TopicInfo: func(name string) (TopicInfo, bool) {
			return TopicInfo{ID: topicID(name), Partitions: 4}, name == "t"
		},
	})
}

// TestConsumerGroupMaxSize: group.consumer.max.size bounds consumer groups (and which
// classic groups are upgraded), group.max.size classic ones (and which consumer groups are
// downgraded).
func TestConsumerGroupMaxSize(t *testing.T) {
	h := sizedHarness(t, 2, 1)
	if r := h.cgJoin("cg", "m1"); r.ErrorCode != 0 {
		t.Fatalf("first member: %+v", r)
	}
	r := h.cgJoin("cg", "m2")
	if r.ErrorCode != kerr.GroupMaxSizeReached.Code || *r.ErrorMessage != "The consumer group has reached its maximum capacity of 1 members." {
		t.Fatalf("second member: %+v", r)
	}
	if r := h.cgJoin("cg", "m1"); r.ErrorCode != 0 {
		t.Fatalf("a member rejoining is not a new member: %+v", r)
	}
	// Two classic members fit group.max.size, but not group.consumer.max.size: no upgrade.
	ids, _ := h.classicPair("g")
	if r := h.cgJoin("g", "c1"); r.ErrorCode != kerr.GroupIDNotFound.Code || *r.ErrorMessage != "Group g is not a consumer group." {
		t.Fatalf("upgrade of a group too large: %+v", r)
	}
	if d := h.describe("g"); d.ErrorCode != 0 || len(d.Members) != len(ids) {
		t.Fatalf("classic group after a refused upgrade: %+v", d)
	}

	// Two classic members left alone in a consumer group would exceed group.max.size: the
	// group stays a consumer group when its last consumer-protocol member leaves.
	h = sizedHarness(t, 1, 0)
	h.cgJoin("cg", "c1")
	for i := 0; i < 2; i++ {
		id, jch := h.newMember("cg")
		jr := await(t, jch)
		wantErr(t, "classic join", jr.ErrorCode, nil)
		wantErr(t, "classic sync", await(t, h.syncAsync("cg", id, jr.Generation, nil, nil)).ErrorCode, nil)
	}
	h.cgLeave("cg", "c1")
	if d := h.cgDescribe("cg"); d.ErrorCode != 0 || len(d.Members) != 2 {
		t.Fatalf("consumer group after its last consumer member left: %+v", d)
	}
}

// TestStaticRollingUpgrade: a static member restarted with the consumer protocol replaces its
// classic self at once (Kafka does not wait for a leave the classic member never sends), and
// restarted with the classic protocol again it replaces its consumer self: the group is then
// classic again, Stable, the member holding the same partitions.
func TestStaticRollingUpgrade(t *testing.T) {
	h := cgHarness(t)
	jr := await(t, h.joinAsync("g", "", static("ia")))
	wantErr(t, "static join", jr.ErrorCode, nil)
	sr := await(t, h.syncAsync("g", jr.MemberID, jr.Generation, ptr("ia"), map[string]string{jr.MemberID: classicAssignment(0, 1, 2, 3)}))
	wantErr(t, "static sync", sr.ErrorCode, nil)

	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group, req.MemberID, req.InstanceID, req.RebalanceTimeoutMillis = "g", "ia2", ptr("ia"), 30000
	req.SubscribedTopicNames = []string{"t"}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	ch := make(chan *kmsg.ConsumerGroupHeartbeatResponse, 1)
	h.c.ConsumerGroupHeartbeat(Client{Version: 1, ID: "c", Host: "/h"}, req, func(r *kmsg.ConsumerGroupHeartbeatResponse) { ch <- r })
	r := await(t, ch)
	if r.ErrorCode != 0 || r.Assignment == nil || len(r.Assignment.Topics) != 1 || len(r.Assignment.Topics[0].Partitions) != 4 {
		t.Fatalf("static member back with the consumer protocol: %+v", r)
	}
	d := h.cgDescribe("g")
	if len(d.Members) != 1 || d.Members[0].MemberID != "ia2" || d.Members[0].MemberType != 1 {
		t.Fatalf("after the static upgrade: %+v", d.Members)
	}

	// Rolled back: the classic incarnation replaces the consumer one, the group is classic.
	jr = await(t, h.joinAsync("g", "", static("ia")))
	if jr.ErrorCode != 0 || jr.MemberID == "ia2" || jr.Generation != d.Epoch {
		t.Fatalf("static member back with the classic protocol: %+v (group epoch %d)", jr, d.Epoch)
	}
	if g := h.describe("g"); g.ErrorCode != 0 || g.State != "Stable" || len(g.Members) != 1 || g.Members[0].MemberID != jr.MemberID {
		t.Fatalf("after the static rollback: %+v", g)
	}
	sr = await(t, h.syncAsync("g", jr.MemberID, jr.Generation, ptr("ia"), nil))
	if a, err := decodeClassicAssignment(sr.MemberAssignment); sr.ErrorCode != 0 || err != nil || len(a["t"]) != 4 {
		t.Fatalf("sync after the rollback: %+v", sr)
	}
}

func ptr(s string) *string { return &s }

func policyHarness(t *testing.T, policy string) *harness {
	return newHarness(t, Config{
		MigrationPolicy: policy,
		TopicInfo: func(name string) (TopicInfo, bool) {
			return TopicInfo{ID: topicID(name), Partitions: 4}, name == "t"
		},
	})
}

// TestMigrationPolicy: group.consumer.migration.policy decides which conversions of groups
// with members happen; empty groups convert whatever it says.
func TestMigrationPolicy(t *testing.T) {
	if _, err := New(Config{MigrationPolicy: "sideways"}); err == nil {
		t.Fatal("an unknown policy was accepted")
	}
	// classicJoins adds two classic members to consumer group cg (no conversion needed).
	classicJoins := func(h *harness) {
		for i := 0; i < 2; i++ {
			id, jch := h.newMember("cg")
			jr := await(t, jch)
			wantErr(t, "classic join", jr.ErrorCode, nil)
			wantErr(t, "classic sync", await(t, h.syncAsync("cg", id, jr.Generation, nil, nil)).ErrorCode, nil)
		}
	}
	for _, tc := range []struct {
		policy             string
		upgrade, downgrade bool
	}{
		{"disabled", false, false},
		{"upgrade", true, false},
		{"DOWNGRADE", false, true},
		{"", true, true},
	} {
		h := policyHarness(t, tc.policy)
		h.classicPair("g")
		r := h.cgJoin("g", "c1")
		if got := r.ErrorCode == 0; got != tc.upgrade {
			t.Fatalf("policy %q: upgrade %v (%+v)", tc.policy, got, r)
		}
		// An empty classic group (offsets only) converts whatever the policy.
		wantErr(t, "simple commit", h.commit(9, "empty", "", -1, map[string]int64{"t": 1}).Topics[0].Partitions[0].ErrorCode, nil)
		if r := h.cgJoin("empty", "c1"); r.ErrorCode != 0 {
			t.Fatalf("policy %q: an empty classic group: %+v", tc.policy, r)
		}
		h.cgJoin("cg", "c1")
		classicJoins(h)
		h.cgLeave("cg", "c1")
		downgraded := h.describe("cg").ErrorCode == 0
		if downgraded != tc.downgrade {
			t.Fatalf("policy %q: downgrade %v", tc.policy, downgraded)
		}
	}
}
