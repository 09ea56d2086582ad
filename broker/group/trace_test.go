package group

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klite/klite/broker/internal/golden"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTraces runs each testdata/*.trace script (commands against one group "g", members
// named by alias) and compares the transcript with testdata/*.golden. Commands:
//
//	join A [new|old|idonly] [static=ID] [protos=p1,p2] [session=10s] [rebalance=30s] [v=N]
//	    A joins (rejoins with its member ID once it has one; "new" rejoins with none, as a
//	    restarted static member does). A first dynamic join does the MEMBER_ID_REQUIRED
//	    round trip itself ("idonly" stops after it); "old" uses the member ID a static
//	    rejoin replaced.
//	sync A [A=assignment ...]    SyncGroup at A's last generation
//	hb A [gen=N] [old]           Heartbeat
//	leave A [B ...]              LeaveGroup
//	commit A|- topic=offset      OffsetCommit (- = simple commit, generation -1)
//	fetch topic                  committed offset of topic partition 0
//	advance D                    move the fake clock
//	state                        state, generation, leader, protocol and members
//	restart                      close and reopen over the same log
//
// After each command the transcript gets every response that arrived, sorted by member.
func TestTraces(t *testing.T) { golden.Run(t, "testdata/*.trace", runTrace) }

type traceMember struct {
	alias    string
	id       string
	oldID    string // the ID before a static rejoin replaced it
	instance *string
	gen      int32
	joins    chan *kmsg.JoinGroupResponse
	syncs    chan *kmsg.SyncGroupResponse
	opts     []joinOpt
}

type tracer struct {
	t       *testing.T
	h       *harness
	members map[string]*traceMember
	aliases map[string]string // member ID -> alias
	out     strings.Builder
}

func runTrace(t *testing.T, script string) string {
	tr := &tracer{t: t, h: newHarness(t, Config{}), members: map[string]*traceMember{}, aliases: map[string]string{}}
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			tr.out.WriteString(line + "\n")
			continue
		}
		tr.out.WriteString("> " + line + "\n")
		tr.exec(strings.Fields(line))
		tr.drain()
	}
	return tr.out.String()
}

func (tr *tracer) printf(format string, args ...any) { fmt.Fprintf(&tr.out, "  "+format+"\n", args...) }

func (tr *tracer) name(id string) string {
	if id == "" {
		return `""`
	}
	if a, ok := tr.aliases[id]; ok {
		if m := tr.members[a]; m != nil && m.id != id && m.oldID == id {
			return a + "(old)" // the member ID a static rejoin replaced
		}
		return a
	}
	return "?" + id
}

func (tr *tracer) member(alias string) *traceMember {
	m := tr.members[alias]
	if m == nil {
		m = &traceMember{alias: alias, joins: make(chan *kmsg.JoinGroupResponse, 4), syncs: make(chan *kmsg.SyncGroupResponse, 4)}
		tr.members[alias] = m
	}
	return m
}

func kv(args []string) map[string]string {
	out := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		out[k] = v
	}
	return out
}

func (tr *tracer) exec(f []string) {
	t, h := tr.t, tr.h
	switch f[0] {
	case "join":
		m := tr.member(f[1])
		args := kv(f[2:])
		version := int16(9)
		if v, ok := args["v"]; ok {
			n, _ := strconv.Atoi(v)
			version = int16(n)
		}
		var opts []joinOpt
		session, rebalance := testSession, testRebalance
		if d, ok := args["session"]; ok {
			session, _ = time.ParseDuration(d)
		}
		if d, ok := args["rebalance"]; ok {
			rebalance, _ = time.ParseDuration(d)
		}
		opts = append(opts, timeouts(session, rebalance))
		if p, ok := args["protos"]; ok {
			opts = append(opts, protos(strings.Split(p, ",")...))
		}
		if s, ok := args["static"]; ok {
			m.instance = &s
			opts = append(opts, static(s))
		}
		m.opts = opts
		id := m.id
		if _, ok := args["new"]; ok {
			id = ""
		}
		if _, ok := args["old"]; ok {
			id = m.oldID
		}
		tr.sendJoin(m, id, version)
		if id == "" && m.instance == nil && version >= 4 {
			r := await(t, m.joins)
			tr.printf("%s join: %s (member ID handed out)", m.alias, errName(r.ErrorCode))
			m.id = r.MemberID
			tr.aliases[m.id] = m.alias
			if _, ok := args["idonly"]; !ok {
				tr.sendJoin(m, m.id, version)
			}
		}
	case "sync":
		m := tr.member(f[1])
		r := kmsg.NewPtrSyncGroupRequest()
		r.Group, r.MemberID, r.Generation, r.InstanceID = "g", m.id, m.gen, m.instance
		for alias, a := range kv(f[2:]) {
			ga := kmsg.NewSyncGroupRequestGroupAssignment()
			ga.MemberID, ga.MemberAssignment = tr.member(alias).id, []byte(a)
			r.GroupAssignment = append(r.GroupAssignment, ga)
		}
		sort.Slice(r.GroupAssignment, func(i, j int) bool { return r.GroupAssignment[i].MemberID < r.GroupAssignment[j].MemberID })
		h.c.SyncGroup(Client{Version: 5}, r, func(resp *kmsg.SyncGroupResponse) { m.syncs <- resp })
	case "hb":
		m := tr.member(f[1])
		gen := m.gen
		if g, ok := kv(f[2:])["gen"]; ok {
			n, _ := strconv.Atoi(g)
			gen = int32(n)
		}
		id := m.id
		if _, ok := kv(f[2:])["old"]; ok {
			id = m.oldID
		}
		tr.printf("%s heartbeat: %s", m.alias, errName(h.heartbeat("g", id, gen, m.instance)))
	case "leave":
		var lms []kmsg.LeaveGroupRequestMember
		for _, a := range f[1:] {
			m := tr.member(a)
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID, lm.InstanceID = m.id, m.instance
			lms = append(lms, lm)
		}
		r := h.leave("g", lms...)
		for i, rm := range r.Members {
			tr.printf("%s leave: %s", f[1+i], errName(rm.ErrorCode))
		}
	case "commit":
		topic, off, _ := strings.Cut(f[2], "=")
		n, _ := strconv.ParseInt(off, 10, 64)
		id, gen := "", int32(-1)
		if f[1] != "-" {
			m := tr.member(f[1])
			id, gen = m.id, m.gen
		}
		r := h.commit(9, "g", id, gen, map[string]int64{topic: n})
		tr.printf("%s commit %s: %s", f[1], f[2], errName(r.Topics[0].Partitions[0].ErrorCode))
	case "fetch":
		p := h.fetch("g", f[1])
		tr.printf("fetch %s: offset=%d", f[1], p.Offset)
	case "advance":
		d, err := time.ParseDuration(f[1])
		if err != nil {
			t.Fatal(err)
		}
		h.advance(d)
	case "state":
		d := h.describe("g")
		var ms []string
		for _, m := range d.Members {
			s := tr.name(m.MemberID)
			if m.InstanceID != nil && strings.HasPrefix(s, "?") {
				for _, tm := range tr.members {
					if tm.instance != nil && *tm.instance == *m.InstanceID {
						s = tm.alias + "(new)" // rejoined, its response not out yet
					}
				}
			}
			if len(m.MemberAssignment) > 0 {
				s += "=" + string(m.MemberAssignment)
			}
			ms = append(ms, s)
		}
		sort.Strings(ms)
		tr.printf("state %s protocol=%q members=%v", d.State, d.Protocol, ms)
	case "restart":
		h.restart()
	default:
		t.Fatalf("unknown command %q", f[0])
	}
}

func (tr *tracer) sendJoin(m *traceMember, id string, version int16) {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = version
	r.Group, r.MemberID, r.ProtocolType = "g", id, "consumer"
	protos("range")(r)
	for _, o := range m.opts {
		o(r)
	}
	tr.h.c.JoinGroup(Client{Version: version, ID: "c"}, r, func(resp *kmsg.JoinGroupResponse) { m.joins <- resp })
}

// drain prints the responses that have arrived, members in alias order. Member IDs learnt
// from any join response are registered first, so every line can use aliases.
func (tr *tracer) drain() {
	tr.h.c.Sync()
	aliases := make([]string, 0, len(tr.members))
	for a := range tr.members {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	type event struct {
		m    *traceMember
		join *kmsg.JoinGroupResponse
		sync *kmsg.SyncGroupResponse
	}
	var events []event
	for _, a := range aliases {
		m := tr.members[a]
		for more := true; more; {
			select {
			case r := <-m.joins:
				events = append(events, event{m: m, join: r})
				if r.ErrorCode == 0 && r.MemberID != m.id {
					if m.id != "" {
						tr.aliases[m.id] = m.alias + "(old)"
						m.oldID = m.id
					}
					m.id = r.MemberID
					tr.aliases[m.id] = m.alias
				}
			case r := <-m.syncs:
				events = append(events, event{m: m, sync: r})
			default:
				more = false
			}
		}
	}
	for _, e := range events {
		switch {
		case e.join != nil:
			tr.printJoin(e.m, e.join)
		case e.sync.ErrorCode != 0:
			tr.printf("%s sync: %s", e.m.alias, errName(e.sync.ErrorCode))
		default:
			tr.printf("%s sync: assignment=%q", e.m.alias, e.sync.MemberAssignment)
		}
	}
}

func (tr *tracer) printJoin(m *traceMember, r *kmsg.JoinGroupResponse) {
	if r.ErrorCode != 0 {
		tr.printf("%s join: %s", m.alias, errName(r.ErrorCode))
		return
	}
	m.gen = r.Generation
	var ms []string
	for _, x := range r.Members {
		ms = append(ms, tr.name(x.MemberID))
	}
	sort.Strings(ms)
	s := fmt.Sprintf("%s join: gen=%d leader=%s protocol=%s", m.alias, r.Generation, tr.name(r.LeaderID), *r.Protocol)
	if len(ms) > 0 {
		s += fmt.Sprintf(" members=%v", ms)
	}
	if r.SkipAssignment {
		s += " skip-assignment"
	}
	tr.printf("%s", s)
}
