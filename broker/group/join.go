package group

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client describes who sent a request.
type Client struct {
	Version int16  // request version
	ID      string // client.id
	Host    string // as shown in DescribeGroups
}

func joinError(memberID string, err *kerr.Error) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.ErrorCode = err.Code
	r.Generation = -1
	r.MemberID = memberID
	return r
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// JoinGroup handles a JoinGroup request; respond may be called much later (when the join
// phase of the rebalance completes).
func (c *Coordinator) JoinGroup(cl Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	if !c.post(func() {
		c.log.Debug("join group", "group", req.Group, "member", req.MemberID, "instance", req.InstanceID, "version", cl.Version)
		c.join(cl, req, func(r *kmsg.JoinGroupResponse) {
			c.log.Debug("join group answered", "group", req.Group, "member", r.MemberID, "err", r.ErrorCode, "generation", r.Generation, "leader", r.LeaderID)
			c.reply(func() { respond(r) })
		})
	}) {
		respond(joinError(req.MemberID, kerr.CoordinatorNotAvailable))
	}
}

func (c *Coordinator) join(cl Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	fail := func(err *kerr.Error) { respond(joinError(req.MemberID, err)) }
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	switch {
	case req.Group == "":
		fail(kerr.InvalidGroupID)
		return
	case session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout:
		fail(kerr.InvalidSessionTimeout)
		return
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		fail(kerr.InconsistentGroupProtocol)
		return
	}
	g := c.groups[req.Group]
	if g != nil && g.cg != nil {
		if len(g.cg.members) > 0 {
			// As Kafka 4.0: a classic member of a consumer group (consumer_classic.go).
			c.classicJoinToConsumer(g, cl, req, respond)
			return
		}
		// As Kafka: an empty consumer group becomes a classic group, keeping its offsets.
		offsets := g.offsets
		g = newGroup(req.Group, c.clock.Now())
		g.offsets = offsets
		c.groups[req.Group] = g
	}
	if g == nil {
		if req.MemberID != "" {
			fail(kerr.UnknownMemberID)
			return
		}
		g = newGroup(req.Group, c.clock.Now())
		c.groups[req.Group] = g
	}
	known := req.MemberID != "" && (g.members[req.MemberID] != nil || g.pending[req.MemberID] != nil)
	if !known && req.InstanceID != nil && g.static[*req.InstanceID] != "" {
		known = true // a static member coming back replaces its old self
	}
	if !known && c.cfg.MaxGroupSize > 0 && len(g.members)+len(g.pending) >= c.cfg.MaxGroupSize {
		fail(kerr.GroupMaxSizeReached)
		return
	}
	if g.state != Empty && !g.supports(req.ProtocolType, req.Protocols) {
		fail(kerr.InconsistentGroupProtocol)
		return
	}
	if req.MemberID == "" {
		c.joinUnknown(g, cl, req, respond)
	} else {
		c.joinKnown(g, cl, req, respond)
	}
}

func (c *Coordinator) joinUnknown(g *group, cl Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	prefix := cl.ID
	if req.InstanceID != nil {
		prefix = *req.InstanceID
	}
	id := prefix + "-" + newUUID()
	switch {
	case req.InstanceID != nil && g.static[*req.InstanceID] != "":
		c.replaceStatic(g, g.members[g.static[*req.InstanceID]], id, cl, req, respond)
	case req.InstanceID == nil && cl.Version >= 4:
		// KIP-394: hand out the ID first; the member counts as pending until it rejoins.
		session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
		g.pending[id] = c.after(session, func() {
			delete(g.pending, id)
			c.maybeCompleteJoin(g)
		})
		r := joinError(id, kerr.MemberIDRequired)
		respond(r)
	default:
		c.addMemberAndRebalance(g, id, cl, req, respond)
	}
}

func (c *Coordinator) joinKnown(g *group, cl Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	if t := g.pending[req.MemberID]; t != nil && req.InstanceID == nil {
		t.stop()
		delete(g.pending, req.MemberID)
		c.addMemberAndRebalance(g, req.MemberID, cl, req, respond)
		return
	}
	m, err := g.validateMember(req.MemberID, req.InstanceID)
	if err != nil {
		respond(joinError(req.MemberID, err))
		return
	}
	switch g.state {
	case PreparingRebalance:
		c.updateMemberAndRebalance(g, m, req, respond, "member rejoined")
	case CompletingRebalance:
		if m.matches(req.Protocols) {
			// The member lost its join response: answer again from the current generation.
			respond(c.joinResponse(g, m, g.leader == m.id, false))
			return
		}
		c.updateMemberAndRebalance(g, m, req, respond, "member rejoined with changed protocols while the group completed a rebalance")
	case Stable:
		if g.leader == m.id || !m.matches(req.Protocols) {
			// The leader rejoining forces a rebalance (it may have seen metadata change).
			reason := "leader rejoined"
			if g.leader != m.id {
				reason = "member rejoined with changed protocols"
			}
			c.updateMemberAndRebalance(g, m, req, respond, reason)
			return
		}
		respond(c.joinResponse(g, m, false, false))
	default:
		respond(joinError(req.MemberID, kerr.UnknownMemberID))
	}
}

// validateMember checks a request's member and instance IDs against the group.
func (g *group) validateMember(memberID string, instanceID *string) (*member, *kerr.Error) {
	if instanceID != nil {
		cur := g.static[*instanceID]
		if cur == "" {
			return nil, kerr.UnknownMemberID
		}
		if cur != memberID {
			return nil, kerr.FencedInstanceID
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, kerr.UnknownMemberID
	}
	return m, nil
}

func (c *Coordinator) joinResponse(g *group, m *member, withMembers, skipAssignment bool) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.Generation = g.generation
	pt, pn := g.protocolType, g.protocol
	r.ProtocolType = &pt
	r.Protocol = &pn
	r.LeaderID = g.leader
	r.MemberID = m.id
	r.SkipAssignment = skipAssignment
	if withMembers {
		for _, o := range g.orderedMembers() {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = o.id
			jm.InstanceID = o.instanceID
			jm.ProtocolMetadata = o.metadataFor(g.protocol)
			r.Members = append(r.Members, jm)
		}
	}
	return r
}

func (c *Coordinator) addMemberAndRebalance(g *group, id string, cl Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	c.memberSeq++
	m := &member{
		id:               id,
		instanceID:       req.InstanceID,
		clientID:         cl.ID,
		host:             cl.Host,
		seq:              c.memberSeq,
		sessionTimeout:   time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		rebalanceTimeout: rebalanceTimeout(req),
		protocols:        toProtocols(req.Protocols),
		joinCB:           respond,
		isNew:            true,
	}
	if g.state == PreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	g.addMember(m)
	c.scheduleHeartbeat(g, m)
	c.prepareOrCompleteJoin(g, "new member joined")
}

// rebalanceTimeout: v0 requests have none and use the session timeout.
func rebalanceTimeout(req *kmsg.JoinGroupRequest) time.Duration {
	if req.Version == 0 || req.RebalanceTimeoutMillis <= 0 {
		return time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	}
	return time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
}

func (c *Coordinator) updateMemberAndRebalance(g *group, m *member, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse), reason string) {
	if m.joinCB != nil {
		// A second join while the first still waits: the first is superseded.
		m.joinCB(joinError(m.id, kerr.RebalanceInProgress))
	}
	m.protocols = toProtocols(req.Protocols)
	m.sessionTimeout = time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	m.rebalanceTimeout = rebalanceTimeout(req)
	m.joinCB = respond
	c.prepareOrCompleteJoin(g, reason)
}

// replaceStatic swaps a static member's old member ID for a new one (KIP-345): in a Stable
// group whose selected protocol does not change, no rebalance happens.
func (c *Coordinator) replaceStatic(g *group, old *member, newID string, cl Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	if old.joinCB != nil {
		old.joinCB(joinError(old.id, kerr.FencedInstanceID))
		old.joinCB = nil
	}
	if old.syncCB != nil {
		old.syncCB(syncError(kerr.FencedInstanceID))
		old.syncCB = nil
	}
	old.hb.stop()
	delete(g.members, old.id)
	if g.pendSync[old.id] {
		delete(g.pendSync, old.id)
		g.pendSync[newID] = true
	}
	prevLeader := g.leader
	oldID := old.id
	wasLeader := prevLeader == oldID
	m := old
	m.id = newID
	// As Kafka, the member keeps the client ID and host it first joined with: DescribeGroups
	// shows the first incarnation's, whatever the restarted one sends.
	g.members[newID] = m
	g.static[*req.InstanceID] = newID
	if wasLeader {
		g.leader = newID
	}
	c.scheduleHeartbeat(g, m)
	oldProtocols, oldSession, oldRebalance := m.protocols, m.sessionTimeout, m.rebalanceTimeout
	m.protocols = toProtocols(req.Protocols)
	m.sessionTimeout = time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	m.rebalanceTimeout = rebalanceTimeout(req)

	switch g.state {
	case Stable:
		if g.selectProtocol() != g.protocol {
			m.joinCB = respond
			c.prepareRebalance(g, "static member rejoined and the selected protocol changes")
			return
		}
		// Same protocol: keep the generation. Persist the new member ID, then answer.
		c.persist(encodeGroup(g), func(err error) {
			if err != nil {
				// As Kafka: the old member ID is put back (unless something replaced it
				// meanwhile) and the joiner is told the join failed, with no member ID.
				if g.members[newID] == m && g.static[*req.InstanceID] == newID {
					m.protocols, m.sessionTimeout, m.rebalanceTimeout = oldProtocols, oldSession, oldRebalance
					delete(g.members, newID)
					m.id = oldID
					g.members[oldID] = m
					g.static[*req.InstanceID] = oldID
					if g.leader == newID {
						g.leader = oldID
					}
					if g.pendSync[newID] {
						delete(g.pendSync, newID)
						g.pendSync[oldID] = true
					}
					c.scheduleHeartbeat(g, m)
				}
				r := joinError("", errLogWrite)
				r.Generation = g.generation
				pt, pn := g.protocolType, g.protocol
				r.ProtocolType, r.Protocol = &pt, &pn
				r.LeaderID = prevLeader
				respond(r)
				return
			}
			if cl.Version >= 9 {
				// KIP-814: the leader gets the members but is told to skip assignment.
				isLeader := g.leader == newID
				respond(c.joinResponse(g, m, isLeader, isLeader))
				return
			}
			// Older clients cannot be told to skip assignment. As Kafka, answer with the
			// leader ID from before the replacement and no members: a returning leader
			// then acts as a follower and keeps the current assignment, instead of
			// assigning (a stable group would ignore it) and rejoining once its metadata
			// differs from what it assigned with, which would start a needless rebalance.
			r := c.joinResponse(g, m, false, false)
			r.LeaderID = prevLeader
			respond(r)
		})
	case CompletingRebalance:
		// The leader may already be assigning for the old member ID: rebalance again.
		m.joinCB = respond
		c.prepareRebalance(g, "static member rejoined while the group completed a rebalance")
	default: // PreparingRebalance: wait for the join phase to complete
		m.joinCB = respond
		c.maybeCompleteJoin(g)
	}
}

func (c *Coordinator) prepareOrCompleteJoin(g *group, reason string) {
	if g.state == PreparingRebalance {
		c.maybeCompleteJoin(g)
		return
	}
	c.prepareRebalance(g, reason)
}

// prepareRebalance starts a new join phase.
func (c *Coordinator) prepareRebalance(g *group, reason string) {
	c.log.Debug("preparing rebalance", "group", g.id, "from", g.state.String(), "generation", g.generation, "reason", reason)
	if g.state == CompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.syncCB != nil {
				m.syncCB(syncError(kerr.RebalanceInProgress))
				m.syncCB = nil
			}
		}
	}
	g.syncTimer.stop()
	g.joinTimer.stop()
	g.pendSync = map[string]bool{}
	initial := g.state == Empty
	g.transition(PreparingRebalance, c.clock.Now())
	timeout := g.rebalanceTimeout()
	if initial && c.cfg.InitialRebalanceDelay > 0 {
		g.initialDelay = true
		g.newMemberAdded = false
		g.initialEnd = c.clock.Now().Add(timeout)
		c.scheduleInitialDelay(g, min(c.cfg.InitialRebalanceDelay, timeout))
		return
	}
	g.joinTimer = c.after(timeout, func() { c.completeJoin(g) })
	c.maybeCompleteJoin(g)
}

func (c *Coordinator) scheduleInitialDelay(g *group, d time.Duration) {
	g.joinTimer = c.after(d, func() {
		remaining := g.initialEnd.Sub(c.clock.Now())
		if g.newMemberAdded && remaining > 0 {
			g.newMemberAdded = false
			c.scheduleInitialDelay(g, min(c.cfg.InitialRebalanceDelay, remaining))
			return
		}
		g.initialDelay = false
		c.completeJoin(g)
	})
}

func (c *Coordinator) maybeCompleteJoin(g *group) {
	if g.state == PreparingRebalance && !g.initialDelay && g.allJoined() {
		c.completeJoin(g)
	}
}

// completeJoin ends the join phase: members that did not rejoin are dropped, a new
// generation starts and every joined member gets its response (the leader with the members).
func (c *Coordinator) completeJoin(g *group) {
	if g.state != PreparingRebalance {
		return
	}
	g.joinTimer.stop()
	g.initialDelay = false
	for _, m := range g.orderedMembers() {
		if m.joinCB == nil && !m.static() {
			g.removeMember(m)
		}
	}
	now := c.clock.Now()
	if len(g.members) == 0 {
		g.generation++
		g.protocol = ""
		g.subscribed = map[string]bool{}
		g.transition(Empty, now)
		c.persist(encodeGroup(g), nil)
		return
	}
	if !g.electJoinedLeader() {
		// Nobody rejoined yet (only static members remain): wait another rebalance timeout.
		g.joinTimer = c.after(g.rebalanceTimeout(), func() { c.completeJoin(g) })
		return
	}
	g.generation++
	g.protocol = g.selectProtocol()
	g.computeSubscribed()
	g.transition(CompletingRebalance, now)
	c.log.Debug("join phase complete", "group", g.id, "generation", g.generation, "protocol", g.protocol, "leader", g.leader, "members", len(g.members))
	g.pendSync = map[string]bool{}
	for _, m := range g.orderedMembers() {
		g.pendSync[m.id] = true
		if m.joinCB == nil {
			continue
		}
		cb := m.joinCB
		m.joinCB = nil
		m.isNew = false
		cb(c.joinResponse(g, m, m.id == g.leader, false))
		c.scheduleHeartbeat(g, m)
	}
	gen := g.generation
	g.syncTimer = c.after(g.rebalanceTimeout(), func() { c.expirePendingSync(g, gen) })
}

// expirePendingSync removes members that never sent SyncGroup for this generation.
func (c *Coordinator) expirePendingSync(g *group, gen int32) {
	if g.generation != gen || (g.state != CompletingRebalance && g.state != Stable) || len(g.pendSync) == 0 {
		return
	}
	for id := range g.pendSync {
		if m := g.members[id]; m != nil {
			c.log.Info("removing member that did not sync", "group", g.id, "member", id)
			if m.syncCB != nil {
				m.syncCB(syncError(kerr.UnknownMemberID))
				m.syncCB = nil
			}
			g.removeMember(m)
		}
	}
	g.pendSync = map[string]bool{}
	c.prepareRebalance(g, "members did not sync")
}

// scheduleHeartbeat (re)starts m's session timer.
func (c *Coordinator) scheduleHeartbeat(g *group, m *member) {
	m.hb.stop()
	m.hb = c.after(m.sessionTimeout, func() { c.expireMember(g, m) })
}

func (c *Coordinator) expireMember(g *group, m *member) {
	if g.members[m.id] != m {
		return
	}
	if m.joinCB != nil || m.syncCB != nil {
		// Waiting on us, not on the member: the rebalance and sync timers cover it.
		return
	}
	c.log.Info("member session expired", "group", g.id, "member", m.id)
	c.removeAndUpdate(g, m, "member session expired")
}

// removeAndUpdate removes a member and moves the group on.
func (c *Coordinator) removeAndUpdate(g *group, m *member, reason string) {
	if m.joinCB != nil {
		m.joinCB(joinError(m.id, kerr.UnknownMemberID))
		m.joinCB = nil
	}
	if m.syncCB != nil {
		m.syncCB(syncError(kerr.UnknownMemberID))
		m.syncCB = nil
	}
	g.removeMember(m)
	c.afterMembersLeft(g, reason)
}

func (c *Coordinator) afterMembersLeft(g *group, reason string) {
	switch g.state {
	case Stable, CompletingRebalance:
		c.prepareRebalance(g, reason)
	case PreparingRebalance:
		c.maybeCompleteJoin(g)
	}
}
