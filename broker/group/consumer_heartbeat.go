package group

// ConsumerGroupHeartbeat (KIP-848), following Kafka 4.0's GroupMetadataManager: validate,
// join / leave / fence, update the member's subscription, bump the group epoch and compute a
// new target assignment when what the assignor sees changed, reconcile the member, persist
// the group, answer once durable.

import (
	"bytes"
	"regexp"
	"regexp/syntax"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Epochs with a meaning in requests (Kafka's ConsumerGroupHeartbeatRequest constants).
const (
	joinEpoch        = 0
	leaveEpoch       = -1
	leaveStaticEpoch = -2
)

// TopicInfo is what the coordinator needs to know of a topic.
type TopicInfo struct {
	ID         [16]byte
	Partitions int32
}

func cghbError(err *kerr.Error, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
	r := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	r.ErrorCode = err.Code
	if msg != "" {
		r.ErrorMessage = &msg
	}
	return r
}

// ConsumerGroupHeartbeat handles ConsumerGroupHeartbeat (key 68).
func (c *Coordinator) ConsumerGroupHeartbeat(cl Client, req *kmsg.ConsumerGroupHeartbeatRequest, respond func(*kmsg.ConsumerGroupHeartbeatResponse)) {
	if !c.post(func() {
		c.consumerHeartbeat(cl, req, func(r *kmsg.ConsumerGroupHeartbeatResponse) {
			c.log.Debug("consumer group heartbeat", "group", req.Group, "member", req.MemberID, "epoch", req.MemberEpoch, "err", r.ErrorCode, "answer_epoch", r.MemberEpoch)
			c.reply(func() { respond(r) })
		})
	}) {
		respond(cghbError(kerr.CoordinatorNotAvailable, ""))
	}
}

// validateHeartbeat applies Kafka's request checks (INVALID_REQUEST with its messages).
func validateHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) string {
	switch {
	case req.Group == "":
		return "GroupId can't be empty."
	case req.InstanceID != nil && *req.InstanceID == "":
		return "InstanceId can't be empty."
	case req.RackID != nil && *req.RackID == "":
		return "RackId can't be empty."
	case req.Version >= 1 && req.MemberID == "":
		return "MemberId can't be empty."
	}
	switch {
	case req.MemberEpoch == joinEpoch:
		switch {
		case req.RebalanceTimeoutMillis == -1:
			return "RebalanceTimeoutMs must be provided in first request."
		case len(req.Topics) > 0 || req.Topics == nil:
			return "TopicPartitions must be empty when (re-)joining."
		case req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
			return "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining."
		}
	case req.MemberEpoch == leaveStaticEpoch:
		if req.InstanceID == nil {
			return "InstanceId can't be null."
		}
	case req.MemberEpoch < leaveStaticEpoch:
		return "MemberEpoch is invalid."
	}
	if req.MemberEpoch != joinEpoch && req.MemberID == "" {
		return "MemberId can't be empty."
	}
	return ""
}

func (c *Coordinator) consumerHeartbeat(cl Client, req *kmsg.ConsumerGroupHeartbeatRequest, respond func(*kmsg.ConsumerGroupHeartbeatResponse)) {
	if msg := validateHeartbeat(req); msg != "" {
		respond(cghbError(kerr.InvalidRequest, msg))
		return
	}
	if req.ServerAssignor != nil && !knownAssignor(*req.ServerAssignor) {
		respond(cghbError(kerr.UnsupportedAssignor, "ServerAssignor "+*req.ServerAssignor+" is not supported. Supported assignors: uniform, range."))
		return
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		if _, err := regexp.Compile("^(?:" + *req.SubscribedTopicRegex + ")$"); err != nil {
			why := err.Error()
			if se, ok := err.(*syntax.Error); ok {
				why = string(se.Code)
			}
			respond(cghbError(kerr.InvalidRegularExpression, "SubscribedTopicRegex `"+*req.SubscribedTopicRegex+"` is not a valid regular expression: "+why+"."))
			return
		}
	}
	g := c.groups[req.Group]
	switch {
	case g == nil && req.MemberEpoch != joinEpoch:
		respond(cghbError(kerr.GroupIDNotFound, "Consumer group "+req.Group+" not found."))
		return
	case g == nil:
		g = newGroup(req.Group, c.clock.Now())
		g.protocolType = "consumer"
		g.cg = newCgroup()
		c.groups[req.Group] = g
	case g.cg == nil:
		// A classic group: an empty one becomes a consumer group (keeping its offsets), and
		// so does one whose members all use the consumer embedded protocol (Kafka 4.0's
		// online upgrade, consumer_classic.go). Members still due back after
		// MEMBER_ID_REQUIRED are forgotten.
		if req.MemberEpoch != joinEpoch {
			respond(cghbError(kerr.GroupIDNotFound, "Group "+req.Group+" is not a consumer group."))
			return
		}
		if msg := c.convertToConsumer(g); msg != "" {
			respond(cghbError(kerr.GroupIDNotFound, msg))
			return
		}
		c.persistConsumer(g, nil)
	}
	cg := g.cg

	if req.MemberEpoch == leaveEpoch || req.MemberEpoch == leaveStaticEpoch {
		c.consumerLeave(g, req, respond)
		return
	}

	m := cg.members[req.MemberID]
	bump, replaced := false, false
	var owned assignment // what the member reports owning; nil when not reported
	if req.Topics != nil {
		owned = c.ownedFromRequest(req.Topics)
	}
	if req.MemberEpoch == joinEpoch {
		if req.InstanceID != nil {
			if oldID, ok := cg.static[*req.InstanceID]; ok && oldID != req.MemberID {
				old := cg.members[oldID]
				if old.epoch != leaveStaticEpoch && old.classic == nil {
					respond(cghbError(kerr.UnreleasedInstanceID, "Static member "+req.MemberID+" with instance id "+*req.InstanceID+" cannot join the group because the instance id is owned by "+oldID+" member."))
					return
				}
				// A static member that left (epoch -2) hands over its place; so does a
				// classic one, which leaves no word (a static member restarted with the
				// consumer protocol: Kafka replaces it at once).
				m = c.replaceStaticMember(g, old, req.MemberID)
				if m.classic != nil {
					m.classic = nil
					m.epoch, m.prevEpoch = 0, 0
				}
				replaced = true
			}
		}
		switch {
		case m == nil:
			id := req.MemberID
			if id == "" {
				id = newUUID()
			}
			if c.cfg.ConsumerMaxGroupSize > 0 && len(cg.members) >= c.cfg.ConsumerMaxGroupSize {
				respond(cghbError(kerr.GroupMaxSizeReached, "The consumer group has reached its maximum capacity of "+itoa(c.cfg.ConsumerMaxGroupSize)+" members."))
				return
			}
			c.memberSeq++
			m = &cmember{id: id, seq: c.memberSeq, instanceID: req.InstanceID, clientID: cl.ID, host: cl.Host,
				assigned: assignment{}, revoking: assignment{}}
			cg.members[id] = m
			if m.instanceID != nil {
				cg.static[*m.instanceID] = id
			}
			bump = true
		case !replaced && (m.epoch != 0 || !m.assigned.empty()):
			// A member rejoining (it lost its state): it owns nothing now.
			old, oldRev := m.assigned, m.revoking
			m.assigned, m.revoking, m.epoch, m.prevEpoch, m.state = assignment{}, assignment{}, 0, 0, msStable
			cg.setOwned(m, old, oldRev)
		}
	} else {
		if m == nil {
			respond(cghbError(kerr.UnknownMemberID, "Member "+req.MemberID+" is not a member of group "+req.Group+"."))
			return
		}
		if req.InstanceID != nil {
			switch cur, ok := cg.static[*req.InstanceID]; {
			case !ok:
				respond(cghbError(kerr.UnknownMemberID, "Instance id "+*req.InstanceID+" is unknown."))
				return
			case cur != m.id:
				respond(cghbError(kerr.FencedInstanceID, "Static member "+m.id+" with instance id "+*req.InstanceID+" was replaced by member "+cur+"."))
				return
			}
		}
		if req.MemberEpoch > m.epoch {
			respond(cghbError(kerr.FencedMemberEpoch, "The consumer group member has a greater member epoch ("+itoa(int(req.MemberEpoch))+") than the one known by the group coordinator ("+itoa(int(m.epoch))+"). The member must abandon all its partitions and rejoin."))
			return
		}
		if req.MemberEpoch < m.epoch && !(req.MemberEpoch == m.prevEpoch && req.Topics != nil && subset(owned, m.assigned)) {
			// A lagging member is tolerated only while what it owns is still its own.
			respond(cghbError(kerr.FencedMemberEpoch, "The consumer group member has a smaller member epoch ("+itoa(int(req.MemberEpoch))+") than the one known by the group coordinator ("+itoa(int(m.epoch))+"). The member must abandon all its partitions and rejoin."))
			return
		}
	}

	// Update what the member told us; any change the assignor sees bumps the group epoch.
	if req.RebalanceTimeoutMillis > 0 {
		m.rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	if req.RackID != nil {
		m.rackID = req.RackID
	}
	if req.ServerAssignor != nil && m.assignor != *req.ServerAssignor {
		m.assignor = *req.ServerAssignor
		bump = true
	}
	if req.SubscribedTopicNames != nil {
		m.names = sortedSet(req.SubscribedTopicNames)
	}
	if req.SubscribedTopicRegex != nil {
		// An empty regex means none (librdkafka sends "" on every heartbeat).
		regex := req.SubscribedTopicRegex
		if *regex == "" {
			regex = nil
		}
		m.regex = regex
	}
	// The group's regexes are resolved after this heartbeat, as Kafka resolves them
	// asynchronously, at most every 10 s: a member bringing a new regex joins without its
	// topics, and a later heartbeat gets them with the epoch the resolution bumps.
	c.maybeRefreshRegexes(g)
	if subs := cg.memberSubs(m); !equalStrings(subs, m.subscribed) {
		m.subscribed = subs
		bump = true
	}
	if c.refreshPartitions(cg) {
		bump = true
	}
	if bump {
		cg.epoch++
		c.log.Debug("consumer group epoch bumped", "group", g.id, "member", m.id, "epoch", cg.epoch,
			"subscribed", m.subscribed, "assignor", m.assignor, "partitions", cg.partitions)
	}
	if cg.epoch != cg.assignEpoch {
		c.computeTarget(g)
	}
	before := m.assigned
	c.reconcileMember(g, m, owned)
	c.scheduleConsumerSession(g, m)

	r := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	id := m.id
	r.MemberID = &id
	r.MemberEpoch = m.epoch
	r.HeartbeatIntervalMillis = int32(c.heartbeatInterval(g).Milliseconds())
	// As Kafka: the assignment goes out on a full request (a join, or a client resending
	// every field after an error) and whenever it changed.
	full := req.MemberEpoch == joinEpoch || req.RebalanceTimeoutMillis != -1 &&
		(req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil
	if full || !before.equal(m.assigned) {
		r.Assignment = c.assignmentResponse(m.assigned)
	}
	c.persistConsumer(g, func(err error) {
		if err != nil {
			respond(cghbError(errLogWrite, ""))
			return
		}
		respond(r)
	})
}

// reconcileMember moves m toward its target and keeps its revocation timer: a member that
// does not revoke within its rebalance timeout is removed, so its partitions can move.
func (c *Coordinator) reconcileMember(g *group, m *cmember, owned assignment) {
	cg := g.cg
	if cg.reconcile(m, owned) {
		c.log.Debug("consumer group member reconciled", "group", g.id, "member", m.id, "epoch", m.epoch, "state", m.state.String(), "assigned", m.assigned.count(), "revoking", m.revoking.count())
	}
	if m.state != msUnrevoked {
		m.rb.stop()
		m.rb = nil
		return
	}
	if m.rb == nil {
		epoch := m.epoch
		m.rb = c.after(m.rebalance, func() {
			if cg.members[m.id] != m || m.state != msUnrevoked || m.epoch != epoch {
				return
			}
			c.log.Info("consumer group member did not revoke in time", "group", g.id, "member", m.id)
			c.removeConsumerMember(g, m, nil)
		})
	}
}

// replaceStaticMember hands a static member's place (assignment, epoch) to its new member ID
// when it rejoins after a static leave (epoch -2).
func (c *Coordinator) replaceStaticMember(g *group, old *cmember, newID string) *cmember {
	cg := g.cg
	if newID == "" {
		newID = newUUID()
	}
	old.hb.stop()
	old.rb.stop()
	old.stopClassicTimers()
	m := *old
	m.id, m.hb, m.rb = newID, nil, nil
	if old.classic != nil {
		cm := *old.classic
		m.classic = &cm
	}
	m.epoch = old.prevEpoch
	delete(cg.members, old.id)
	cg.members[newID] = &m
	cg.static[*m.instanceID] = newID
	if t, ok := cg.target[old.id]; ok {
		delete(cg.target, old.id)
		cg.target[newID] = t
	}
	cg.setOwned(&m, nil, nil)
	return &m
}

func (c *Coordinator) consumerLeave(g *group, req *kmsg.ConsumerGroupHeartbeatRequest, respond func(*kmsg.ConsumerGroupHeartbeatResponse)) {
	cg := g.cg
	m := cg.members[req.MemberID]
	if m == nil && req.InstanceID != nil {
		m = cg.members[cg.static[*req.InstanceID]]
		if m != nil && req.MemberID != "" && m.id != req.MemberID {
			respond(cghbError(kerr.FencedInstanceID, ""))
			return
		}
	}
	if m == nil {
		respond(cghbError(kerr.UnknownMemberID, "Member "+req.MemberID+" is not a member of group "+req.Group+"."))
		return
	}
	r := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	id := req.MemberID
	r.MemberID = &id
	r.MemberEpoch = req.MemberEpoch
	then := func(err error) {
		if err != nil {
			respond(cghbError(errLogWrite, ""))
			return
		}
		respond(r)
	}
	if req.MemberEpoch == leaveStaticEpoch {
		// A static member leaving for a while keeps its assignment until its session ends
		// or it comes back with a new member ID.
		if m.epoch != leaveStaticEpoch {
			m.prevEpoch = m.epoch
		}
		m.epoch = leaveStaticEpoch
		c.scheduleConsumerSession(g, m)
		c.persistConsumer(g, then)
	} else {
		c.removeConsumerMember(g, m, then)
	}
}

// removeConsumerMember drops m and bumps the group epoch, then runs once that is durable.
// As in Kafka, the new target assignment is computed by the next heartbeat of a remaining
// member (the group shows Assigning until then). When only classic members remain, the
// group becomes a classic group instead.
func (c *Coordinator) removeConsumerMember(g *group, m *cmember, then func(error)) {
	if c.maybeDowngrade(g, m, then) {
		return
	}
	g.cg.removeMember(m)
	g.cg.epoch++
	c.refreshPartitions(g.cg) // the partitions the new epoch's subscriptions see
	c.persistConsumer(g, then)
}

func (c *Coordinator) scheduleConsumerSession(g *group, m *cmember) {
	m.hb.stop()
	session := c.sessionTimeout(g)
	if m.classic != nil {
		session = m.classic.session // the member's own, from its JoinGroup
	}
	m.hb = c.after(session, func() {
		if g.cg == nil || g.cg.members[m.id] != m {
			return
		}
		c.log.Info("consumer group member session expired", "group", g.id, "member", m.id)
		c.removeConsumerMember(g, m, nil)
	})
}

// computeTarget computes the target assignment at the group epoch.
func (c *Coordinator) computeTarget(g *group) {
	cg := g.cg
	c.refreshPartitions(cg)
	for re := range cg.regexes {
		used := false
		for _, m := range cg.members {
			used = used || m.regex != nil && *m.regex == re
		}
		if !used {
			delete(cg.regexes, re)
		}
	}
	spec := assignSpec{subscribed: map[string][]string{}, partitions: cg.partitions, previous: cg.target}
	for _, m := range cg.ordered() {
		spec.members = append(spec.members, m.id)
		var subs []string
		for _, t := range m.subscribed {
			if cg.partitions[t] > 0 {
				subs = append(subs, t)
			}
		}
		spec.subscribed[m.id] = subs
	}
	sort.Strings(spec.members)
	name := cg.assignorName(c.cfg.DefaultAssignor)
	cg.target = runAssignor(name, spec)
	cg.assignEpoch = cg.epoch
	c.syncConsumerState(g)
	c.log.Debug("consumer group target assignment", "group", g.id, "epoch", cg.epoch, "assignor", name, "members", len(cg.members))
}

// syncConsumerState keeps the classic fields that shared code reads (state for DeleteGroups
// and offset retention, subscribed topics for OffsetDelete) in step with the consumer group.
func (c *Coordinator) syncConsumerState(g *group) {
	want := Stable
	if len(g.cg.members) == 0 {
		want = Empty
	}
	if g.state != want {
		g.transition(want, c.clock.Now())
	}
	g.generation = g.cg.epoch
	g.subscribed = g.cg.subscribedTopics()
}

// persistConsumer writes the group's record if it differs from the last one written, so
// the heartbeats of a settled group cost no write; then runs once the record is durable (at
// once when there is nothing to write: the reply still waits for the burst's flush).
func (c *Coordinator) persistConsumer(g *group, then func(error)) {
	c.syncConsumerState(g)
	rec := encodeConsumerGroup(g)
	cg := g.cg
	if bytes.Equal(rec, cg.lastRec) {
		if then != nil {
			then(nil)
		}
		return
	}
	cg.lastRec = rec
	c.persist(rec, func(err error) {
		if err != nil && bytes.Equal(cg.lastRec, rec) {
			cg.lastRec = nil // not on disk: the next change must write it
		}
		if then != nil {
			then(err)
		}
	})
}
