package group

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/klite/klite/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type harness struct {
	t   testing.TB
	c   *Coordinator
	clk *fakeClock
	log *storage.MemMetaLog
	cfg Config
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, clk: newFakeClock(), log: storage.NewMemMetaLog()}
	if cfg.Log == nil {
		cfg.Log = h.log
	}
	cfg.Clock = h.clk
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h.cfg = cfg
	h.start()
	return h
}

func (h *harness) start() {
	h.t.Helper()
	c, err := New(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.c = c
	h.clk.settle = func() { c.Sync() }
	h.t.Cleanup(func() { c.Close() })
	c.Sync()
}

// restart closes the coordinator and opens a new one over the same stored records.
func (h *harness) restart() {
	h.t.Helper()
	h.c.Close()
	h.log = h.log.Reopen()
	h.cfg.Log = h.log
	h.start()
}

func (h *harness) advance(d time.Duration) {
	h.clk.Advance(d)
	h.c.Sync()
}

// await returns the value sent on ch, failing after a few seconds.
func await[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no response")
	}
	var zero T
	return zero
}

// pending asserts that nothing has been sent on ch once the coordinator is idle.
func pending[T any](h *harness, ch <-chan T) {
	h.t.Helper()
	h.c.Sync()
	select {
	case v := <-ch:
		h.t.Fatalf("unexpected response %+v", v)
	default:
	}
}

func errName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	return kerr.ErrorForCode(code).(*kerr.Error).Message
}

func wantErr(t testing.TB, what string, got int16, want *kerr.Error) {
	t.Helper()
	wantCode := int16(0)
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Fatalf("%s: error %s, want %s", what, errName(got), errName(wantCode))
	}
}

type joinOpt func(*kmsg.JoinGroupRequest)

func static(id string) joinOpt { return func(r *kmsg.JoinGroupRequest) { r.InstanceID = &id } }
func protos(names ...string) joinOpt {
	return func(r *kmsg.JoinGroupRequest) {
		r.Protocols = nil
		for _, n := range names {
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name = n
			p.Metadata = subscription("t")
			r.Protocols = append(r.Protocols, p)
		}
	}
}
func timeouts(session, rebalance time.Duration) joinOpt {
	return func(r *kmsg.JoinGroupRequest) {
		r.SessionTimeoutMillis = int32(session.Milliseconds())
		r.RebalanceTimeoutMillis = int32(rebalance.Milliseconds())
	}
}

func subscription(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

const (
	testSession   = 10 * time.Second
	testRebalance = 30 * time.Second
)

func (h *harness) joinAsync(group, memberID string, opts ...joinOpt) <-chan *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 9
	r.Group = group
	r.MemberID = memberID
	r.ProtocolType = "consumer"
	r.SessionTimeoutMillis = int32(testSession.Milliseconds())
	r.RebalanceTimeoutMillis = int32(testRebalance.Milliseconds())
	protos("range")(r)
	for _, o := range opts {
		o(r)
	}
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	h.c.JoinGroup(Client{Version: 9, ID: "cl", Host: "/127.0.0.1"}, r, func(resp *kmsg.JoinGroupResponse) { ch <- resp })
	return ch
}

// newMember performs the KIP-394 dance and returns the member ID plus the pending join.
func (h *harness) newMember(group string, opts ...joinOpt) (string, <-chan *kmsg.JoinGroupResponse) {
	h.t.Helper()
	r := await(h.t, h.joinAsync(group, "", opts...))
	wantErr(h.t, "first join", r.ErrorCode, kerr.MemberIDRequired)
	if r.MemberID == "" {
		h.t.Fatal("MEMBER_ID_REQUIRED without a member ID")
	}
	return r.MemberID, h.joinAsync(group, r.MemberID, opts...)
}

func (h *harness) syncAsync(group, memberID string, gen int32, instance *string, assign map[string]string) <-chan *kmsg.SyncGroupResponse {
	r := kmsg.NewPtrSyncGroupRequest()
	r.Version = 5
	r.Group, r.MemberID, r.Generation, r.InstanceID = group, memberID, gen, instance
	for m, a := range assign {
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = m, []byte(a)
		r.GroupAssignment = append(r.GroupAssignment, ga)
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	h.c.SyncGroup(Client{Version: 5}, r, func(resp *kmsg.SyncGroupResponse) { ch <- resp })
	return ch
}

func (h *harness) heartbeat(group, memberID string, gen int32, instance *string) int16 {
	h.t.Helper()
	r := kmsg.NewPtrHeartbeatRequest()
	r.Group, r.MemberID, r.Generation, r.InstanceID = group, memberID, gen, instance
	ch := make(chan *kmsg.HeartbeatResponse, 1)
	h.c.Heartbeat(Client{Version: 4}, r, func(resp *kmsg.HeartbeatResponse) { ch <- resp })
	return await(h.t, ch).ErrorCode
}

func (h *harness) leave(group string, members ...kmsg.LeaveGroupRequestMember) *kmsg.LeaveGroupResponse {
	h.t.Helper()
	r := kmsg.NewPtrLeaveGroupRequest()
	r.Version = 5
	r.Group, r.Members = group, members
	ch := make(chan *kmsg.LeaveGroupResponse, 1)
	h.c.LeaveGroup(Client{Version: 5}, r, func(resp *kmsg.LeaveGroupResponse) { ch <- resp })
	return await(h.t, ch)
}

func (h *harness) describe(group string) kmsg.DescribeGroupsResponseGroup {
	h.t.Helper()
	ch := make(chan []kmsg.DescribeGroupsResponseGroup, 1)
	h.c.DescribeGroups([]string{group}, func(r []kmsg.DescribeGroupsResponseGroup) { ch <- r })
	return await(h.t, ch)[0]
}

func (h *harness) state(group string) string { h.t.Helper(); return h.describe(group).State }

func (h *harness) commit(version int16, group, memberID string, gen int32, offsets map[string]int64) *kmsg.OffsetCommitResponse {
	h.t.Helper()
	r := kmsg.NewPtrOffsetCommitRequest()
	r.Version = version
	r.Group, r.MemberID, r.Generation = group, memberID, gen
	for topic, off := range offsets {
		t := kmsg.NewOffsetCommitRequestTopic()
		t.Topic = topic
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch = 0, off, 7
		md := "md-" + topic
		p.Metadata = &md
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	}
	ch := make(chan *kmsg.OffsetCommitResponse, 1)
	h.c.CommitOffsets(Client{Version: version}, r, func(resp *kmsg.OffsetCommitResponse) { ch <- resp })
	return await(h.t, ch)
}

// fetch returns the committed offset of topic partition 0 (-1 if none).
func (h *harness) fetch(group, topic string) kmsg.OffsetFetchResponseGroupTopicPartition {
	h.t.Helper()
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	g.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: topic, Partitions: []int32{0}}}
	ch := make(chan []kmsg.OffsetFetchResponseGroup, 1)
	h.c.FetchOffsets([]kmsg.OffsetFetchRequestGroup{g}, func(r []kmsg.OffsetFetchResponseGroup) { ch <- r })
	return await(h.t, ch)[0].Topics[0].Partitions[0]
}

// stableGroup brings up a group whose members (joined in order) are all synced.
func (h *harness) stableGroup(group string, n int) ([]string, int32) {
	h.t.Helper()
	var ids []string
	var chans []<-chan *kmsg.JoinGroupResponse
	var gen int32
	for i := 0; i < n; i++ {
		id, ch := h.newMember(group)
		ids = append(ids, id)
		chans = append(chans, ch)
		if i == 0 {
			// The lone first member completes its own rebalance immediately.
			r := await(h.t, ch)
			gen = r.Generation
			await(h.t, h.syncAsync(group, id, gen, nil, map[string]string{id: "a0"}))
			continue
		}
		// Everyone else rejoins to let the newcomer in.
		for j := 0; j < i; j++ {
			chans[j] = h.joinAsync(group, ids[j])
		}
		for j := 0; j <= i; j++ {
			r := await(h.t, chans[j])
			wantErr(h.t, "join", r.ErrorCode, nil)
			gen = r.Generation
		}
		assign := map[string]string{}
		for j, id := range ids {
			assign[id] = "a" + string(rune('0'+j))
		}
		var syncs []<-chan *kmsg.SyncGroupResponse
		for j := 1; j <= i; j++ {
			syncs = append(syncs, h.syncAsync(group, ids[j], gen, nil, nil))
		}
		await(h.t, h.syncAsync(group, ids[0], gen, nil, assign))
		for _, s := range syncs {
			wantErr(h.t, "sync", await(h.t, s).ErrorCode, nil)
		}
	}
	if st := h.state(group); st != "Stable" {
		h.t.Fatalf("state %s, want Stable", st)
	}
	return ids, gen
}
