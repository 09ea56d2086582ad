package group

import (
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	c := &Coordinator{groups: map[string]*group{}}
	inst := "i"
	g := newGroup("g", time.UnixMilli(1234))
	g.state, g.protocolType, g.protocol, g.generation, g.leader = Stable, "consumer", "range", 7, "m1"
	g.addMember(&member{id: "m1", instanceID: &inst, clientID: "c", host: "/h", sessionTimeout: 10 * time.Second,
		rebalanceTimeout: time.Minute, protocols: []protocol{{"range", []byte("md")}}, assignment: []byte("as")})
	recs := [][]byte{
		encodeOffset("g", tp{"t", 3}, offset{offset: 99, leaderEpoch: 4, metadata: "x", commitTime: 5, expireTime: -1}),
		encodeGroup(g),
		encodeOffset("h", tp{"t", 0}, offset{offset: 1, leaderEpoch: -1}),
		encodeOffsetDelete("h", tp{"t", 0}),
		encodeOffset("dead", tp{"t", 0}, offset{offset: 1}),
		encodeGroupDelete("dead"),
	}
	for _, r := range recs {
		if err := c.applyRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	got := c.groups["g"]
	m := got.members["m1"]
	if got.state != Stable || got.generation != 7 || got.leader != "m1" || m == nil || *m.instanceID != "i" ||
		string(m.assignment) != "as" || string(m.metadataFor("range")) != "md" || m.sessionTimeout != 10*time.Second ||
		got.static["i"] != "m1" || got.offsets[tp{"t", 3}].offset != 99 || got.offsets[tp{"t", 3}].metadata != "x" {
		t.Fatalf("replayed group %+v member %+v", got, m)
	}
	if len(c.groups["h"].offsets) != 0 || c.groups["dead"] != nil {
		t.Fatal("deletes not replayed")
	}
}

func FuzzApplyRecord(f *testing.F) {
	g := newGroup("g", time.UnixMilli(1))
	g.state, g.protocolType, g.protocol = Stable, "consumer", "range"
	g.addMember(&member{id: "m", protocols: []protocol{{"range", []byte{1}}}})
	f.Add(encodeGroup(g))
	f.Add(encodeOffset("g", tp{"t", 1}, offset{offset: 5, metadata: "m"}))
	f.Add(encodeOffsetDelete("g", tp{"t", 1}))
	f.Add(encodeGroupDelete("g"))
	f.Add(encodeConsumerGroup(testConsumerGroup()))
	f.Add(encodeGroupConfig("g", map[string]string{"consumer.session.timeout.ms": "50000"}))
	f.Fuzz(func(t *testing.T, rec []byte) {
		c := &Coordinator{groups: map[string]*group{}}
		_ = c.applyRecord(rec) // must not panic or allocate unboundedly
	})
}

func testConsumerGroup() *group {
	g := newGroup("cg", time.UnixMilli(99))
	g.protocolType, g.state = "consumer", Stable
	g.cg = newCgroup()
	inst, rack, re := "i1", "r1", "t.*"
	g.cg.epoch, g.cg.assignEpoch = 5, 5
	g.cg.partitions = map[string]int32{"t": 3, "u": 1}
	m := &cmember{id: "m1", instanceID: &inst, rackID: &rack, clientID: "c", host: "/h", epoch: 4, prevEpoch: 3,
		state: msUnrevoked, rebalance: time.Minute, subscribed: []string{"t", "u"}, names: []string{"u"}, regex: &re, assignor: "range",
		assigned: assignment{"t": {0, 1}}, revoking: assignment{"u": {0}}}
	g.cg.members["m1"] = m
	g.cg.static["i1"] = "m1"
	g.cg.target["m1"] = assignment{"t": {0, 1, 2}}
	// A classic member (online upgrade): its session timeout and protocols are kept too.
	g.cg.members["m2"] = &cmember{id: "m2", clientID: "c2", host: "/h", epoch: 5, prevEpoch: 5, rebalance: time.Second,
		subscribed: []string{"t"}, names: []string{"t"}, assigned: assignment{}, revoking: assignment{},
		classic: &classicMeta{session: 7 * time.Second, protocols: []protocol{{"range", []byte("r")}, {"roundrobin", []byte("rr")}}}}
	return g
}

func TestConsumerGroupRecordRoundTrip(t *testing.T) {
	c := &Coordinator{groups: map[string]*group{}}
	for _, r := range [][]byte{
		encodeOffset("cg", tp{"t", 0}, offset{offset: 7, leaderEpoch: -1}),
		encodeConsumerGroup(testConsumerGroup()),
	} {
		if err := c.applyRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	g := c.groups["cg"]
	if g == nil || g.cg == nil || g.state != Stable || g.generation != 5 || g.offsets[tp{"t", 0}].offset != 7 {
		t.Fatalf("replayed group %+v", g)
	}
	m := g.cg.members["m1"]
	if m == nil || m.epoch != 4 || m.prevEpoch != 3 || m.state != msUnrevoked || *m.instanceID != "i1" || *m.rackID != "r1" ||
		*m.regex != "t.*" || m.assignor != "range" || m.rebalance != time.Minute || !equalStrings(m.subscribed, []string{"t", "u"}) ||
		!m.assigned.equal(assignment{"t": {0, 1}}) || !m.revoking.equal(assignment{"u": {0}}) ||
		!g.cg.target["m1"].equal(assignment{"t": {0, 1, 2}}) || g.cg.static["i1"] != "m1" ||
		g.cg.ownerOf[tp{"u", 0}] != "m1" || g.cg.partitions["t"] != 3 ||
		!equalStrings(m.names, []string{"u"}) || !equalStrings(g.cg.regexes["t.*"], []string{"t"}) || m.classic != nil {
		t.Fatalf("replayed member %+v, group %+v", m, g.cg)
	}
	m2 := g.cg.members["m2"]
	if m2 == nil || m2.classic == nil || m2.classic.session != 7*time.Second || len(m2.classic.protocols) != 2 ||
		m2.protocolName() != "range" || string(m2.classic.protocols[1].metadata) != "rr" {
		t.Fatalf("replayed classic member %+v", m2)
	}
	// A record of an older build has no classic section: its members use the consumer protocol.
	old := newGroup("old", time.UnixMilli(1))
	old.protocolType, old.cg = "consumer", newCgroup()
	old.cg.members["m"] = &cmember{id: "m", assigned: assignment{}, revoking: assignment{}}
	rec := encodeConsumerGroup(old)
	if err := c.applyRecord(rec[:len(rec)-1]); err != nil || c.groups["old"].cg.members["m"] == nil {
		t.Fatalf("record without the classic section: %v", err)
	}
	// A classic section naming no member is refused.
	// (count 1; id "x"; session 1 ms; 1 protocol: "p", no metadata)
	bad := append(rec[:len(rec)-1:len(rec)-1], 2, 1, 'x', 2, 2, 1, 'p', 0)
	if err := c.applyRecord(bad); err == nil {
		t.Fatal("a classic section naming an unknown member was accepted")
	}
	// A classic group record for the same ID replaces the consumer group (a conversion).
	cl := newGroup("cg", time.UnixMilli(100))
	cl.protocolType = "consumer"
	if err := c.applyRecord(encodeGroup(cl)); err != nil {
		t.Fatal(err)
	}
	if c.groups["cg"].cg != nil || c.groups["cg"].offsets[tp{"t", 0}].offset != 7 {
		t.Fatal("classic record did not replace the consumer group, or lost its offsets")
	}
}
