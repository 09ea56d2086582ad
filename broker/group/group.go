package group

import (
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a classic group's state.
type State int8

const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s State) String() string { return stateNames[s] }

type protocol struct {
	name     string
	metadata []byte
}

type member struct {
	id         string
	instanceID *string // static membership (KIP-345)
	clientID   string
	host       string
	seq        uint64 // join order, so listings follow it as Kafka's insertion order does

	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []protocol
	assignment       []byte

	joinCB func(*kmsg.JoinGroupResponse) // set while awaiting the join response
	syncCB func(*kmsg.SyncGroupResponse) // set while awaiting the sync response
	isNew  bool
	hb     *loopTimer
}

func (m *member) static() bool { return m.instanceID != nil }

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

// matches reports whether the member's protocols equal ps (names, order and metadata).
func (m *member) matches(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i, p := range ps {
		if p.Name != m.protocols[i].name || string(p.Metadata) != string(m.protocols[i].metadata) {
			return false
		}
	}
	return true
}

func toProtocols(ps []kmsg.JoinGroupRequestProtocol) []protocol {
	out := make([]protocol, len(ps))
	for i, p := range ps {
		out[i] = protocol{name: p.Name, metadata: append([]byte(nil), p.Metadata...)}
	}
	return out
}

type offset struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitTime  int64 // unix ms
	expireTime  int64 // unix ms, -1 if none (v2-v4 retention time)
}

type tp struct {
	topic     string
	partition int32
}

type group struct {
	id           string
	state        State
	stateSince   time.Time
	protocolType string // "" when unset (offsets-only groups)
	protocol     string // selected protocol, "" until a generation completes
	generation   int32
	leader       string

	members  map[string]*member
	static   map[string]string     // instance ID -> member ID
	pending  map[string]*loopTimer // MEMBER_ID_REQUIRED handed out, not yet rejoined
	pendSync map[string]bool       // members that must still send SyncGroup this generation

	joinTimer      *loopTimer
	syncTimer      *loopTimer
	initialDelay   bool      // the first rebalance is still inside its initial delay
	initialEnd     time.Time // the initial delay may not be extended past this
	newMemberAdded bool

	// subscribed is the topic set of a "consumer" protocol group for the current generation;
	// nil means unknown (undecodable metadata), which counts as subscribed to everything.
	subscribed map[string]bool

	offsets map[tp]offset

	// cg is set for a KIP-848 consumer group (group type "consumer"), nil for classic
	// groups. A consumer group keeps state Empty or Stable here (for the shared offset and
	// deletion rules) and its real state in cg.
	cg *cgroup
}

// typeName is the group type as ListGroups shows it.
func (g *group) typeName() string {
	if g.cg != nil {
		return "consumer"
	}
	return "classic"
}

func newGroup(id string, now time.Time) *group {
	return &group{
		id:         id,
		stateSince: now,
		members:    map[string]*member{},
		static:     map[string]string{},
		pending:    map[string]*loopTimer{},
		pendSync:   map[string]bool{},
		offsets:    map[tp]offset{},
	}
}

func (g *group) transition(s State, now time.Time) {
	g.state = s
	g.stateSince = now
}

// orderedMembers returns members in join order.
func (g *group) orderedMembers() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// rebalanceTimeout is the longest rebalance timeout of any member (Kafka's rule).
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// allJoined: every member is awaiting its join response and no MEMBER_ID_REQUIRED member
// is still expected back.
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.joinCB == nil {
			return false
		}
	}
	return true
}

// candidateProtocols are the protocol names every member supports.
func (g *group) candidateProtocols() map[string]bool {
	var cands map[string]bool
	for _, m := range g.members {
		names := map[string]bool{}
		for _, p := range m.protocols {
			if cands == nil || cands[p.name] {
				names[p.name] = true
			}
		}
		cands = names
	}
	return cands
}

// supports reports whether a joining member with these protocols fits the group.
func (g *group) supports(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	cands := g.candidateProtocols()
	for _, p := range ps {
		if cands[p.Name] {
			return true
		}
	}
	return false
}

// selectProtocol picks the candidate protocol most members list first among candidates;
// ties go to the one the earliest member prefers.
func (g *group) selectProtocol() string {
	cands := g.candidateProtocols()
	votes := map[string]int{}
	ms := g.orderedMembers()
	for _, m := range ms {
		for _, p := range m.protocols {
			if cands[p.name] {
				votes[p.name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	if len(ms) > 0 {
		for _, p := range ms[0].protocols {
			if cands[p.name] && votes[p.name] > bestVotes {
				best, bestVotes = p.name, votes[p.name]
			}
		}
	}
	return best
}

// computeSubscribed decodes the members' consumer subscriptions for OffsetDelete.
func (g *group) computeSubscribed() {
	g.subscribed = nil
	if g.protocolType != "consumer" || g.protocol == "" {
		g.subscribed = map[string]bool{}
		return
	}
	subs := map[string]bool{}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return // unknown: treated as subscribed to everything
		}
		for _, t := range md.Topics {
			subs[t] = true
		}
	}
	g.subscribed = subs
}

func (g *group) isSubscribed(topic string) bool {
	if g.subscribed == nil {
		return true
	}
	return g.subscribed[topic]
}

func (g *group) addMember(m *member) {
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
}

// removeMember drops m from the group's books (no state transition).
func (g *group) removeMember(m *member) {
	m.hb.stop()
	delete(g.members, m.id)
	delete(g.pendSync, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.orderedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// electJoinedLeader makes sure the leader is a member awaiting join; false if none is.
func (g *group) electJoinedLeader() bool {
	if l := g.members[g.leader]; l != nil && l.joinCB != nil {
		return true
	}
	for _, m := range g.orderedMembers() {
		if m.joinCB != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}
