package group

// Records of the coordinator's MetaLog. Each record is:
//
//	version  uint8  (0)
//	type     uint8  1 offset commit, 2 offset delete, 3 group metadata, 4 group delete
//	fields   by type, in order (str = uvarint length + bytes; nstr = varint length, -1 for
//	         null, + bytes; bytes = uvarint length + bytes; ints are zig-zag varints):
//	  1 offset:        group str, topic str, partition, offset, leader epoch, metadata str,
//	                   commit time ms, expire time ms (-1 none)
//	  2 offset delete: group str, topic str, partition
//	  3 group:         group str, protocol type str, protocol str, generation, leader str,
//	                   state-since ms, member count, then per member: id str, instance nstr,
//	                   client id str, host str, session ms, rebalance ms, metadata bytes,
//	                   assignment bytes
//	  4 group delete:  group str
//	  5 consumer group (KIP-848), 6 group config: see consumer_record.go
//
// Replaying the records in order rebuilds the groups; a group record replaces the group's
// metadata (members of the last completed generation) and keeps its offsets. Compaction
// writes one group record per group followed by its offsets.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"
)

const (
	recOffset       = 1
	recOffsetDelete = 2
	recGroup        = 3
	recGroupDelete  = 4
)

type enc struct{ b []byte }

func newEnc(typ byte) *enc  { return &enc{b: []byte{0, typ}} }
func (e *enc) int(v int64)  { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string) { e.b = binary.AppendUvarint(e.b, uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) bytes(p []byte) {
	e.b = binary.AppendUvarint(e.b, uint64(len(p)))
	e.b = append(e.b, p...)
}
func (e *enc) nstr(s *string) {
	if s == nil {
		e.int(-1)
		return
	}
	e.int(int64(len(*s)))
	e.b = append(e.b, *s...)
}

var errShort = errors.New("group record truncated")

type dec struct {
	b   []byte
	err error
}

func (d *dec) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) raw(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *dec) uvar() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string   { return string(d.raw(d.uvar())) }
func (d *dec) bytes() []byte { return append([]byte{}, d.raw(d.uvar())...) }
func (d *dec) nstr() *string {
	n := d.int()
	if n < 0 || d.err != nil {
		return nil
	}
	s := string(d.raw(uint64(n)))
	return &s
}
func (d *dec) i32() int32 {
	v := d.int()
	if v < -1<<31 || v > 1<<31-1 {
		d.err = fmt.Errorf("group record: %d overflows int32", v)
	}
	return int32(v)
}

func encodeOffset(group string, k tp, o offset) []byte {
	e := newEnc(recOffset)
	e.str(group)
	e.str(k.topic)
	e.int(int64(k.partition))
	e.int(o.offset)
	e.int(int64(o.leaderEpoch))
	e.str(o.metadata)
	e.int(o.commitTime)
	e.int(o.expireTime)
	return e.b
}

func encodeOffsetDelete(group string, k tp) []byte {
	e := newEnc(recOffsetDelete)
	e.str(group)
	e.str(k.topic)
	e.int(int64(k.partition))
	return e.b
}

func encodeGroupDelete(group string) []byte {
	e := newEnc(recGroupDelete)
	e.str(group)
	return e.b
}

// encodeGroup records the group's metadata; members only when Stable (a generation whose
// assignment is complete), as Kafka persists group metadata after SyncGroup.
func encodeGroup(g *group) []byte {
	e := newEnc(recGroup)
	e.str(g.id)
	e.str(g.protocolType)
	var ms []*member
	if g.state == Stable {
		e.str(g.protocol)
		ms = g.orderedMembers()
	} else {
		e.str("")
	}
	e.int(int64(g.generation))
	if len(ms) > 0 {
		e.str(g.leader)
	} else {
		e.str("")
	}
	e.int(g.stateSince.UnixMilli())
	e.int(int64(len(ms)))
	for _, m := range ms {
		e.str(m.id)
		e.nstr(m.instanceID)
		e.str(m.clientID)
		e.str(m.host)
		e.int(m.sessionTimeout.Milliseconds())
		e.int(m.rebalanceTimeout.Milliseconds())
		e.bytes(m.metadataFor(g.protocol))
		e.bytes(m.assignment)
	}
	return e.b
}

// applyRecord replays one record into c.groups (before the loop starts).
func (c *Coordinator) applyRecord(rec []byte) error {
	if len(rec) < 2 || rec[0] != 0 {
		return fmt.Errorf("group record: bad header")
	}
	d := &dec{b: rec[2:]}
	id := d.str()
	get := func() *group {
		g := c.groups[id]
		if g == nil {
			g = newGroup(id, time.UnixMilli(0))
			c.groups[id] = g
		}
		return g
	}
	switch rec[1] {
	case recOffset:
		k := tp{topic: d.str(), partition: d.i32()}
		o := offset{offset: d.int(), leaderEpoch: d.i32(), metadata: d.str(), commitTime: d.int(), expireTime: d.int()}
		if d.err == nil {
			g := get()
			g.offsets[k] = o
		}
	case recOffsetDelete:
		k := tp{topic: d.str(), partition: d.i32()}
		if g := c.groups[id]; g != nil && d.err == nil {
			delete(g.offsets, k)
		}
	case recGroupDelete:
		if d.err == nil {
			delete(c.groups, id)
		}
	case recConsumerGroup:
		if err := c.applyConsumerGroup(id, d); err != nil {
			return err
		}
	case recGroupConfig:
		if err := c.applyGroupConfig(id, d); err != nil {
			return err
		}
	case recGroup:
		ptype, proto, gen, leader := d.str(), d.str(), d.i32(), d.str()
		since := time.UnixMilli(d.int())
		n := d.int()
		if n < 0 || n > int64(len(d.b)) {
			return fmt.Errorf("group record: bad member count %d", n)
		}
		var ms []*member
		for i := int64(0); i < n && d.err == nil; i++ {
			m := &member{id: d.str(), instanceID: d.nstr(), clientID: d.str(), host: d.str()}
			m.sessionTimeout = time.Duration(d.int()) * time.Millisecond
			m.rebalanceTimeout = time.Duration(d.int()) * time.Millisecond
			m.protocols = []protocol{{name: proto, metadata: d.bytes()}}
			m.assignment = d.bytes()
			ms = append(ms, m)
		}
		if d.err != nil {
			break
		}
		g := get()
		offsets := g.offsets
		*g = *newGroup(id, since)
		g.offsets = offsets
		g.protocolType, g.generation = ptype, gen
		if len(ms) > 0 {
			g.protocol, g.leader = proto, leader
			for _, m := range ms {
				c.memberSeq++
				m.seq = c.memberSeq
				g.addMember(m)
			}
			g.state = Stable
			g.computeSubscribed()
		}
	default:
		return fmt.Errorf("group record: unknown type %d", rec[1])
	}
	if d.err != nil {
		return fmt.Errorf("group record type %d: %w", rec[1], d.err)
	}
	return nil
}

// load rebuilds the groups from the log.
func (c *Coordinator) load() error {
	if err := c.meta.Replay(c.applyRecord); err != nil {
		return fmt.Errorf("replaying group log: %w", err)
	}
	c.lastSnapshot = c.meta.Size()
	return nil
}

// snapshot is the minimal record list that rebuilds the current state.
func (c *Coordinator) snapshot() [][]byte {
	ids := make([]string, 0, len(c.groups))
	for id := range c.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out [][]byte
	cids := make([]string, 0, len(c.groupConfigs))
	for id := range c.groupConfigs {
		cids = append(cids, id)
	}
	sort.Strings(cids)
	for _, id := range cids {
		out = append(out, encodeGroupConfig(id, c.groupConfigs[id]))
	}
	for _, id := range ids {
		g := c.groups[id]
		switch {
		case g.cg != nil:
			out = append(out, encodeConsumerGroup(g))
		case g.protocolType != "" || g.generation > 0 || len(g.members) > 0:
			out = append(out, encodeGroup(g))
		}
		for k, o := range g.offsets {
			out = append(out, encodeOffset(id, k, o))
		}
	}
	return out
}
