package group

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klite/klite/broker/internal/golden"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestConsumerTraces runs each testdata/*.ctrace script against one KIP-848 consumer group
// "cg" (members named by alias; the alias is the member ID a v1 client generates) and
// compares the transcript with testdata/*.golden. Commands:
//
//	topic NAME=N                  create a topic with N partitions (or grow it to N)
//	hb A [join] [subs=t,u] [regex=R] [assignor=X] [static=ID] [id=NEWID] [epoch=N]
//	     [hold] [noowned] [rebalance=D]
//	    ConsumerGroupHeartbeat. "join" sends epoch 0 with the full fields; otherwise A's
//	    last epoch and the partitions A owns. A member applies an assignment it is sent
//	    (revoking what is no longer in it) before its next heartbeat, unless "hold"
//	    (a member slow to revoke). "noowned" leaves the owned partitions out (null).
//	leave A [static]              heartbeat with epoch -1 (or -2)
//	commit A topic=offset [epoch=N]  OffsetCommit v9 with A's epoch (- = no member, epoch -1)
//	fetch A topic [epoch=N]       OffsetFetch v9 with A's member ID and epoch
//	advance D                     move the fake clock
//	describe                      ConsumerGroupDescribe: state, epochs, members
//	list                          ListGroups
//	restart                       close and reopen over the same log
func TestConsumerTraces(t *testing.T) { golden.Run(t, "testdata/*.ctrace", runConsumerTrace) }

type ctMember struct {
	alias    string
	id       string
	epoch    int32
	owned    assignment
	instance *string
}

type ctracer struct {
	t       *testing.T
	h       *harness
	mu      sync.Mutex
	topics  map[string]int32
	members map[string]*ctMember
	out     strings.Builder
}

func topicID(name string) [16]byte {
	var id [16]byte
	copy(id[:], name)
	return id
}

func runConsumerTrace(t *testing.T, script string) string {
	tr := &ctracer{t: t, topics: map[string]int32{}, members: map[string]*ctMember{}}
	cfg := Config{
		TopicInfo: func(name string) (TopicInfo, bool) {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			n, ok := tr.topics[name]
			return TopicInfo{ID: topicID(name), Partitions: n}, ok
		},
		TopicNames: func() []string {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			var out []string
			for n := range tr.topics {
				out = append(out, n)
			}
			return out
		},
		TopicNameByID: func(id [16]byte) (string, bool) {
			name := strings.TrimRight(string(id[:]), "\x00")
			tr.mu.Lock()
			defer tr.mu.Unlock()
			_, ok := tr.topics[name]
			return name, ok
		},
	}
	tr.h = newHarness(t, cfg)
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			tr.out.WriteString(line + "\n")
			continue
		}
		tr.out.WriteString("> " + line + "\n")
		tr.exec(strings.Fields(line))
	}
	return tr.out.String()
}

func (tr *ctracer) printf(format string, args ...any) {
	fmt.Fprintf(&tr.out, "  "+format+"\n", args...)
}

func (tr *ctracer) member(alias string) *ctMember {
	m := tr.members[alias]
	if m == nil {
		m = &ctMember{alias: alias, id: alias, owned: assignment{}}
		tr.members[alias] = m
	}
	return m
}

// alias names a member ID in the transcript.
func (tr *ctracer) alias(id string) string {
	for _, m := range tr.members {
		if m.id == id {
			return m.alias
		}
	}
	return "?" + id
}

func fmtAssignment(a assignment) string {
	var parts []string
	for _, t := range a.topics() {
		ps := make([]string, len(a[t]))
		for i, p := range a[t] {
			ps[i] = strconv.Itoa(int(p))
		}
		parts = append(parts, t+":"+strings.Join(ps, ","))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func (tr *ctracer) toAssignment(ts []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic) assignment {
	a := assignment{}
	for _, t := range ts {
		name := strings.TrimRight(string(t.TopicID[:]), "\x00")
		for _, p := range t.Partitions {
			a.add(name, p)
		}
	}
	return a
}

func (tr *ctracer) heartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	ch := make(chan *kmsg.ConsumerGroupHeartbeatResponse, 1)
	tr.h.c.ConsumerGroupHeartbeat(Client{Version: req.Version, ID: "client", Host: "/127.0.0.1"}, req, func(r *kmsg.ConsumerGroupHeartbeatResponse) { ch <- r })
	return await(tr.t, ch)
}

func (tr *ctracer) exec(f []string) {
	t, h := tr.t, tr.h
	switch f[0] {
	case "topic":
		name, n, _ := strings.Cut(f[1], "=")
		k, _ := strconv.Atoi(n)
		tr.mu.Lock()
		tr.topics[name] = int32(k)
		tr.mu.Unlock()
	case "hb":
		m := tr.member(f[1])
		args := kv(f[2:])
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Version = 1
		req.Group = "cg"
		if id, ok := args["id"]; ok {
			m.id = id
		}
		if s, ok := args["static"]; ok {
			m.instance = &s
		}
		req.MemberID, req.InstanceID = m.id, m.instance
		req.MemberEpoch = m.epoch
		_, join := args["join"]
		if join {
			req.MemberEpoch = 0
			req.RebalanceTimeoutMillis = 30000
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			m.owned = assignment{}
		} else if _, ok := args["noowned"]; !ok {
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			for _, tn := range m.owned.topics() {
				rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
				rt.TopicID, rt.Partitions = topicID(tn), m.owned[tn]
				req.Topics = append(req.Topics, rt)
			}
		}
		if e, ok := args["epoch"]; ok {
			n, _ := strconv.Atoi(e)
			req.MemberEpoch = int32(n)
		}
		if d, ok := args["rebalance"]; ok {
			dur, _ := time.ParseDuration(d)
			req.RebalanceTimeoutMillis = int32(dur.Milliseconds())
		}
		if s, ok := args["subs"]; ok {
			req.SubscribedTopicNames = strings.Split(s, ",")
		} else if join {
			if _, ok := args["regex"]; !ok {
				req.SubscribedTopicNames = []string{"t"}
			}
		}
		if r, ok := args["regex"]; ok {
			req.SubscribedTopicRegex = &r
		}
		if a, ok := args["assignor"]; ok {
			req.ServerAssignor = &a
		}
		r := tr.heartbeat(req)
		if r.ErrorCode != 0 {
			msg := ""
			if r.ErrorMessage != nil {
				msg = " (" + *r.ErrorMessage + ")"
			}
			tr.printf("%s hb: %s%s", m.alias, errName(r.ErrorCode), msg)
			return
		}
		m.epoch = r.MemberEpoch
		s := fmt.Sprintf("%s hb: epoch=%d interval=%dms", m.alias, r.MemberEpoch, r.HeartbeatIntervalMillis)
		if r.Assignment != nil {
			a := tr.toAssignment(r.Assignment.Topics)
			s += " assignment=" + fmtAssignment(a)
			if _, hold := args["hold"]; !hold {
				m.owned = a
			}
		}
		tr.printf("%s", s)
	case "leave":
		m := tr.member(f[1])
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Version = 1
		req.Group, req.MemberID, req.InstanceID = "cg", m.id, m.instance
		req.MemberEpoch = leaveEpoch
		if len(f) > 2 && f[2] == "static" {
			req.MemberEpoch = leaveStaticEpoch
		}
		r := tr.heartbeat(req)
		tr.printf("%s leave: %s epoch=%d", m.alias, errName(r.ErrorCode), r.MemberEpoch)
		if r.ErrorCode == 0 {
			m.epoch, m.owned = 0, assignment{}
		}
	case "commit":
		topic, off, _ := strings.Cut(f[2], "=")
		n, _ := strconv.ParseInt(off, 10, 64)
		id, epoch := "", int32(-1)
		if f[1] != "-" {
			m := tr.member(f[1])
			id, epoch = m.id, m.epoch
		}
		if e, ok := kv(f[3:])["epoch"]; ok {
			n, _ := strconv.Atoi(e)
			epoch = int32(n)
		}
		r := h.commit(9, "cg", id, epoch, map[string]int64{topic: n})
		tr.printf("%s commit %s: %s", f[1], f[2], errName(r.Topics[0].Partitions[0].ErrorCode))
	case "fetch":
		m := tr.member(f[1])
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group, rg.MemberID, rg.MemberEpoch = "cg", &m.id, m.epoch
		if e, ok := kv(f[3:])["epoch"]; ok {
			n, _ := strconv.Atoi(e)
			rg.MemberEpoch = int32(n)
		}
		rt := kmsg.NewOffsetFetchRequestGroupTopic()
		rt.Topic, rt.Partitions = f[2], []int32{0}
		rg.Topics = append(rg.Topics, rt)
		ch := make(chan []kmsg.OffsetFetchResponseGroup, 1)
		h.c.FetchOffsets([]kmsg.OffsetFetchRequestGroup{rg}, func(out []kmsg.OffsetFetchResponseGroup) { ch <- out })
		g := await(t, ch)[0]
		if g.ErrorCode != 0 {
			tr.printf("%s fetch %s: %s", f[1], f[2], errName(g.ErrorCode))
			return
		}
		tr.printf("%s fetch %s: offset=%d", f[1], f[2], g.Topics[0].Partitions[0].Offset)
	case "advance":
		d, err := time.ParseDuration(f[1])
		if err != nil {
			t.Fatal(err)
		}
		h.advance(d)
	case "describe":
		ch := make(chan []kmsg.ConsumerGroupDescribeResponseGroup, 1)
		h.c.ConsumerGroupDescribe([]string{"cg"}, func(gs []kmsg.ConsumerGroupDescribeResponseGroup) { ch <- gs })
		g := await(t, ch)[0]
		if g.ErrorCode != 0 {
			tr.printf("describe: %s", errName(g.ErrorCode))
			return
		}
		tr.printf("group %s epoch=%d assignment-epoch=%d assignor=%s", g.State, g.Epoch, g.AssignmentEpoch, g.AssignorName)
		var lines []string
		for _, dm := range g.Members {
			cur, tgt := assignment{}, assignment{}
			for _, x := range dm.Assignment.TopicPartitions {
				for _, p := range x.Partitions {
					cur.add(x.Topic, p)
				}
			}
			for _, x := range dm.TargetAssignment.TopicPartitions {
				for _, p := range x.Partitions {
					tgt.add(x.Topic, p)
				}
			}
			s := fmt.Sprintf("%s epoch=%d subs=%v assigned=%s target=%s", tr.alias(dm.MemberID), dm.MemberEpoch, dm.SubscribedTopics, fmtAssignment(cur), fmtAssignment(tgt))
			if dm.InstanceID != nil {
				s += " static=" + *dm.InstanceID
			}
			lines = append(lines, s)
		}
		sort.Strings(lines)
		for _, l := range lines {
			tr.printf("  %s", l)
		}
	case "list":
		ch := make(chan []kmsg.ListGroupsResponseGroup, 1)
		h.c.ListGroups(nil, nil, func(gs []kmsg.ListGroupsResponseGroup, _ error) { ch <- gs })
		for _, g := range await(t, ch) {
			tr.printf("list %s type=%s state=%s protocol-type=%s", g.Group, g.GroupType, g.GroupState, g.ProtocolType)
		}
	case "restart":
		h.restart()
	default:
		t.Fatalf("unknown command %q", f[0])
	}
}
