package quota

// Rate is Kafka's windowed rate (org.apache.kafka.common.metrics.stats.Rate over a
// SampledTotal), the measure its client quotas are enforced on: Samples windows of Window
// milliseconds each, a sample started by the first value recorded after the previous one's
// window ended, samples older than Samples*Window forgotten.
//
// The rate is the sum of the samples divided by the time since the oldest sample started,
// which is taken to be at least Samples-1 full windows: a client that starts fresh may send
// up to (Samples-1)*Window*quota at once before it is throttled, exactly as on Kafka.
//
//	samples:  [s0 | s1 | ... | s10]      each Window ms (Kafka: quota.window.size.seconds=1)
//	rate    = sum(samples) / max(now - oldest.start, (Samples-1)*Window + (now-oldest.start)%Window)
//	throttle = (rate - quota) / quota * window    when rate > quota (Kafka's QuotaUtils)
type Rate struct {
	Samples int   // Kafka: quota.window.num, 11
	Window  int64 // ms; Kafka: quota.window.size.seconds, 1 s
	samples []sample
	cur     int
}

type sample struct {
	start int64 // ms
	value float64
}

// Record adds v at time now (ms).
func (r *Rate) Record(v float64, now int64) {
	if len(r.samples) == 0 {
		r.samples = append(r.samples, sample{start: now})
	}
	s := &r.samples[r.cur]
	if now-s.start >= r.Window {
		r.cur = (r.cur + 1) % r.Samples
		if r.cur >= len(r.samples) {
			r.samples = append(r.samples, sample{start: now})
		} else {
			r.samples[r.cur] = sample{start: now}
		}
		s = &r.samples[r.cur]
	}
	s.value += v
}

// purge resets samples that have aged out (Kafka: purgeObsoleteSamples).
func (r *Rate) purge(now int64) {
	expire := int64(r.Samples) * r.Window
	for i := range r.samples {
		if now-r.samples[i].start >= expire {
			r.samples[i] = sample{start: now}
		}
	}
}

// windowMs is the time the rate is measured over (Kafka: Rate.windowSize).
func (r *Rate) windowMs(now int64) int64 {
	r.purge(now)
	if len(r.samples) == 0 {
		r.samples = append(r.samples, sample{start: now})
	}
	oldest := r.samples[0].start
	for _, s := range r.samples[1:] {
		oldest = min(oldest, s.start)
	}
	elapsed := now - oldest
	if full, minFull := elapsed/r.Window, int64(r.Samples-1); full < minFull {
		elapsed += (minFull - full) * r.Window
	}
	return max(elapsed, 1)
}

// Measure returns the rate per second at now.
func (r *Rate) Measure(now int64) float64 {
	w := r.windowMs(now)
	var total float64
	for _, s := range r.samples {
		total += s.value
	}
	return total / (float64(w) / 1000)
}

// Throttle returns how long (ms) the client must wait to bring the rate at now back to
// bound, 0 when it is within it (Kafka: Sensor.record's quota check, then
// QuotaUtils.throttleTime: (rate - bound) / bound * window).
func (r *Rate) Throttle(bound float64, now int64) int64 {
	rate := r.Measure(now)
	if rate <= bound {
		return 0
	}
	ms := (rate - bound) / bound * float64(r.windowMs(now))
	return int64(ms + 0.5)
}
