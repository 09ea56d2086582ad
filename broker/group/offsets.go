package group

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CommitOffsets handles an OffsetCommit request whose topics and partitions all exist (the
// broker answers unknown ones itself). The response is sent once the commit is fsynced.
func (c *Coordinator) CommitOffsets(cl Client, req *kmsg.OffsetCommitRequest, respond func(*kmsg.OffsetCommitResponse)) {
	if !c.post(func() { c.commit(cl, req, respond) }) {
		respond(commitResponse(req, kerr.CoordinatorNotAvailable.Code))
	}
}

func commitResponse(req *kmsg.OffsetCommitRequest, code int16) *kmsg.OffsetCommitResponse {
	r := kmsg.NewPtrOffsetCommitResponse()
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = code
			rt.Partitions = append(rt.Partitions, rp)
		}
		r.Topics = append(r.Topics, rt)
	}
	return r
}

func (c *Coordinator) commit(cl Client, req *kmsg.OffsetCommitRequest, respond func(*kmsg.OffsetCommitResponse)) {
	fail := func(err *kerr.Error) {
		r := commitResponse(req, err.Code)
		c.reply(func() { respond(r) })
	}
	g := c.groups[req.Group]
	if g == nil {
		switch {
		case req.Generation < 0:
			// A simple (standalone) commit creates an Empty group that holds only offsets.
			g = newGroup(req.Group, c.clock.Now())
			c.groups[req.Group] = g
		case cl.Version >= 9:
			fail(kerr.GroupIDNotFound)
			return
		default:
			fail(kerr.IllegalGeneration)
			return
		}
	}
	validate := func() *kerr.Error { return g.validateCommit(req.MemberID, req.InstanceID, req.Generation) }
	if g.cg != nil {
		validate = func() *kerr.Error { return g.validateConsumerCommit(cl.Version, req.MemberID, req.Generation) }
	}
	if err := validate(); err != nil {
		fail(err)
		return
	}
	now := c.clock.Now().UnixMilli()
	expire := int64(-1)
	if cl.Version <= 4 && req.RetentionTimeMillis > 0 {
		expire = now + req.RetentionTimeMillis
	}
	r := commitResponse(req, 0)
	type pend struct {
		k tp
		o offset
	}
	var pends []pend
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			md := ""
			if p.Metadata != nil {
				md = *p.Metadata
			}
			if len(md) > c.cfg.MaxMetadataBytes {
				r.Topics[i].Partitions[j].ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			o := offset{offset: p.Offset, leaderEpoch: p.LeaderEpoch, metadata: md, commitTime: now, expireTime: expire}
			if cl.Version < 6 {
				o.leaderEpoch = -1
			}
			k := tp{t.Topic, p.Partition}
			pends = append(pends, pend{k, o})
			c.persist(encodeOffset(g.id, k, o), nil)
		}
	}
	if len(pends) == 0 {
		c.reply(func() { respond(r) })
		return
	}
	id := g.id
	c.onDurable = append(c.onDurable, func(err error) {
		if err != nil {
			for i := range r.Topics {
				for j := range r.Topics[i].Partitions {
					if r.Topics[i].Partitions[j].ErrorCode == 0 {
						r.Topics[i].Partitions[j].ErrorCode = errLogWrite.Code
					}
				}
			}
		} else {
			g := c.groups[id]
			if g == nil { // deleted while the write was in flight: the commit recreates it
				g = newGroup(id, c.clock.Now())
				c.groups[id] = g
			}
			for _, p := range pends {
				g.offsets[p.k] = p.o
			}
		}
		c.reply(func() { respond(r) })
	})
}

// validateCommit follows Kafka 4.0's classic group rules for OffsetCommit.
func (g *group) validateCommit(memberID string, instanceID *string, generation int32) *kerr.Error {
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable
	}
	if generation < 0 && g.state == Empty {
		return nil // simple commit to a group without members
	}
	if generation >= 0 || memberID != "" || instanceID != nil {
		if _, err := g.validateMember(memberID, instanceID); err != nil {
			return err
		}
		if generation != g.generation {
			return kerr.IllegalGeneration
		}
	} else if g.state != Empty {
		return kerr.UnknownMemberID
	}
	if g.state == CompletingRebalance {
		return kerr.RebalanceInProgress
	}
	return nil
}

// FetchOffsets answers OffsetFetch for several groups (one for v0-v7). A group's nil Topics
// means all of its committed offsets. Unknown groups and partitions get offset -1, no error.
func (c *Coordinator) FetchOffsets(groups []kmsg.OffsetFetchRequestGroup, respond func([]kmsg.OffsetFetchResponseGroup)) {
	eachGroup(c, groups, c.fetchGroup, func(rg kmsg.OffsetFetchRequestGroup) kmsg.OffsetFetchResponseGroup {
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group, g.ErrorCode = rg.Group, kerr.CoordinatorNotAvailable.Code
		return g
	}, respond)
}

func (c *Coordinator) fetchGroup(rg kmsg.OffsetFetchRequestGroup) kmsg.OffsetFetchResponseGroup {
	g := c.groups[rg.Group]
	out := kmsg.NewOffsetFetchResponseGroup()
	out.Group = rg.Group
	if err := g.validateConsumerFetch(rg.MemberID, rg.MemberEpoch); err != nil {
		out.ErrorCode = err.Code
		return out
	}
	part := func(k tp) kmsg.OffsetFetchResponseGroupTopicPartition {
		p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		p.Partition = k.partition
		p.Offset, p.LeaderEpoch = -1, -1
		if g != nil {
			if o, ok := g.offsets[k]; ok {
				p.Offset, p.LeaderEpoch, p.Metadata = o.offset, o.leaderEpoch, &o.metadata
			}
		}
		if p.Metadata == nil {
			empty := ""
			p.Metadata = &empty
		}
		return p
	}
	if rg.Topics != nil {
		for _, t := range rg.Topics {
			ot := kmsg.NewOffsetFetchResponseGroupTopic()
			ot.Topic = t.Topic
			for _, pi := range t.Partitions {
				ot.Partitions = append(ot.Partitions, part(tp{t.Topic, pi}))
			}
			out.Topics = append(out.Topics, ot)
		}
		return out
	}
	if g == nil {
		return out
	}
	keys := make([]tp, 0, len(g.offsets))
	for k := range g.offsets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].partition < keys[j].partition
	})
	for _, k := range keys {
		if n := len(out.Topics); n == 0 || out.Topics[n-1].Topic != k.topic {
			ot := kmsg.NewOffsetFetchResponseGroupTopic()
			ot.Topic = k.topic
			out.Topics = append(out.Topics, ot)
		}
		ot := &out.Topics[len(out.Topics)-1]
		ot.Partitions = append(ot.Partitions, part(k))
	}
	return out
}

// DeleteOffsets handles OffsetDelete for partitions of existing topics.
func (c *Coordinator) DeleteOffsets(req *kmsg.OffsetDeleteRequest, respond func(*kmsg.OffsetDeleteResponse)) {
	r := kmsg.NewPtrOffsetDeleteResponse()
	if !c.post(func() {
		c.deleteOffsets(req, r)
		c.reply(func() { respond(r) })
	}) {
		r.ErrorCode = kerr.CoordinatorNotAvailable.Code
		respond(r)
	}
}

func (c *Coordinator) deleteOffsets(req *kmsg.OffsetDeleteRequest, r *kmsg.OffsetDeleteResponse) {
	g := c.groups[req.Group]
	if g == nil || g.state == Dead {
		r.ErrorCode = kerr.GroupIDNotFound.Code
		return
	}
	if g.state != Empty && g.protocolType != "consumer" {
		r.ErrorCode = kerr.NonEmptyGroup.Code
		return
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		subscribed := g.state != Empty && g.isSubscribed(t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			k := tp{t.Topic, p.Partition}
			switch {
			case subscribed:
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				if _, ok := g.offsets[k]; ok {
					delete(g.offsets, k)
					c.persist(encodeOffsetDelete(g.id, k), nil)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		r.Topics = append(r.Topics, rt)
	}
}

func (c *Coordinator) scheduleRetention() {
	c.retention = c.after(c.cfg.RetentionCheckInterval, func() {
		c.expireOffsets()
		c.scheduleRetention()
	})
}

// expireOffsets drops offsets past retention (Kafka 4.0 rules): in a group with members, only
// offsets of topics it is not subscribed to, counted from their commit; in an Empty consumer
// group, all offsets once the group has been empty for the retention period; in a group
// without a protocol type (simple commits), each offset from its commit. An explicit expire
// time (OffsetCommit v2-v4) wins. An Empty group left with no offsets is deleted.
func (c *Coordinator) expireOffsets() {
	now := c.clock.Now()
	nowMs := now.UnixMilli()
	ret := c.cfg.OffsetsRetention.Milliseconds()
	for id, g := range c.groups {
		var base func(o offset) (int64, bool)
		switch {
		case g.protocolType != "" && g.state == Empty:
			since := g.stateSince.UnixMilli()
			base = func(offset) (int64, bool) { return since, true }
		case g.protocolType == "consumer" && g.state == Stable:
			base = nil // handled per topic below
		case g.protocolType == "":
			base = func(o offset) (int64, bool) { return o.commitTime, true }
		default:
			base = func(offset) (int64, bool) { return 0, false }
		}
		for k, o := range g.offsets {
			expired := false
			switch {
			case o.expireTime >= 0:
				expired = nowMs >= o.expireTime
			case base == nil:
				expired = !g.isSubscribed(k.topic) && nowMs-o.commitTime >= ret
			default:
				if b, ok := base(o); ok {
					expired = nowMs-b >= ret
				}
			}
			if expired {
				delete(g.offsets, k)
				c.persist(encodeOffsetDelete(id, k), nil)
			}
		}
		if g.state == Empty && len(g.offsets) == 0 && len(g.members) == 0 && len(g.pending) == 0 {
			delete(c.groups, id)
			c.persist(encodeGroupDelete(id), nil)
		}
	}
}
