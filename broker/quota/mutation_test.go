package quota

import "testing"

// TestMutationQuotaStrict follows Kafka's token bucket with a 2 partitions/s quota over
// 11 one-second samples (burst 22): a topic goes through while the bucket has tokens and may
// overdraw it; the next is refused with the debt's throttle time, which runs down with time.
func TestMutationQuotaStrict(t *testing.T) {
	s := NewStore()
	s.Apply(Change{Entity: Entity{ClientID: DefaultName}, Key: ControllerMutationRate, Value: 2})
	m := NewManager(s, 11, 1000)
	q := m.Mutations("u", "admin", true)
	if !q.Admit(20, 1000) || !q.Admit(5, 1000) { // 22 -> 2 -> -3
		t.Fatal("refused while the bucket had tokens")
	}
	if q.ThrottleMs(1000) != 0 {
		t.Fatalf("strict quota throttles %d ms without a refusal", q.ThrottleMs(1000))
	}
	if q.Admit(1, 1000) {
		t.Fatal("admitted while the bucket is 3 tokens in debt")
	}
	if got := q.ThrottleMs(1000); got != 1500 { // 3 / 2 per second
		t.Fatalf("throttle %d ms, want 1500", got)
	}
	if got := q.ThrottleMs(1400); got != 1100 {
		t.Fatalf("throttle 400 ms later %d ms, want 1100", got)
	}
	// 1.5 s later the debt is paid (tokens 0, not negative): admitted again.
	if q2 := m.Mutations("u", "admin", true); !q2.Admit(1, 2500) {
		t.Fatal("refused once the debt was paid")
	}
	// Another client-id has a bucket of its own (the default client-id quota).
	if q3 := m.Mutations("u", "other", true); !q3.Admit(22, 2500) {
		t.Fatal("another client-id refused")
	}
	// Unquoted (no quota for the key at all): always admitted.
	s2 := NewStore()
	if q4 := NewManager(s2, 11, 1000).Mutations("u", "x", true); !q4.Admit(1000, 0) || q4.ThrottleMs(0) != 0 {
		t.Fatal("no quota: refused or throttled")
	}
	st := statsBy(m.Stats(2500))
	if got := st["admin"]; got.Usage != 26 || got.Limit != 2 || !got.HasTokens || got.Tokens != -1 {
		t.Fatalf("admin stats %+v, want usage 26, limit 2, tokens -1", got)
	}
}

// TestMutationQuotaPermissive: older versions always go through; the debt throttles the
// answer (round(-tokens / quota * 1000)).
func TestMutationQuotaPermissive(t *testing.T) {
	s := NewStore()
	s.Apply(Change{Entity: Entity{User: Named("alice")}, Key: ControllerMutationRate, Value: 4})
	m := NewManager(s, 11, 1000)
	m.SetMutationWindow(2, 500) // burst 4 * 2 * 0.5 s = 4
	q := m.Mutations("alice", "c", false)
	if !q.Admit(3, 0) || q.ThrottleMs(0) != 0 {
		t.Fatal("within the burst: refused or throttled")
	}
	if !q.Admit(7, 0) { // 1 - 7 = -6
		t.Fatal("permissive quota refused")
	}
	if got := q.ThrottleMs(0); got != 1500 {
		t.Fatalf("throttle %d ms, want 1500", got)
	}
	q.Throttled(1500, 0)
	st := statsBy(m.Stats(0))
	if got := st[""]; got.User != "alice" || got.Throttled != 1 || got.ThrottleMs != 1500 || got.Usage != 10 {
		t.Fatalf("stats %+v", got)
	}
}

// TestManagerStatsAndUnrecord: usage, throttles and the windowed rate per quota group; a
// byte count taken back (a throttled Fetch) leaves neither usage nor rate behind.
func TestManagerStatsAndUnrecord(t *testing.T) {
	s := NewStore()
	s.Apply(Change{Entity: Entity{ClientID: Named("app")}, Key: ConsumerByteRate, Value: 100})
	m := NewManager(s, 11, 1000)
	m.Record(ConsumerByteRate, "a", "app", 500, 0)
	m.Record(ConsumerByteRate, "a", "app", 2000, 0)
	m.Unrecord(ConsumerByteRate, "a", "app", 2000, 0)
	m.Throttled(ConsumerByteRate, "a", "app", 40, 0)
	m.Throttled(ConsumerByteRate, "a", "app", 2, 0)
	m.Throttled(ConsumerByteRate, "a", "nobody", 7, 0) // no quota: not counted
	st := statsBy(m.Stats(0))
	got := st["app"]
	if len(st) != 1 || got.Key != ConsumerByteRate || got.Usage != 500 || got.Throttled != 2 || got.ThrottleMs != 42 ||
		!got.HasRate || got.Rate != 50 || got.Limit != 100 {
		t.Fatalf("stats %+v (all %v)", got, st)
	}
	// A group idle for an hour is forgotten.
	m.Record(ConsumerByteRate, "a", "app", 1, 3600*1000+12000)
	if st := statsBy(m.Stats(2 * 3600 * 1000)); len(st) != 1 {
		t.Fatalf("stats after an hour: %v", st)
	}
	s.Apply(Change{Entity: Entity{ClientID: Named("b")}, Key: ConsumerByteRate, Value: 100})
	m.Record(ConsumerByteRate, "a", "b", 1, 3*3600*1000) // sweeps
	if st := statsBy(m.Stats(3 * 3600 * 1000)); len(st) != 1 || st["b"].Usage != 1 {
		t.Fatalf("stats of an idle group kept: %v", st)
	}
}

func statsBy(s []Stat) map[string]Stat {
	out := map[string]Stat{}
	for _, x := range s {
		out[x.ClientID] = x
	}
	return out
}
