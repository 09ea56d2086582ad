package group

import (
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups lists groups, filtered by state names and group types ("classic" or
// "consumer"), both case-insensitive.
func (c *Coordinator) ListGroups(states, types []string, respond func([]kmsg.ListGroupsResponseGroup, error)) {
	if !c.post(func() {
		out := c.listGroups(states, types)
		c.reply(func() { respond(out, nil) })
	}) {
		respond(nil, ErrClosed)
	}
}

func (c *Coordinator) listGroups(states, types []string) []kmsg.ListGroupsResponseGroup {
	match := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	out := []kmsg.ListGroupsResponseGroup{}
	for _, g := range c.groups {
		state, typ := g.stateName(), g.typeName()
		if !match(states, state) || !match(types, typ) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = g.id
		lg.ProtocolType = g.protocolType
		lg.GroupState = state
		lg.GroupType = typ
		out = append(out, lg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// DescribeGroups describes groups. An unknown group comes back in state Dead with
// GROUP_ID_NOT_FOUND in ErrorCode; the handler clears it for versions before 6, as Kafka does.
func (c *Coordinator) DescribeGroups(ids []string, respond func([]kmsg.DescribeGroupsResponseGroup)) {
	eachGroup(c, ids, c.describe, func(id string) kmsg.DescribeGroupsResponseGroup {
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.Group, d.ErrorCode = id, kerr.CoordinatorNotAvailable.Code
		return d
	}, respond)
}

// eachGroup answers a request about several groups: one(in) for each on the coordinator's
// loop, or unavailable(in) for each if the coordinator has stopped.
func eachGroup[In, Out any](c *Coordinator, in []In, one, unavailable func(In) Out, respond func([]Out)) {
	if !c.post(func() {
		out := make([]Out, 0, len(in))
		for _, x := range in {
			out = append(out, one(x))
		}
		c.reply(func() { respond(out) })
	}) {
		out := make([]Out, 0, len(in))
		for _, x := range in {
			out = append(out, unavailable(x))
		}
		respond(out)
	}
}

func (c *Coordinator) describe(id string) kmsg.DescribeGroupsResponseGroup {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = id
	g := c.groups[id]
	if g == nil {
		d.State = Dead.String()
		d.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "Group " + id + " not found."
		d.ErrorMessage = &msg
		return d
	}
	if g.cg != nil {
		// As Kafka 4.0: DescribeGroups only describes classic groups.
		d.State = Dead.String()
		d.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "Group " + id + " is not a classic group."
		d.ErrorMessage = &msg
		return d
	}
	d.State = g.state.String()
	d.ProtocolType = g.protocolType
	stable := g.state == Stable
	if stable {
		d.Protocol = g.protocol
	}
	for _, m := range g.orderedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.host
		// Kafka 4.0 shows the last assignment in every state, the metadata only when Stable.
		dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
		if stable {
			dm.ProtocolMetadata = m.metadataFor(g.protocol)
		}
		if m.assignment != nil {
			dm.MemberAssignment = m.assignment
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

// DeleteGroups deletes Empty groups and their offsets.
func (c *Coordinator) DeleteGroups(ids []string, respond func([]kmsg.DeleteGroupsResponseGroup)) {
	answer := func(id string, e *kerr.Error) kmsg.DeleteGroupsResponseGroup {
		dg := kmsg.NewDeleteGroupsResponseGroup()
		dg.Group = id
		if e != nil {
			dg.ErrorCode = e.Code
		}
		return dg
	}
	eachGroup(c, ids, func(id string) kmsg.DeleteGroupsResponseGroup {
		g := c.groups[id]
		switch {
		case g == nil || g.state == Dead:
			return answer(id, kerr.GroupIDNotFound)
		case g.state != Empty:
			return answer(id, kerr.NonEmptyGroup)
		}
		c.deleteGroup(g)
		return answer(id, nil)
	}, func(id string) kmsg.DeleteGroupsResponseGroup { return answer(id, kerr.CoordinatorNotAvailable) }, respond)
}

func (c *Coordinator) deleteGroup(g *group) {
	g.joinTimer.stop()
	g.syncTimer.stop()
	for _, t := range g.pending {
		t.stop()
	}
	g.transition(Dead, c.clock.Now())
	delete(c.groups, g.id)
	c.persist(encodeGroupDelete(g.id), nil)
}
