package quota

import (
	"sync"
	"time"
)

// Kafka's defaults for the quota window (quota.window.num, quota.window.size.seconds).
const (
	DefaultSamples  = 11
	DefaultWindowMs = 1000
)

// Manager enforces the byte-rate quotas of a Store. Each quota applies to a group of
// connections named by a (user, client-id) pair of tags, chosen as Kafka's default quota
// callback chooses them (ClientQuotaManager.DefaultQuotaCallback): a quota on
// user+client-id is shared by that pair, one on a user alone by all of the user's clients, one
// on a client-id alone by that client-id of every user; default entities give each user or
// client its own quota of that size.
type Manager struct {
	store    *Store
	samples  int
	windowMs int64
	// The controller mutation buckets' window (Kafka's controller.quota.window.*).
	mutSamples  int
	mutWindowMs int64

	mu        sync.Mutex
	groups    map[group]*groupRate
	buckets   map[group]*bucket // controller_mutation_rate (mutation.go)
	stats     map[group]*groupStats
	lastSweep int64
}

type group struct {
	key          string // the quota key: producer_byte_rate, consumer_byte_rate
	user, client string // Kafka's metric tags; "" where the quota is not per that type
}

type groupRate struct {
	rate     Rate
	lastUsed int64
}

// NewManager enforces the quotas of s over samples windows of windowMs (0: Kafka's defaults).
func NewManager(s *Store, samples int, windowMs int64) *Manager {
	if samples < 1 {
		samples = DefaultSamples
	}
	if windowMs <= 0 {
		windowMs = DefaultWindowMs
	}
	return &Manager{store: s, samples: samples, windowMs: windowMs, mutSamples: DefaultSamples, mutWindowMs: DefaultWindowMs,
		groups:  map[group]*groupRate{},
		buckets: map[group]*bucket{}, stats: map[group]*groupStats{}}
}

// Resolve returns the quota of key for a connection of user (the principal's name, e.g.
// "ANONYMOUS") and clientID, and the group sharing it; ok false when no quota applies.
// The precedence is Kafka's (KIP-55):
//
//	1 user+client-id  2 user+default client-id  3 user  4 default user+client-id
//	5 default user+default client-id  6 default user  7 client-id  8 default client-id
func (s *Store) Resolve(key, user, clientID string) (bound float64, g group, ok bool) {
	if !s.any.Load() {
		return 0, group{}, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	has := func(u, c Name) bool {
		_, ok := s.lookupLocked(Entity{User: u, ClientID: c}, key)
		return ok
	}
	U, C := Named(user), Named(clientID)
	none := Name{}
	// The tags (which quota group the connection is in): the first level that has the key.
	g = group{key: key, user: "", client: clientID}
	switch {
	case has(U, C), has(U, DefaultName):
		g.user, g.client = user, clientID
	case has(U, none):
		g.user, g.client = user, ""
	case has(DefaultName, C), has(DefaultName, DefaultName):
		g.user, g.client = user, clientID
	case has(DefaultName, none):
		g.user, g.client = user, ""
	}
	// The limit for those tags (Kafka's quotaLimit).
	var levels [][2]Name
	switch {
	case g.user != "" && g.client != "":
		levels = [][2]Name{{U, C}, {U, DefaultName}, {DefaultName, C}, {DefaultName, DefaultName}}
	case g.user != "":
		levels = [][2]Name{{U, none}, {DefaultName, none}}
	case g.client != "":
		levels = [][2]Name{{none, C}, {none, DefaultName}}
	}
	for _, l := range levels {
		if v, ok := s.lookupLocked(Entity{User: l[0], ClientID: l[1]}, key); ok {
			return v, g, true
		}
	}
	return 0, g, false
}

// Record accounts value (bytes) against the key's quota of (user, clientID) at now (ms)
// and returns the throttle time in ms: 0 when within the quota or when none applies.
func (m *Manager) Record(key, user, clientID string, value float64, now int64) int64 {
	bound, g, ok := m.store.Resolve(key, user, clientID)
	if !ok {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	gr := m.groups[g]
	if gr == nil {
		gr = &groupRate{rate: Rate{Samples: m.samples, Window: m.windowMs}}
		m.groups[g] = gr
	}
	gr.lastUsed = now
	gr.rate.Record(value, now)
	m.statLocked(g, now).value += value
	return gr.rate.Throttle(bound, now)
}

// Unrecord takes value back from the key's rate of (user, clientID), as Kafka's
// unrecordQuotaSensor does when a throttled Fetch is answered without its records.
func (m *Manager) Unrecord(key, user, clientID string, value float64, now int64) {
	_, g, ok := m.store.Resolve(key, user, clientID)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if gr := m.groups[g]; gr != nil {
		gr.rate.Record(-value, now)
	}
	m.statLocked(g, now).value -= value
}

// sweepLocked forgets, at most once a window span, groups idle for longer than the span:
// every sample of theirs has expired, so their rate is zero and forgetting them changes
// nothing (Kafka expires idle quota sensors after an hour).
func (m *Manager) sweepLocked(now int64) {
	span := max(int64(m.samples)*m.windowMs, int64(m.mutSamples)*m.mutWindowMs)
	if now-m.lastSweep < span {
		return
	}
	m.lastSweep = now
	for g, gr := range m.groups {
		if now-gr.lastUsed > span {
			delete(m.groups, g)
		}
	}
	for g, b := range m.buckets {
		// A bucket idle for a window span has refilled far enough to be forgotten only
		// once it is full again; keep it until then.
		if now-b.lastUsed > span && b.full(now) {
			delete(m.buckets, g)
		}
	}
	for g, st := range m.stats {
		if now-st.lastUsed > statsExpiryMs {
			delete(m.stats, g)
		}
	}
}

// Any reports whether any quota is stored (without, nothing needs enforcing).
func (s *Store) Any() bool { return s.any.Load() }

// RecordRequestTime accounts handler time against the request_percentage quota of (user,
// clientID): Kafka counts a request's thread time as a percentage of one second
// (nanos * 100 / 1e9) in a windowed rate whose bound is the quota, and caps the throttle at
// one window. Returns the throttle time in ms.
func (m *Manager) RecordRequestTime(user, clientID string, d time.Duration, now int64) int64 {
	ms := m.Record(RequestPercentage, user, clientID, float64(d.Nanoseconds())*100/1e9, now)
	return min(ms, m.windowMs)
}

// SetMutationWindow sets the controller mutation buckets' window (0: Kafka's defaults, 11
// samples of 1 s); call it before use.
func (m *Manager) SetMutationWindow(samples int, windowMs int64) {
	m.mutSamples, m.mutWindowMs = DefaultSamples, DefaultWindowMs
	if samples > 0 {
		m.mutSamples = samples
	}
	if windowMs > 0 {
		m.mutWindowMs = windowMs
	}
}

// Samples and WindowMs are the quota window (quota.window.num, quota.window.size.seconds).
func (m *Manager) Samples() int { return m.samples }

// WindowMs is one quota sample's length in ms.
func (m *Manager) WindowMs() int64 { return m.windowMs }
