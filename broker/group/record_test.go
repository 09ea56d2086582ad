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
	f.Fuzz(func(t *testing.T, rec []byte) {
		c := &Coordinator{groups: map[string]*group{}}
		_ = c.applyRecord(rec) // must not panic or allocate unboundedly
	})
}
