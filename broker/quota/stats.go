package quota

// What the Manager has measured, for the broker's /metrics (Kafka's per-quota-group
// sensors: throttle-time, byte-rate, request-time, mutation-rate, tagged with the group's
// user and client-id). Counters per quota group: how much was used, how many answers were
// throttled and for how long in total. A group unused for an hour is forgotten, as Kafka
// expires an idle quota sensor after an hour (its series then disappear).

// statsExpiryMs is Kafka's inactive quota sensor expiration (one hour).
const statsExpiryMs = 3600 * 1000

type groupStats struct {
	value      float64 // recorded usage in the key's unit (see Stat.Usage)
	throttled  int64   // answers throttled
	throttleMs int64   // their throttle times, summed
	lastUsed   int64
}

// statLocked returns g's stats, created at zero. m.mu held.
func (m *Manager) statLocked(g group, now int64) *groupStats {
	st := m.stats[g]
	if st == nil {
		st = &groupStats{}
		m.stats[g] = st
	}
	st.lastUsed = now
	return st
}

// Throttled counts one answer throttled for ms by the key's quota of (user, clientID). As
// Kafka, only the quota that decided the throttle counts it (the larger of a byte-rate or
// mutation quota and the request quota).
func (m *Manager) Throttled(key, user, clientID string, ms int64, now int64) {
	if ms <= 0 {
		return
	}
	_, g, ok := m.store.Resolve(key, user, clientID)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.statLocked(g, now)
	st.throttled++
	st.throttleMs += ms
}

// Stat is one quota group's measurements.
type Stat struct {
	Key            string // producer_byte_rate, consumer_byte_rate, request_percentage, controller_mutation_rate
	User, ClientID string // the group's tags: "" where the quota is not per that entity type
	// Usage is what was counted against the quota: bytes (byte rates), handler time as
	// Kafka's request-time unit, percent-seconds (request_percentage: 100 is one second of
	// a thread), partitions created or deleted (controller_mutation_rate).
	Usage        float64
	Throttled    int64 // answers throttled by this quota
	ThrottleMs   int64 // their throttle times, summed
	Rate         float64
	HasRate      bool    // Rate is set: the group has a windowed rate (not a mutation bucket) alive
	Limit        float64 // the quota's current value; 0 if it was removed
	Tokens       float64 // controller_mutation_rate: the bucket's tokens (negative: in debt)
	HasTokens    bool
	LastActivity int64 // ms
}

// Stats returns every quota group's measurements at now (ms).
func (m *Manager) Stats(now int64) []Stat {
	m.mu.Lock()
	out := make([]Stat, 0, len(m.stats))
	for g, st := range m.stats {
		s := Stat{Key: g.key, User: g.user, ClientID: g.client, Usage: st.value, Throttled: st.throttled,
			ThrottleMs: st.throttleMs, LastActivity: st.lastUsed}
		if gr := m.groups[g]; gr != nil {
			s.Rate, s.HasRate = gr.rate.Measure(now), true
		}
		if b := m.buckets[g]; b != nil {
			s.Tokens, s.HasTokens = b.tokensAt(now), true
		}
		out = append(out, s)
	}
	m.mu.Unlock()
	for i := range out {
		s := &out[i]
		user, client := s.User, s.ClientID
		if bound, g, ok := m.store.Resolve(s.Key, user, client); ok && g.user == user && g.client == client {
			s.Limit = bound
		}
	}
	return out
}
