package group

// Classic members in consumer groups: KIP-848's online upgrade and downgrade, as Kafka 4.0
// does them with its default group.consumer.migration.policy=bidirectional.
//
//	classic group with members --ConsumerGroupHeartbeat join--> consumer group
//	    (upgrade: every classic member becomes a consumer group member at the classic
//	    generation, keeping its last assignment as its target; the joiner then bumps the
//	    group epoch, so the classic members are told to rejoin. Refused, GROUP_ID_NOT_FOUND,
//	    for another protocol type, a group over group.consumer.max.size, metadata that does
//	    not decode, or an assignment carrying the client assignor's user data, which the
//	    server-side assignor would lose)
//	consumer group --its last consumer-protocol member leaves, is fenced or removed by
//	    LeaveGroup--> classic group
//	    (downgrade: the classic members keep the target assignment at the group epoch and a
//	    rebalance starts; when a classic static member replaced the last consumer-protocol
//	    one, with no rebalance)
//
// A static member switching protocols replaces its other-protocol self at once (a classic
// member never announces that it left). While the group is a consumer group, its classic
// members speak JoinGroup / SyncGroup / Heartbeat / LeaveGroup and the server-side assignor
// decides for them:
//
//	JoinGroup  the member's subscription (and owned partitions) from its first protocol's
//	           metadata update it as a ConsumerGroupHeartbeat would; the answer carries the
//	           member epoch as generation, no leader and no members (so the client syncs as
//	           a follower)
//	SyncGroup  answers the member's current assignment (what it may own now), or
//	           REBALANCE_IN_PROGRESS when the group epoch moved past the member epoch
//	Heartbeat  REBALANCE_IN_PROGRESS whenever the member has to rejoin to make progress: a
//	           newer group epoch, partitions to revoke, or awaited partitions now free
//
// A classic member that is told to rejoin gets its rebalance timeout to do so, and one that
// joined its rebalance timeout to sync, or it is removed from the group (Kafka's join and
// sync timeouts).

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// classicMeta is what a consumer group keeps of a member that uses the classic protocol.
type classicMeta struct {
	session   time.Duration
	protocols []protocol // as the member last listed them in JoinGroup

	joinT *loopTimer // deadline to rejoin after being told REBALANCE_IN_PROGRESS
	syncT *loopTimer // deadline to sync after a join
}

func (m *cmember) stopClassicTimers() {
	if m.classic != nil {
		m.classic.joinT.stop()
		m.classic.syncT.stop()
		m.classic.joinT, m.classic.syncT = nil, nil
	}
}

// protocolName is the protocol a classic member is answered with: its first one, as Kafka.
func (m *cmember) protocolName() string { return m.classic.protocols[0].name }

// mayUpgrade: group.consumer.migration.policy and group.consumer.max.size allow a classic
// group of n members to become a consumer group.
func (c *Coordinator) mayUpgrade(n int) bool {
	p := c.cfg.MigrationPolicy
	return (p == "bidirectional" || p == "upgrade") && (c.cfg.ConsumerMaxGroupSize <= 0 || n <= c.cfg.ConsumerMaxGroupSize)
}

// mayDowngrade: group.consumer.migration.policy and group.max.size allow a consumer group
// left with n classic members to become a classic group.
func (c *Coordinator) mayDowngrade(n int) bool {
	p := c.cfg.MigrationPolicy
	return (p == "bidirectional" || p == "downgrade") && (c.cfg.MaxGroupSize <= 0 || n <= c.cfg.MaxGroupSize)
}

// classicMembers counts the members that use the classic protocol.
func (cg *cgroup) classicMembers() int {
	n := 0
	for _, m := range cg.members {
		if m.classic != nil {
			n++
		}
	}
	return n
}

// supportsClassic reports whether a classic member with these protocols may join: protocol
// type "consumer" and a protocol that every classic member already in the group supports.
func (cg *cgroup) supportsClassic(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if protocolType != "consumer" || len(ps) == 0 {
		return false
	}
	for _, p := range ps {
		all := true
		for _, m := range cg.members {
			if m.classic == nil {
				continue
			}
			found := false
			for _, mp := range m.classic.protocols {
				found = found || mp.name == p.Name
			}
			all = all && found
		}
		if all {
			return true
		}
	}
	return false
}

// knownTopics keeps the partitions of a whose topics exist (Kafka resolves them to topic IDs
// and drops the others).
func (c *Coordinator) knownTopics(a assignment) assignment {
	for t := range a {
		if _, ok := c.topicInfo(t); !ok {
			delete(a, t)
		}
	}
	return a
}

// errAssignorUserData: a classic assignment carries user data of the client's assignor.
var errAssignorUserData = errors.New("userData from a custom assignor would be lost")

// decodeClassicAssignment reads a classic assignment (empty bytes: no partitions). An
// assignment with user data is refused with errAssignorUserData: the server-side assignor
// would drop it (Kafka 4.0 refuses such an upgrade the same way).
func decodeClassicAssignment(b []byte) (assignment, error) {
	a := assignment{}
	if len(b) == 0 {
		return a, nil
	}
	var ca kmsg.ConsumerMemberAssignment
	if err := ca.ReadFrom(b); err != nil {
		return nil, err
	}
	if len(ca.UserData) > 0 {
		return nil, errAssignorUserData
	}
	for _, t := range ca.Topics {
		for _, p := range t.Partitions {
			if !a.has(t.Topic, p) {
				a.add(t.Topic, p)
			}
		}
	}
	return a, nil
}

// encodeClassicAssignment writes a as a classic assignment in the version of the member's
// subscription metadata (as Kafka serializes it for the member's protocol version).
func encodeClassicAssignment(a assignment, metadata []byte) []byte {
	var md kmsg.ConsumerMemberMetadata
	ca := kmsg.NewConsumerMemberAssignment()
	if md.ReadFrom(metadata) == nil {
		ca.Version = min(md.Version, 3)
	}
	for _, t := range a.topics() {
		ca.Topics = append(ca.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: t, Partitions: append([]int32(nil), a[t]...)})
	}
	return ca.AppendTo(nil)
}

// convertToConsumer turns classic group g into a consumer group (online upgrade). It
// returns the GROUP_ID_NOT_FOUND message when the group cannot be converted. An empty
// classic group always converts (only its offsets stay).
func (c *Coordinator) convertToConsumer(g *group) string {
	notConsumer := "Group " + g.id + " is not a consumer group."
	if len(g.members) > 0 {
		if g.protocolType != "consumer" {
			return notConsumer
		}
		if !c.mayUpgrade(len(g.members)) {
			return notConsumer
		}
	}
	malformed := "Cannot upgrade the classic group " + g.id + " to consumer group because the embedded consumer protocol is malformed."
	cg := newCgroup()
	cg.epoch, cg.assignEpoch = g.generation, g.generation
	for _, m := range g.orderedMembers() {
		meta := m.metadataFor(g.protocol)
		if g.protocol == "" && len(m.protocols) > 0 {
			meta = m.protocols[0].metadata
		}
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(meta); err != nil {
			return malformed
		}
		a, err := decodeClassicAssignment(m.assignment)
		if errors.Is(err, errAssignorUserData) {
			c.log.Warn("cannot upgrade a classic group to a consumer group: user data of the client's assignor would be lost", "group", g.id, "member", m.id)
			return "Cannot upgrade classic group " + g.id + " to consumer group because an unsupported custom assignor is in use. Please refer to the documentation or switch to a default assignor before re-attempting the upgrade."
		}
		if err != nil {
			return malformed
		}
		a = c.knownTopics(a)
		cm := &cmember{id: m.id, instanceID: m.instanceID, clientID: m.clientID, host: m.host, seq: m.seq,
			epoch: g.generation, prevEpoch: g.generation, rebalance: m.rebalanceTimeout,
			names: sortedSet(md.Topics), assigned: a, revoking: assignment{},
			classic: &classicMeta{session: m.sessionTimeout, protocols: m.protocols}}
		if md.Rack != nil && *md.Rack != "" {
			cm.rackID = md.Rack
		}
		cm.subscribed = cm.names
		cg.members[cm.id] = cm
		if cm.instanceID != nil {
			cg.static[*cm.instanceID] = cm.id
		}
		cg.target[cm.id] = a.clone()
		cg.setOwned(cm, nil, nil)
	}
	// The classic group's waiters learn of the new rebalance; its timers end.
	for _, m := range g.members {
		if m.joinCB != nil {
			m.joinCB(joinError(m.id, kerr.RebalanceInProgress))
			m.joinCB = nil
		}
		if m.syncCB != nil {
			m.syncCB(syncError(kerr.RebalanceInProgress))
			m.syncCB = nil
		}
		m.hb.stop()
	}
	g.joinTimer.stop()
	g.syncTimer.stop()
	for _, t := range g.pending {
		t.stop()
	}
	c.refreshPartitions(cg)
	offsets := g.offsets
	*g = *newGroup(g.id, c.clock.Now())
	g.offsets = offsets
	g.protocolType = "consumer"
	g.cg = cg
	for _, m := range cg.members {
		c.scheduleConsumerSession(g, m)
	}
	c.log.Info("classic group converted to a consumer group", "group", g.id, "members", len(cg.members), "epoch", cg.epoch)
	return ""
}

// maybeDowngrade converts g back to a classic group when leaving, its last member using the
// consumer protocol, goes and classic members remain (Kafka's online downgrade); then runs
// once the classic group record is durable.
func (c *Coordinator) maybeDowngrade(g *group, leaving *cmember, then func(error)) bool {
	cg := g.cg
	if leaving.classic != nil || len(cg.members) <= 1 || cg.classicMembers() != len(cg.members)-1 {
		return false
	}
	if !c.mayDowngrade(len(cg.members) - 1) {
		return false
	}
	c.downgrade(g, map[*cmember]bool{leaving: true}, true, then)
	return true
}

// downgrade turns consumer group g, without the leaving members, into a classic group at the
// group epoch: the remaining (classic) members keep their target assignment and, when members
// left, a rebalance starts (not when a classic static member just replaced a consumer one).
func (c *Coordinator) downgrade(g *group, leaving map[*cmember]bool, rebalance bool, then func(error)) {
	cg := g.cg
	now := c.clock.Now()
	ng := newGroup(g.id, now)
	ng.offsets = g.offsets
	ng.protocolType = "consumer"
	ng.generation = cg.epoch
	ng.state = Stable
	for _, m := range cg.ordered() {
		m.hb.stop()
		m.rb.stop()
		m.stopClassicTimers()
		if leaving[m] {
			continue
		}
		ng.addMember(&member{id: m.id, instanceID: m.instanceID, clientID: m.clientID, host: m.host, seq: m.seq,
			sessionTimeout: m.classic.session, rebalanceTimeout: m.rebalance, protocols: m.classic.protocols})
	}
	ng.protocol = ng.selectProtocol()
	ng.computeSubscribed()
	for _, m := range ng.members {
		m.assignment = encodeClassicAssignment(cg.target[m.id], m.metadataFor(ng.protocol))
	}
	*g = *ng
	c.log.Info("consumer group converted to a classic group", "group", g.id, "members", len(g.members), "generation", g.generation)
	c.persist(encodeGroup(g), then)
	for _, m := range g.members {
		c.scheduleHeartbeat(g, m)
	}
	if rebalance {
		c.prepareRebalance(g, "Downgrade group "+g.id+" from consumer to classic.")
	}
}

// classicJoinToConsumer handles JoinGroup from a classic member of consumer group g (which
// has members).
func (c *Coordinator) classicJoinToConsumer(g *group, cl Client, req *kmsg.JoinGroupRequest, respond func(*kmsg.JoinGroupResponse)) {
	cg := g.cg
	// As Kafka, a refused join is answered without a member ID.
	fail := func(err *kerr.Error) { respond(joinError("", err)) }
	id := req.MemberID
	unknown := id == ""
	if unknown {
		id = newUUID()
	}
	if c.cfg.ConsumerMaxGroupSize > 0 && len(cg.members) >= c.cfg.ConsumerMaxGroupSize && cg.members[id] == nil {
		fail(kerr.GroupMaxSizeReached)
		return
	}
	if !cg.supportsClassic(req.ProtocolType, req.Protocols) {
		fail(kerr.InconsistentGroupProtocol)
		return
	}
	if unknown && req.InstanceID == nil && cl.Version >= 4 {
		// KIP-394: the member rejoins with this ID (nothing is kept for it meanwhile).
		respond(joinError(id, kerr.MemberIDRequired))
		return
	}
	var md kmsg.ConsumerMemberMetadata
	if err := md.ReadFrom(req.Protocols[0].Metadata); err != nil {
		// Kafka 4.0 fails such a join with an internal error (its deserializer throws an
		// IllegalStateException), which clients see as UNKNOWN_SERVER_ERROR; answered the
		// same, and logged with the reason.
		c.log.Info("classic join to a consumer group with undecodable subscription metadata", "group", g.id, "member", req.MemberID, "err", err)
		fail(kerr.UnknownServerError)
		return
	}

	m := cg.members[id]
	replacedConsumer := false // a consumer-protocol static member replaced by this classic one
	if req.InstanceID != nil {
		cur, ok := cg.static[*req.InstanceID]
		switch {
		case ok && unknown:
			// The static member restarted: its new member ID takes its place and assignment.
			replacedConsumer = cg.members[cur].classic == nil
			m = c.replaceStaticMember(g, cg.members[cur], id)
			m.epoch, m.prevEpoch = 0, 0
		case ok && cur != id:
			fail(kerr.FencedInstanceID)
			return
		case !ok && !unknown:
			fail(kerr.UnknownMemberID)
			return
		}
	}
	bump := false
	if m == nil {
		c.memberSeq++
		m = &cmember{id: id, seq: c.memberSeq, instanceID: req.InstanceID, assigned: assignment{}, revoking: assignment{}}
		cg.members[id] = m
		if m.instanceID != nil {
			cg.static[*m.instanceID] = id
		}
		bump = true
	}
	m.clientID, m.host = cl.ID, cl.Host
	if md.Rack != nil && *md.Rack != "" {
		m.rackID = md.Rack
	}
	m.rebalance = rebalanceTimeout(req)
	m.names, m.regex = sortedSet(md.Topics), nil
	if m.classic == nil {
		m.classic = &classicMeta{}
	}
	m.classic.session = time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	m.classic.protocols = toProtocols(req.Protocols)
	if subs := cg.memberSubs(m); !equalStrings(subs, m.subscribed) {
		m.subscribed = subs
		bump = true
	}
	if c.refreshPartitions(cg) {
		bump = true
	}
	if bump {
		cg.epoch++
	}
	if cg.epoch != cg.assignEpoch {
		c.computeTarget(g)
	}
	owned := assignment{}
	for _, t := range md.OwnedPartitions {
		for _, p := range t.Partitions {
			if !owned.has(t.Topic, p) {
				owned.add(t.Topic, p)
			}
		}
	}
	// A classic member has no revocation timer: its join and sync timers bound it.
	cg.reconcile(m, c.knownTopics(owned))
	m.rb.stop()
	m.rb = nil
	m.classic.joinT.stop()
	m.classic.joinT = nil

	r := kmsg.NewPtrJoinGroupResponse()
	r.MemberID = m.id
	r.Generation = m.epoch
	pt, pn := "consumer", m.protocolName()
	r.ProtocolType, r.Protocol = &pt, &pn
	c.log.Debug("classic member joined a consumer group", "group", g.id, "member", m.id, "epoch", m.epoch, "state", m.state.String(), "assigned", m.assigned.count())
	if replacedConsumer && cg.classicMembers() == len(cg.members) && c.mayDowngrade(len(cg.members)) {
		// The last consumer-protocol member was a static one that came back with the classic
		// protocol (a rollback): the group is classic again, with no rebalance, the joiner
		// holding the assignment of the member it replaced (Kafka's online downgrade).
		c.downgrade(g, nil, false, func(err error) {
			if err != nil {
				fail(errLogWrite)
				return
			}
			respond(r)
		})
		return
	}
	c.persistConsumer(g, func(err error) {
		if err != nil {
			fail(errLogWrite)
			return
		}
		if cg.members[m.id] != m {
			fail(kerr.UnknownMemberID)
			return
		}
		c.scheduleConsumerSession(g, m)
		m.classic.syncT.stop()
		m.classic.syncT = c.after(m.rebalance, func() {
			if g.cg == cg && cg.members[m.id] == m {
				c.log.Info("classic member did not sync in time", "group", g.id, "member", m.id)
				c.removeConsumerMember(g, m, nil)
			}
		})
		respond(r)
	})
}

// classicMember finds the classic member a SyncGroup / Heartbeat names, with the errors
// Kafka gives.
func (cg *cgroup) classicMember(memberID string, instanceID *string) (*cmember, *kerr.Error) {
	var m *cmember
	if instanceID != nil {
		m = cg.members[cg.static[*instanceID]]
		if m == nil {
			return nil, kerr.UnknownMemberID
		}
		if m.id != memberID {
			return nil, kerr.FencedInstanceID
		}
	} else if m = cg.members[memberID]; m == nil {
		return nil, kerr.UnknownMemberID
	}
	if m.classic == nil {
		return nil, kerr.UnknownMemberID // a consumer-protocol member
	}
	return m, nil
}

// mustRejoin: the member has to rejoin to make progress.
func (cg *cgroup) mustRejoin(m *cmember) bool {
	switch {
	case m.epoch < cg.epoch, m.state == msUnrevoked:
		return true
	case m.state == msUnreleased:
		for t, ps := range cg.target[m.id] {
			for _, p := range ps {
				if o, ok := cg.ownerOf[tp{t, p}]; ok && o != m.id {
					return false // still waiting on a partition another member holds
				}
			}
		}
		return true
	}
	return false
}

// scheduleClassicJoin starts, unless running, the deadline of a member told to rejoin.
func (c *Coordinator) scheduleClassicJoin(g *group, m *cmember) {
	if m.classic.joinT != nil {
		return
	}
	cg := g.cg
	m.classic.joinT = c.after(m.rebalance, func() {
		if g.cg == cg && cg.members[m.id] == m {
			c.log.Info("classic member did not rejoin in time", "group", g.id, "member", m.id)
			c.removeConsumerMember(g, m, nil)
		}
	})
}

// classicSyncToConsumer handles SyncGroup from a classic member of consumer group g.
func (c *Coordinator) classicSyncToConsumer(g *group, req *kmsg.SyncGroupRequest, respond func(*kmsg.SyncGroupResponse)) {
	cg := g.cg
	if len(cg.members) == 0 {
		respond(syncError(kerr.UnknownMemberID))
		return
	}
	m, err := cg.classicMember(req.MemberID, req.InstanceID)
	switch {
	case err != nil:
	case req.Generation != m.epoch:
		err = kerr.IllegalGeneration
	case req.ProtocolType != nil && *req.ProtocolType != "consumer",
		req.Protocol != nil && *req.Protocol != m.protocolName():
		err = kerr.InconsistentGroupProtocol
	case cg.epoch > m.epoch && m.state != msUnrevoked:
		// A newer rebalance started: rejoin first (a member revoking partitions has
		// rejoined already and gets what it keeps).
		c.scheduleClassicJoin(g, m)
		err = kerr.RebalanceInProgress
	}
	if err != nil {
		respond(syncError(err))
		return
	}
	m.classic.syncT.stop()
	m.classic.syncT = nil
	c.scheduleConsumerSession(g, m)
	r := kmsg.NewPtrSyncGroupResponse()
	pt, pn := "consumer", m.protocolName()
	r.ProtocolType, r.Protocol = &pt, &pn
	r.MemberAssignment = encodeClassicAssignment(m.assigned, m.classic.protocols[0].metadata)
	respond(r)
}

// classicHeartbeatToConsumer handles Heartbeat from a classic member of consumer group g.
func (c *Coordinator) classicHeartbeatToConsumer(g *group, req *kmsg.HeartbeatRequest) int16 {
	cg := g.cg
	m, err := cg.classicMember(req.MemberID, req.InstanceID)
	if err != nil {
		return err.Code
	}
	if req.Generation != m.epoch {
		return kerr.IllegalGeneration.Code
	}
	c.scheduleConsumerSession(g, m)
	if cg.mustRejoin(m) {
		c.scheduleClassicJoin(g, m)
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// classicLeaveFromConsumer removes the members of consumer group g that a LeaveGroup names.
// As Kafka 4.0 (KAFKA-18188, for the admin client's removal of members) any member, of either
// protocol, may be named; the answer echoes the member ID as the request gave it. When only
// classic members remain, the group becomes a classic group (KAFKA-18150).
func (c *Coordinator) classicLeaveFromConsumer(g *group, members []kmsg.LeaveGroupRequestMember, r *kmsg.LeaveGroupResponse) {
	cg := g.cg
	leaving := map[*cmember]bool{}
	for _, lm := range members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		var m *cmember
		if lm.InstanceID != nil {
			m = cg.members[cg.static[*lm.InstanceID]]
			switch {
			case m == nil:
				rm.ErrorCode = kerr.UnknownMemberID.Code
			case lm.MemberID != "" && lm.MemberID != m.id:
				rm.ErrorCode = kerr.FencedInstanceID.Code
			}
		} else if m = cg.members[lm.MemberID]; m == nil {
			rm.ErrorCode = kerr.UnknownMemberID.Code
		}
		if rm.ErrorCode == 0 {
			c.log.Debug("member left a consumer group through LeaveGroup", "group", g.id, "member", m.id, "classic", m.classic != nil)
			leaving[m] = true
		}
		r.Members = append(r.Members, rm)
	}
	if len(leaving) == 0 {
		return
	}
	remaining, classic := 0, 0
	for _, m := range cg.members {
		if !leaving[m] {
			remaining++
			if m.classic != nil {
				classic++
			}
		}
	}
	if remaining > 0 && classic == remaining && c.mayDowngrade(remaining) {
		c.downgrade(g, leaving, true, nil)
		return
	}
	for m := range leaving {
		cg.removeMember(m)
	}
	cg.epoch++
	c.refreshPartitions(cg)
	c.persistConsumer(g, nil)
}
