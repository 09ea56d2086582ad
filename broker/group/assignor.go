package group

// Server-side assignors of consumer groups (group.consumer.assignors: uniform, range), in
// the spirit of Kafka 4.0's UniformAssignor and RangeAssignor. Both see only the members'
// subscriptions, the partition counts of the subscribed topics and the previous target
// assignment, and must be deterministic so a replayed group computes the same thing.

import "sort"

// assignorNames are the assignors klite offers, the first the default (as Kafka's list).
var assignorNames = []string{"uniform", "range"}

func knownAssignor(name string) bool {
	for _, n := range assignorNames {
		if n == name {
			return true
		}
	}
	return false
}

type assignSpec struct {
	members    []string            // sorted member IDs
	subscribed map[string][]string // member -> sorted topics that exist
	partitions map[string]int32    // topic -> partition count
	previous   map[string]assignment
}

func runAssignor(name string, s assignSpec) map[string]assignment {
	if name == "range" {
		return assignRange(s)
	}
	return assignUniform(s)
}

// assignRange gives each member of a topic's subscribers a contiguous range of its
// partitions, members sorted by ID, the first ones one extra when it does not divide: so
// members subscribed to co-partitioned topics get the same partition numbers of each.
func assignRange(s assignSpec) map[string]assignment {
	out := map[string]assignment{}
	for _, m := range s.members {
		out[m] = assignment{}
	}
	bySubs := map[string][]string{}
	for _, m := range s.members {
		for _, t := range s.subscribed[m] {
			bySubs[t] = append(bySubs[t], m)
		}
	}
	for t, ms := range bySubs {
		n := int(s.partitions[t])
		per, extra := n/len(ms), n%len(ms)
		p := 0
		for i, m := range ms {
			k := per
			if i < extra {
				k++
			}
			for j := 0; j < k; j++ {
				out[m].add(t, int32(p))
				p++
			}
		}
	}
	return out
}

// assignUniform spreads partitions evenly and sticks to the previous target where that
// keeps the balance: every member first keeps what it had up to its quota, then the rest
// goes to the least loaded eligible member. With different subscriptions the quota is per
// partition's eligible members, so partitions with the fewest candidates are placed first.
func assignUniform(s assignSpec) map[string]assignment {
	out := map[string]assignment{}
	count := map[string]int{}
	for _, m := range s.members {
		out[m] = assignment{}
	}
	eligible := map[string][]string{} // topic -> subscribed members
	for _, m := range s.members {
		for _, t := range s.subscribed[m] {
			eligible[t] = append(eligible[t], m)
		}
	}
	type part struct {
		t string
		p int32
	}
	var parts []part
	topics := make([]string, 0, len(eligible))
	for t := range eligible {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		for p := int32(0); p < s.partitions[t]; p++ {
			parts = append(parts, part{t, p})
		}
	}
	total := len(parts)
	if total == 0 || len(s.members) == 0 {
		return out
	}
	// Quota: the most any member may end up with, were everyone eligible for everything.
	quota := (total + len(s.members) - 1) / len(s.members)
	owner := map[part]string{}
	for _, m := range s.members {
		for t, ps := range s.previous[m] {
			for _, p := range ps {
				pt := part{t, p}
				if p < s.partitions[t] && contains(s.subscribed[m], t) {
					owner[pt] = m
				}
			}
		}
	}
	// Members that would hold more than an even share give the surplus back: the first
	// total%n members by load may keep quota, the others quota-1 (when it does not divide).
	floor := total / len(s.members)
	extra := total % len(s.members)
	kept := map[string][]part{}
	for _, pt := range parts {
		if m, ok := owner[pt]; ok {
			kept[m] = append(kept[m], pt)
		}
	}
	byLoad := append([]string(nil), s.members...)
	sort.SliceStable(byLoad, func(i, j int) bool { return len(kept[byLoad[i]]) > len(kept[byLoad[j]]) })
	var free []part
	for _, m := range byLoad {
		limit := floor
		if extra > 0 && len(kept[m]) > floor {
			limit = quota
			extra--
		}
		for i, pt := range kept[m] {
			if i < limit {
				out[m].add(pt.t, pt.p)
				count[m]++
			}
		}
	}
	for _, pt := range parts {
		if m, ok := owner[pt]; !ok || !out[m].has(pt.t, pt.p) {
			free = append(free, pt)
		}
	}
	sort.SliceStable(free, func(i, j int) bool { return len(eligible[free[i].t]) < len(eligible[free[j].t]) })
	for _, pt := range free {
		best := ""
		for _, m := range eligible[pt.t] {
			if best == "" || count[m] < count[best] {
				best = m
			}
		}
		out[best].add(pt.t, pt.p)
		count[best]++
	}
	return out
}

func contains(ss []string, s string) bool {
	i := sort.SearchStrings(ss, s)
	return i < len(ss) && ss[i] == s
}
