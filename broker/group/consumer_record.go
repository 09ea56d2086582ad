package group

// The consumer group record (type 5 of groups.log, see record.go for the framing) holds a
// KIP-848 group's whole membership state; each change writes a new one, replay keeps the
// last. (Kafka writes finer records — group epoch, member, target, current assignment —
// but one record per change keeps replay trivially consistent and the groups are small.)
//
//	5 consumer group: group str, epoch, assignment epoch, state-since ms,
//	                  partition-count count, then per topic: name str, count,
//	                  member count, then per member:
//	                    id str, instance nstr, rack nstr, client id str, host str,
//	                    epoch, previous epoch, state, rebalance ms,
//	                    subscribed count + str each, names count + str each,
//	                    regex nstr, assignor str,
//	                    assigned, revoking, target   (each: assignment, below)
//	                  then (absent in records of older builds) classic count, then per
//	                  member using the classic protocol:
//	                    id str, session ms, protocol count, then per protocol:
//	                    name str, metadata bytes
//	assignment: topic count, then per topic: name str, partition count, partitions
//
// Offsets of the group stay in their own records (types 1 and 2).
//
//	6 group config:   group str, count, then per config: name str, value str
//	                  (the group's whole config set; an empty one removes it)

import (
	"fmt"
	"sort"
	"time"
)

const (
	recConsumerGroup = 5
	recGroupConfig   = 6
)

func encodeGroupConfig(group string, m map[string]string) []byte {
	e := newEnc(recGroupConfig)
	e.str(group)
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	e.int(int64(len(names)))
	for _, k := range names {
		e.str(k)
		e.str(m[k])
	}
	return e.b
}

// applyGroupConfig replays a type 6 record (d is past the group ID).
func (c *Coordinator) applyGroupConfig(id string, d *dec) error {
	n := d.int()
	if n < 0 || n > int64(len(d.b)) {
		return fmt.Errorf("group record: bad config count %d", n)
	}
	m := map[string]string{}
	for i := int64(0); i < n && d.err == nil; i++ {
		k := d.str()
		m[k] = d.str()
	}
	if d.err == nil {
		c.setGroupConfigs(id, m)
	}
	return nil
}

func encodeAssignment(e *enc, a assignment) {
	ts := a.topics()
	e.int(int64(len(ts)))
	for _, t := range ts {
		e.str(t)
		e.int(int64(len(a[t])))
		for _, p := range a[t] {
			e.int(int64(p))
		}
	}
}

func decodeAssignment(d *dec) assignment {
	a := assignment{}
	n := d.int()
	if n < 0 || n > int64(len(d.b)) {
		d.err = fmt.Errorf("group record: bad topic count %d", n)
		return a
	}
	for i := int64(0); i < n && d.err == nil; i++ {
		t := d.str()
		k := d.int()
		if k < 0 || k > int64(len(d.b)) {
			d.err = fmt.Errorf("group record: bad partition count %d", k)
			return a
		}
		ps := make([]int32, 0, k)
		for j := int64(0); j < k && d.err == nil; j++ {
			ps = append(ps, d.i32())
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		a[t] = ps
	}
	return a
}

func encodeConsumerGroup(g *group) []byte {
	cg := g.cg
	e := newEnc(recConsumerGroup)
	e.str(g.id)
	e.int(int64(cg.epoch))
	e.int(int64(cg.assignEpoch))
	e.int(g.stateSince.UnixMilli())
	ts := make([]string, 0, len(cg.partitions))
	for t := range cg.partitions {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	e.int(int64(len(ts)))
	for _, t := range ts {
		e.str(t)
		e.int(int64(cg.partitions[t]))
	}
	ms := cg.ordered()
	e.int(int64(len(ms)))
	for _, m := range ms {
		e.str(m.id)
		e.nstr(m.instanceID)
		e.nstr(m.rackID)
		e.str(m.clientID)
		e.str(m.host)
		e.int(int64(m.epoch))
		e.int(int64(m.prevEpoch))
		e.int(int64(m.state))
		e.int(m.rebalance.Milliseconds())
		e.int(int64(len(m.subscribed)))
		for _, t := range m.subscribed {
			e.str(t)
		}
		e.int(int64(len(m.names)))
		for _, t := range m.names {
			e.str(t)
		}
		e.nstr(m.regex)
		e.str(m.assignor)
		encodeAssignment(e, m.assigned)
		encodeAssignment(e, m.revoking)
		encodeAssignment(e, cg.target[m.id])
	}
	var classic []*cmember
	for _, m := range ms {
		if m.classic != nil {
			classic = append(classic, m)
		}
	}
	e.int(int64(len(classic)))
	for _, m := range classic {
		e.str(m.id)
		e.int(m.classic.session.Milliseconds())
		e.int(int64(len(m.classic.protocols)))
		for _, p := range m.classic.protocols {
			e.str(p.name)
			e.bytes(p.metadata)
		}
	}
	return e.b
}

// decodeClassicMembers reads the classic section of a type 5 record into cg's members.
func decodeClassicMembers(d *dec, cg *cgroup) error {
	if len(d.b) == 0 {
		return nil // a record of an older build: no classic members
	}
	n := d.int()
	if n < 0 || n > int64(len(d.b)) {
		return fmt.Errorf("group record: bad classic member count %d", n)
	}
	for i := int64(0); i < n && d.err == nil; i++ {
		id := d.str()
		cm := &classicMeta{session: time.Duration(d.int()) * time.Millisecond}
		k := d.int()
		if k <= 0 || k > int64(len(d.b)) {
			return fmt.Errorf("group record: bad classic protocol count %d", k)
		}
		for j := int64(0); j < k && d.err == nil; j++ {
			cm.protocols = append(cm.protocols, protocol{name: d.str(), metadata: d.bytes()})
		}
		m := cg.members[id]
		if m == nil || d.err != nil {
			return fmt.Errorf("group record: classic member %q is not a member", id)
		}
		m.classic = cm
	}
	return nil
}

// applyConsumerGroup replays a type 5 record (d is past the group ID).
func (c *Coordinator) applyConsumerGroup(id string, d *dec) error {
	cg := newCgroup()
	cg.epoch, cg.assignEpoch = d.i32(), d.i32()
	since := time.UnixMilli(d.int())
	n := d.int()
	if n < 0 || n > int64(len(d.b)) {
		return fmt.Errorf("group record: bad topic count %d", n)
	}
	for i := int64(0); i < n && d.err == nil; i++ {
		t := d.str()
		cg.partitions[t] = d.i32()
	}
	n = d.int()
	if n < 0 || n > int64(len(d.b)) {
		return fmt.Errorf("group record: bad member count %d", n)
	}
	for i := int64(0); i < n && d.err == nil; i++ {
		m := &cmember{id: d.str(), instanceID: d.nstr(), rackID: d.nstr(), clientID: d.str(), host: d.str()}
		m.epoch, m.prevEpoch = d.i32(), d.i32()
		st := d.int()
		if st < 0 || st >= int64(len(memberStateNames)) {
			return fmt.Errorf("group record: bad member state %d", st)
		}
		m.state = memberState(st)
		m.rebalance = time.Duration(d.int()) * time.Millisecond
		k := d.int()
		if k < 0 || k > int64(len(d.b)) {
			return fmt.Errorf("group record: bad subscription count %d", k)
		}
		for j := int64(0); j < k && d.err == nil; j++ {
			m.subscribed = append(m.subscribed, d.str())
		}
		sort.Strings(m.subscribed)
		k = d.int()
		if k < 0 || k > int64(len(d.b)) {
			return fmt.Errorf("group record: bad names count %d", k)
		}
		for j := int64(0); j < k && d.err == nil; j++ {
			m.names = append(m.names, d.str())
		}
		sort.Strings(m.names)
		m.regex = d.nstr()
		m.assignor = d.str()
		m.assigned = decodeAssignment(d)
		m.revoking = decodeAssignment(d)
		target := decodeAssignment(d)
		if d.err != nil {
			break
		}
		c.memberSeq++
		m.seq = c.memberSeq
		cg.members[m.id] = m
		cg.target[m.id] = target
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
		cg.setOwned(m, nil, nil)
		if m.regex != nil {
			// What the regex resolved to: the subscription beyond the names.
			var topics []string
			for _, t := range m.subscribed {
				if !contains(m.names, t) {
					topics = append(topics, t)
				}
			}
			cg.regexes[*m.regex] = topics
		}
	}
	if d.err != nil {
		return nil // reported by the caller
	}
	if err := decodeClassicMembers(d, cg); err != nil {
		return err
	}
	if d.err != nil {
		return nil
	}
	g := c.groups[id]
	if g == nil {
		g = newGroup(id, since)
		c.groups[id] = g
	}
	offsets := g.offsets
	*g = *newGroup(id, since)
	g.offsets = offsets
	g.protocolType = "consumer"
	g.cg = cg
	cg.lastRec = encodeConsumerGroup(g)
	g.generation = cg.epoch
	if len(cg.members) > 0 {
		g.state = Stable
	}
	g.subscribed = cg.subscribedTopics()
	return nil
}
