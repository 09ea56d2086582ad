package quota

// Controller mutation quotas (KIP-599): controller_mutation_rate bounds the partitions a
// client creates or deletes per second through CreateTopics, CreatePartitions and
// DeleteTopics. Kafka measures it with a token bucket, not the windowed Rate of the byte
// quotas (org.apache.kafka.common.metrics.stats.TokenBucket):
//
//	burst  = samples * window * quota          (11 s of the quota with Kafka's defaults)
//	tokens = min(burst, tokens + quota * elapsed_seconds)    refilled at every look
//	record(n): tokens = min(burst, tokens - n)               may go negative (debt)
//	throttle  = round(-tokens / quota * 1000) ms             while tokens < 0
//
// A bucket starts full. How a request meets it depends on its version, as Kafka's
// ControllerMutationQuotaManager: from CreateTopics v6, CreatePartitions v3 and DeleteTopics
// v5 the quota is strict: a topic whose turn comes while the bucket is in debt is refused
// with THROTTLING_QUOTA_EXCEEDED and the answer carries the throttle time; a topic that
// finds tokens (even one) goes through and may overdraw them. Older versions are permissive:
// every topic goes through, and an overdrawn bucket only throttles the answer.

import "math"

type bucket struct {
	tokens   float64
	last     int64 // ms of the last refill
	lastUsed int64
	bound    float64 // the quota at the last look (burst follows it)
	burstSec float64 // samples * window, in seconds
}

func (b *bucket) refill(now int64) {
	burst := b.burstSec * b.bound
	b.tokens = min(burst, b.tokens+b.bound*float64(now-b.last)/1000)
	b.last = now
}

func (b *bucket) tokensAt(now int64) float64 {
	b.refill(now)
	return b.tokens
}

func (b *bucket) full(now int64) bool {
	return b.tokensAt(now) >= b.burstSec*b.bound
}

func (b *bucket) throttleMs() int64 {
	if b.tokens >= 0 || b.bound <= 0 {
		return 0
	}
	return int64(math.Round(-b.tokens / b.bound * 1000))
}

// MutationQuota is one request's view of its controller_mutation_rate quota (Kafka's
// StrictControllerMutationQuota / PermissiveControllerMutationQuota). The zero value (no quota
// applies) admits everything.
type MutationQuota struct {
	m      *Manager
	g      group
	bound  float64
	strict bool
	on     bool
	// The last throttle decided and when (ms): the answer carries what is left of it.
	throttleMs, at int64
}

// Mutations returns the controller mutation quota of a request of (user, clientID); strict
// as the request's version decides (see the top of this file).
func (m *Manager) Mutations(user, clientID string, strict bool) *MutationQuota {
	bound, g, ok := m.store.Resolve(ControllerMutationRate, user, clientID)
	if !ok {
		return &MutationQuota{}
	}
	return &MutationQuota{m: m, g: g, bound: bound, strict: strict, on: true}
}

// Admit records n partitions mutated at now (ms). It returns false, with the throttle time
// to report, when a strict quota refuses them (the bucket was already in debt).
func (q *MutationQuota) Admit(n int, now int64) (ok bool) {
	if q == nil || !q.on {
		return true
	}
	m := q.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	b := m.buckets[q.g]
	if b == nil {
		// Full from the start: Kafka's bucket begins empty at time 0 and its first refill
		// covers the whole epoch.
		b = &bucket{burstSec: float64(m.mutSamples) * float64(m.mutWindowMs) / 1000, bound: q.bound, last: now}
		b.tokens = b.burstSec * q.bound
		m.buckets[q.g] = b
	}
	b.lastUsed = now
	b.refill(now)
	b.bound = q.bound
	if q.strict && b.tokens < 0 {
		q.throttleMs, q.at = b.throttleMs(), now
		return false
	}
	b.tokens = min(b.burstSec*b.bound, b.tokens-float64(n))
	m.statLocked(q.g, now).value += float64(n)
	if !q.strict {
		if ms := b.throttleMs(); ms > 0 {
			q.throttleMs, q.at = ms, now
		}
	}
	return true
}

// ThrottleMs is the throttle time the answer carries at now: what is left of the last one
// decided (Kafka's AbstractControllerMutationQuota.throttleTime).
func (q *MutationQuota) ThrottleMs(now int64) int64 {
	if q == nil || q.throttleMs == 0 {
		return 0
	}
	return max(0, q.throttleMs-(now-q.at))
}

// Throttled counts the answer's throttle against this quota group (see Manager.Throttled).
func (q *MutationQuota) Throttled(ms, now int64) {
	if q == nil || !q.on || ms <= 0 {
		return
	}
	q.m.mu.Lock()
	defer q.m.mu.Unlock()
	st := q.m.statLocked(q.g, now)
	st.throttled++
	st.throttleMs += ms
}
