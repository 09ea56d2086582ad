package group

// KIP-848 consumer groups (the "consumer" group type of Kafka 4.0), modelled on Kafka's
// ConsumerGroup and CurrentAssignmentBuilder.
//
// The group has an epoch, bumped whenever what the assignor sees changes (a member joins or
// leaves, a subscription or the assignor changes, a subscribed topic gains partitions). On a
// bump the server-side assignor computes the target assignment at that epoch. Each member
// then reconciles toward its target on its own heartbeats, never group-wide:
//
//	member epoch < target epoch
//	  owns partitions outside its target  -> UNREVOKED_PARTITIONS: keeps current ∩ target,
//	                                          told to revoke the rest; epoch unchanged until
//	                                          its heartbeat no longer lists them as owned
//	  else                                -> takes its target at the target epoch, except
//	                                          partitions another member still owns (pending
//	                                          revocation there): UNRELEASED_PARTITIONS until
//	                                          they are freed, then STABLE
//
// So a partition is only handed to a member once its previous owner has revoked it. The
// coordinator tracks, per partition, which member currently owns it (assigned or pending
// revocation) in ownerOf.

import (
	"sort"
	"time"
)

// memberState is a consumer group member's reconciliation state (Kafka's MemberState).
type memberState int8

const (
	msStable memberState = iota
	msUnrevoked
	msUnreleased
)

var memberStateNames = [...]string{"stable", "unrevoked_partitions", "unreleased_partitions"}

func (s memberState) String() string { return memberStateNames[s] }

// assignment maps topic name to its sorted partitions. Topics are kept by name: IDs are
// resolved when answering (a topic recreated under the same name is a new topic to the
// client, which the next metadata refresh bumps the group epoch for).
type assignment map[string][]int32

func (a assignment) clone() assignment {
	out := assignment{}
	for t, ps := range a {
		out[t] = append([]int32(nil), ps...)
	}
	return out
}

func (a assignment) has(t string, p int32) bool {
	for _, x := range a[t] {
		if x == p {
			return true
		}
	}
	return false
}

func (a assignment) add(t string, p int32) {
	ps := append(a[t], p)
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	a[t] = ps
}

func (a assignment) empty() bool {
	for _, ps := range a {
		if len(ps) > 0 {
			return false
		}
	}
	return true
}

func (a assignment) equal(b assignment) bool {
	if a.count() != b.count() {
		return false
	}
	for t, ps := range a {
		for _, p := range ps {
			if !b.has(t, p) {
				return false
			}
		}
	}
	return true
}

func (a assignment) count() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

func (a assignment) topics() []string {
	out := make([]string, 0, len(a))
	for t, ps := range a {
		if len(ps) > 0 {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// cmember is a member of a consumer group.
type cmember struct {
	id         string
	instanceID *string
	rackID     *string
	clientID   string
	host       string
	seq        uint64 // join order

	epoch      int32
	prevEpoch  int32
	state      memberState
	rebalance  time.Duration
	subscribed []string // sorted topic names: names and the topics regex resolves to
	names      []string // sorted topic names the member subscribed to by name
	regex      *string
	assignor   string // client's ServerAssignor, "" for the group default
	assigned   assignment
	revoking   assignment // partitions pending revocation

	hb *loopTimer // session timer; for a member being revoked also the rebalance timer
	rb *loopTimer

	classic *classicMeta // set for a member using the classic protocol (consumer_classic.go)
}

// cgroup is the consumer-group part of a group of type "consumer".
type cgroup struct {
	epoch       int32 // group epoch
	assignEpoch int32 // epoch of the target assignment
	members     map[string]*cmember
	static      map[string]string     // instance ID -> member ID
	target      map[string]assignment // member ID -> target assignment
	ownerOf     map[tp]string         // partition -> member holding it (assigned or revoking)
	partitions  map[string]int32      // partition counts of subscribed topics seen at the last bump
	lastRec     []byte                // the group record last written (or replayed)
	regexes     map[string][]string   // subscription regex -> topics it resolved to
	refreshing  bool                  // a resolution of the regexes is queued
	resolvedAt  time.Time             // when the regexes were last resolved (zero: never)
}

func newCgroup() *cgroup {
	return &cgroup{
		members:    map[string]*cmember{},
		static:     map[string]string{},
		target:     map[string]assignment{},
		ownerOf:    map[tp]string{},
		partitions: map[string]int32{},
		regexes:    map[string][]string{},
	}
}

// memberSubs is m's subscription: its topic names and what its regex resolved to.
func (cg *cgroup) memberSubs(m *cmember) []string {
	subs := append([]string(nil), m.names...)
	if m.regex != nil {
		subs = append(subs, cg.regexes[*m.regex]...)
	}
	return sortedSet(subs)
}

func (cg *cgroup) ordered() []*cmember {
	out := make([]*cmember, 0, len(cg.members))
	for _, m := range cg.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// stateName is the group state as Kafka 4.0 names it (ConsumerGroupState).
func (cg *cgroup) stateName() string {
	if len(cg.members) == 0 {
		return "Empty"
	}
	if cg.assignEpoch != cg.epoch {
		return "Assigning"
	}
	for _, m := range cg.members {
		if m.epoch != cg.assignEpoch || m.state != msStable {
			return "Reconciling"
		}
	}
	return "Stable"
}

// subscribedTopics is the union of the members' subscriptions.
func (cg *cgroup) subscribedTopics() map[string]bool {
	out := map[string]bool{}
	for _, m := range cg.members {
		for _, t := range m.subscribed {
			out[t] = true
		}
	}
	return out
}

// assignorName is the assignor the group uses: the one most members ask for, the default on
// a tie or when none asks (Kafka picks the most popular client-side choice).
func (cg *cgroup) assignorName(def string) string {
	votes := map[string]int{}
	for _, m := range cg.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best, n := def, 0
	names := make([]string, 0, len(votes))
	for a := range votes {
		names = append(names, a)
	}
	sort.Strings(names)
	for _, a := range names {
		if votes[a] > n {
			best, n = a, votes[a]
		}
	}
	return best
}

// setOwned records m as the holder of its assigned and revoking partitions and frees the
// partitions it held before that it no longer holds.
func (cg *cgroup) setOwned(m *cmember, oldAssigned, oldRevoking assignment) {
	for _, a := range []assignment{oldAssigned, oldRevoking} {
		for t, ps := range a {
			for _, p := range ps {
				if cg.ownerOf[tp{t, p}] == m.id {
					delete(cg.ownerOf, tp{t, p})
				}
			}
		}
	}
	for _, a := range []assignment{m.assigned, m.revoking} {
		for t, ps := range a {
			for _, p := range ps {
				cg.ownerOf[tp{t, p}] = m.id
			}
		}
	}
}

// reconcile moves m toward its target assignment (Kafka's CurrentAssignmentBuilder). owned
// is what the member reported owning in this heartbeat (nil when not reported). It returns
// whether anything about m changed.
func (cg *cgroup) reconcile(m *cmember, owned assignment) bool {
	target := cg.target[m.id]
	if target == nil {
		target = assignment{}
	}
	oldAssigned, oldRevoking, oldEpoch, oldState := m.assigned, m.revoking, m.epoch, m.state
	switch {
	case m.state == msUnrevoked:
		// Still waiting for the member to give up m.revoking: done once its heartbeat lists
		// nothing it should have revoked.
		if owned == nil || overlaps(owned, m.revoking) {
			return false
		}
		cg.computeNext(m, target)
	case m.epoch != cg.assignEpoch:
		cg.computeNext(m, target)
	case m.state == msUnreleased:
		cg.computeNext(m, target)
	default:
		return false
	}
	cg.setOwned(m, oldAssigned, oldRevoking)
	return m.epoch != oldEpoch || m.state != oldState || !m.assigned.equal(oldAssigned) || !m.revoking.equal(oldRevoking)
}

// computeNext is one step of the reconciliation toward target at the target epoch.
func (cg *cgroup) computeNext(m *cmember, target assignment) {
	keep, revoke := assignment{}, assignment{}
	for t, ps := range m.assigned {
		for _, p := range ps {
			if target.has(t, p) {
				keep.add(t, p)
			} else {
				revoke.add(t, p)
			}
		}
	}
	if !revoke.empty() {
		// Revoke first; the epoch stays until the member confirms.
		m.assigned, m.revoking, m.state = keep, revoke, msUnrevoked
		return
	}
	unreleased := false
	for t, ps := range target {
		for _, p := range ps {
			if keep.has(t, p) {
				continue
			}
			if o, ok := cg.ownerOf[tp{t, p}]; ok && o != m.id {
				unreleased = true // still owned (being revoked) by another member
				continue
			}
			keep.add(t, p)
		}
	}
	m.prevEpoch, m.epoch = m.epoch, cg.assignEpoch
	m.assigned, m.revoking = keep, assignment{}
	m.state = msStable
	if unreleased {
		m.state = msUnreleased
	}
}

func overlaps(a, b assignment) bool {
	for t, ps := range a {
		for _, p := range ps {
			if b.has(t, p) {
				return true
			}
		}
	}
	return false
}

// subset reports whether every partition of a is in b.
func subset(a, b assignment) bool {
	for t, ps := range a {
		for _, p := range ps {
			if !b.has(t, p) {
				return false
			}
		}
	}
	return true
}

// removeMember drops m and frees its partitions.
func (cg *cgroup) removeMember(m *cmember) {
	m.hb.stop()
	m.rb.stop()
	m.stopClassicTimers()
	cg.setOwned(&cmember{id: m.id}, m.assigned, m.revoking)
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
}
