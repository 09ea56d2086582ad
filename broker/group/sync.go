package group

// SyncGroup, Heartbeat and LeaveGroup of classic members (JoinGroup and the rebalance state
// machine are in join.go; classic members of consumer groups in consumer_classic.go).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func syncError(err *kerr.Error) *kmsg.SyncGroupResponse {
	r := kmsg.NewPtrSyncGroupResponse()
	r.ErrorCode = err.Code
	return r
}

// SyncGroup handles a SyncGroup request; followers wait for the leader's assignment.
func (c *Coordinator) SyncGroup(cl Client, req *kmsg.SyncGroupRequest, respond func(*kmsg.SyncGroupResponse)) {
	if !c.post(func() {
		c.log.Debug("sync group", "group", req.Group, "member", req.MemberID, "generation", req.Generation, "assignments", len(req.GroupAssignment))
		c.sync(req, func(r *kmsg.SyncGroupResponse) {
			c.log.Debug("sync group answered", "group", req.Group, "member", req.MemberID, "err", r.ErrorCode)
			c.reply(func() { respond(r) })
		})
	}) {
		respond(syncError(kerr.CoordinatorNotAvailable))
	}
}

func (c *Coordinator) sync(req *kmsg.SyncGroupRequest, respond func(*kmsg.SyncGroupResponse)) {
	if req.Group == "" { // Kafka's group coordinator refuses an empty group ID first
		respond(syncError(kerr.InvalidGroupID))
		return
	}
	g := c.groups[req.Group]
	if g == nil {
		respond(syncError(kerr.UnknownMemberID))
		return
	}
	if g.cg != nil {
		c.classicSyncToConsumer(g, req, respond)
		return
	}
	m, err := g.validateMember(req.MemberID, req.InstanceID)
	switch {
	case err != nil:
	case req.Generation != g.generation:
		err = kerr.IllegalGeneration
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		err = kerr.InconsistentGroupProtocol
	}
	if err != nil {
		respond(syncError(err))
		return
	}
	delete(g.pendSync, m.id)
	if len(g.pendSync) == 0 {
		g.syncTimer.stop()
	}
	switch g.state {
	case Empty:
		respond(syncError(kerr.UnknownMemberID))
	case PreparingRebalance:
		respond(syncError(kerr.RebalanceInProgress))
	case CompletingRebalance:
		if m.syncCB != nil {
			m.syncCB(syncError(kerr.RebalanceInProgress))
		}
		m.syncCB = respond
		c.scheduleHeartbeat(g, m)
		if m.id != g.leader {
			return
		}
		for _, o := range g.members {
			o.assignment = []byte{}
		}
		for _, a := range req.GroupAssignment {
			if o := g.members[a.MemberID]; o != nil {
				o.assignment = append([]byte(nil), a.MemberAssignment...)
			}
		}
		// Stable once the assignment is durable, as in Kafka: until then the group stays
		// CompletingRebalance (members that sync meanwhile wait too). The record is encoded
		// as the Stable group it will be.
		now := c.clock.Now()
		since := g.stateSince
		g.transition(Stable, now)
		rec := encodeGroup(g)
		g.state, g.stateSince = CompletingRebalance, since
		gen := g.generation
		failed := func(why string) {
			// Kafka: the assignment is reset, every waiting member gets the append error
			// mapped for clients (NOT_COORDINATOR for a storage error), and the group
			// rebalances again.
			for _, o := range g.members {
				o.assignment = []byte{}
				if o.syncCB != nil {
					cb := o.syncCB
					o.syncCB = nil
					cb(syncError(errLogWrite))
				}
			}
			c.prepareRebalance(g, why)
		}
		if len(rec) > maxGroupRecordBytes {
			// Kafka's coordinator cannot append a group record over the offsets topic's
			// max.message.bytes either: its SyncGroup answers NOT_COORDINATOR (and it
			// reloads the coordinator).
			c.log.Warn("group assignment too large to store", "group", g.id, "bytes", len(rec), "limit", maxGroupRecordBytes)
			failed("the group assignment is larger than the coordinator's record limit")
			return
		}
		c.persist(rec, func(err error) {
			if g.generation != gen || g.state != CompletingRebalance || c.groups[g.id] != g {
				return // the group moved on meanwhile
			}
			if err != nil {
				failed("storing the group assignment failed")
				return
			}
			g.transition(Stable, now)
			for _, o := range g.members {
				if o.syncCB != nil {
					cb := o.syncCB
					o.syncCB = nil
					cb(c.syncResponse(g, o))
				}
			}
		})
	case Stable:
		c.scheduleHeartbeat(g, m)
		respond(c.syncResponse(g, m))
	default:
		respond(syncError(kerr.CoordinatorNotAvailable))
	}
}

// maxGroupRecordBytes bounds a stored group record (members' protocol metadata and
// assignments): what fits in one record batch under Kafka's default max.message.bytes
// (1048588) for __consumer_offsets.
const maxGroupRecordBytes = 1048588 - 61

func (c *Coordinator) syncResponse(g *group, m *member) *kmsg.SyncGroupResponse {
	r := kmsg.NewPtrSyncGroupResponse()
	pt, pn := g.protocolType, g.protocol
	r.ProtocolType = &pt
	r.Protocol = &pn
	r.MemberAssignment = m.assignment
	if r.MemberAssignment == nil {
		r.MemberAssignment = []byte{}
	}
	return r
}

// Heartbeat handles a Heartbeat request.
func (c *Coordinator) Heartbeat(cl Client, req *kmsg.HeartbeatRequest, respond func(*kmsg.HeartbeatResponse)) {
	r := kmsg.NewPtrHeartbeatResponse()
	if !c.post(func() {
		r.ErrorCode = c.heartbeat(req)
		c.log.Debug("heartbeat", "group", req.Group, "member", req.MemberID, "generation", req.Generation, "err", r.ErrorCode)
		c.reply(func() { respond(r) })
	}) {
		r.ErrorCode = kerr.CoordinatorNotAvailable.Code
		respond(r)
	}
}

func (c *Coordinator) heartbeat(req *kmsg.HeartbeatRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	g := c.groups[req.Group]
	if g == nil {
		return kerr.UnknownMemberID.Code
	}
	if g.cg != nil {
		return c.classicHeartbeatToConsumer(g, req)
	}
	m, err := g.validateMember(req.MemberID, req.InstanceID)
	if err != nil {
		return err.Code
	}
	if req.Generation != g.generation {
		return kerr.IllegalGeneration.Code
	}
	switch g.state {
	case Empty:
		return kerr.UnknownMemberID.Code
	case PreparingRebalance:
		c.scheduleHeartbeat(g, m)
		return kerr.RebalanceInProgress.Code
	}
	c.scheduleHeartbeat(g, m)
	return 0
}

// LeaveGroup handles a LeaveGroup request; v0-v2 carry one member in req.MemberID.
func (c *Coordinator) LeaveGroup(cl Client, req *kmsg.LeaveGroupRequest, respond func(*kmsg.LeaveGroupResponse)) {
	r := kmsg.NewPtrLeaveGroupResponse()
	if !c.post(func() {
		c.leave(cl, req, r)
		c.log.Debug("leave group", "group", req.Group, "member", req.MemberID, "members", len(req.Members), "err", r.ErrorCode)
		c.reply(func() { respond(r) })
	}) {
		r.ErrorCode = kerr.CoordinatorNotAvailable.Code
		respond(r)
	}
}

func (c *Coordinator) leave(cl Client, req *kmsg.LeaveGroupRequest, r *kmsg.LeaveGroupResponse) {
	members := req.Members
	if cl.Version < 3 {
		members = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	if req.Group == "" {
		r.ErrorCode = kerr.InvalidGroupID.Code
		return
	}
	g := c.groups[req.Group]
	if g != nil && g.cg != nil {
		c.classicLeaveFromConsumer(g, members, r)
		if cl.Version < 3 {
			r.ErrorCode = r.Members[0].ErrorCode
			r.Members = nil
		}
		return
	}
	var left, pendingLeft bool
	for _, lm := range members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
		var wasPending bool
		rm.ErrorCode, wasPending = c.leaveOne(g, lm)
		if rm.ErrorCode == 0 {
			left = left || !wasPending
			pendingLeft = pendingLeft || wasPending
		}
		r.Members = append(r.Members, rm)
	}
	if cl.Version < 3 {
		r.ErrorCode = r.Members[0].ErrorCode
		r.Members = nil
	}
	if left || pendingLeft {
		// As Kafka, even a member that only held a MEMBER_ID_REQUIRED ID starts a rebalance.
		c.prepareOrCompleteJoin(g, "member left")
	}
}

// leaveOne removes one leaving member; pending reports a MEMBER_ID_REQUIRED member that had
// not joined yet.
func (c *Coordinator) leaveOne(g *group, lm kmsg.LeaveGroupRequestMember) (code int16, pending bool) {
	if g == nil {
		return kerr.UnknownMemberID.Code, false
	}
	id := lm.MemberID
	if lm.InstanceID != nil {
		cur := g.static[*lm.InstanceID]
		switch {
		case cur == "":
			return kerr.UnknownMemberID.Code, false
		case id != "" && id != cur:
			return kerr.FencedInstanceID.Code, false
		}
		id = cur
	} else if t := g.pending[id]; t != nil {
		t.stop()
		delete(g.pending, id)
		return 0, true
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID.Code, false
	}
	c.log.Debug("member left", "group", g.id, "member", id)
	if m.joinCB != nil {
		m.joinCB(joinError(m.id, kerr.UnknownMemberID))
		m.joinCB = nil
	}
	if m.syncCB != nil {
		m.syncCB(syncError(kerr.UnknownMemberID))
		m.syncCB = nil
	}
	g.removeMember(m)
	return 0, false
}
