package group

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
)

// checkAssignment asserts every partition of a subscribed topic is assigned exactly once, to
// a member subscribed to it.
func checkAssignment(t *testing.T, s assignSpec, out map[string]assignment) {
	t.Helper()
	owner := map[tp]string{}
	for m, a := range out {
		for topic, ps := range a {
			if !contains(s.subscribed[m], topic) {
				t.Fatalf("%s got %s it is not subscribed to", m, topic)
			}
			for _, p := range ps {
				if o, dup := owner[tp{topic, p}]; dup {
					t.Fatalf("%s-%d assigned to %s and %s", topic, p, o, m)
				}
				owner[tp{topic, p}] = m
			}
		}
	}
	for _, m := range s.members {
		for _, topic := range s.subscribed[m] {
			for p := int32(0); p < s.partitions[topic]; p++ {
				if _, ok := owner[tp{topic, p}]; !ok {
					t.Fatalf("%s-%d unassigned", topic, p)
				}
			}
		}
	}
}

func counts(out map[string]assignment) (lo, hi int) {
	lo = 1 << 30
	for _, a := range out {
		lo, hi = min(lo, a.count()), max(hi, a.count())
	}
	return lo, hi
}

// TestAssignorsHomogeneous: with equal subscriptions both assignors cover every partition,
// uniform balances to within one, and uniform is sticky: a joining member takes only what it
// needs, the others keep the rest.
func TestAssignorsHomogeneous(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for iter := 0; iter < 200; iter++ {
		n := 1 + rng.Intn(8)
		s := assignSpec{subscribed: map[string][]string{}, partitions: map[string]int32{"a": int32(rng.Intn(20)), "b": int32(1 + rng.Intn(7))}}
		for i := 0; i < n; i++ {
			m := fmt.Sprintf("m%d", i)
			s.members = append(s.members, m)
			s.subscribed[m] = []string{"a", "b"}
		}
		total := int(s.partitions["a"] + s.partitions["b"])
		for _, name := range assignorNames {
			out := runAssignor(name, s)
			checkAssignment(t, s, out)
			if lo, hi := counts(out); name == "uniform" && hi-lo > 1 {
				t.Fatalf("uniform unbalanced: %d..%d (%d partitions, %d members)", lo, hi, total, n)
			}
		}
		// Stickiness of uniform: a new member joins.
		prev := runAssignor("uniform", s)
		s2 := s
		s2.members = append(append([]string(nil), s.members...), "new")
		sort.Strings(s2.members)
		s2.subscribed = map[string][]string{"new": {"a", "b"}}
		for m, v := range s.subscribed {
			s2.subscribed[m] = v
		}
		s2.previous = prev
		next := runAssignor("uniform", s2)
		checkAssignment(t, s2, next)
		moved := 0
		for m, a := range prev {
			for topic, ps := range a {
				for _, p := range ps {
					if !next[m].has(topic, p) {
						moved++
					}
				}
			}
		}
		if want := total / (n + 1); moved > want+1 {
			t.Fatalf("uniform moved %d partitions for a new member, at most %d needed (%d partitions, %d members)", moved, want+1, total, n)
		}
	}
}

// TestAssignorsHeterogeneous: members with different subscriptions get only their topics,
// and every partition is assigned.
func TestAssignorsHeterogeneous(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	topics := []string{"a", "b", "c"}
	for iter := 0; iter < 200; iter++ {
		s := assignSpec{subscribed: map[string][]string{}, partitions: map[string]int32{}}
		for _, tn := range topics {
			s.partitions[tn] = int32(rng.Intn(9))
		}
		n := 1 + rng.Intn(6)
		for i := 0; i < n; i++ {
			m := fmt.Sprintf("m%d", i)
			s.members = append(s.members, m)
			var subs []string
			for _, tn := range topics {
				if rng.Intn(2) == 0 {
					subs = append(subs, tn)
				}
			}
			s.subscribed[m] = subs
		}
		for _, name := range assignorNames {
			out := runAssignor(name, s)
			checkAssignment(t, s, out)
			s.previous = out
		}
		checkAssignment(t, s, runAssignor("uniform", s)) // with a previous assignment
	}
}

// TestRangeAssignorCoPartitions: range gives members the same partition numbers of
// co-partitioned topics, the first members one extra.
func TestRangeAssignorCoPartitions(t *testing.T) {
	s := assignSpec{members: []string{"m1", "m2"}, subscribed: map[string][]string{"m1": {"x", "y"}, "m2": {"x", "y"}},
		partitions: map[string]int32{"x": 3, "y": 3}}
	out := assignRange(s)
	if fmtAssignment(out["m1"]) != "[x:0,1 y:0,1]" || fmtAssignment(out["m2"]) != "[x:2 y:2]" {
		t.Fatalf("range: m1 %s m2 %s", fmtAssignment(out["m1"]), fmtAssignment(out["m2"]))
	}
}
