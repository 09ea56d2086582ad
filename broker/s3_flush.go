package broker

// The S3 tier's data path at run time (README, "S3 tier"): one flusher goroutine per broker
//
//   - seals every partition tail whose oldest batch is --s3-flush-interval old (tails also
//     seal at --s3-target-object-bytes, the Log's roll size), so the loss window after
//     losing the disk is about the flush interval;
//   - uploads what S3 lacks (logstore.TieredStore.Sync: sealed segments and changed
//     checkpoints), a few partitions in parallel, with backoff (1 s doubling to 30 s) after
//     a failed round; uploads run here, never on the produce path;
//   - evicts local copies of confirmed segments, oldest first, while local segment bytes
//     pass --s3-local-budget-bytes (reads of them then go to S3 through the block cache);
//   - closes the produce gate while the bytes only the local disk holds (unconfirmed
//     segments plus the unsealed tails) reach that budget, or after the lease was lost:
//     Produce then answers KAFKA_STORAGE_ERROR rather than dropping anything, and opens it
//     again when the backlog drained;
//   - logs the flush lag every flush interval while it is not zero.
//
// Close seals every tail and runs a final round bounded by S3Config.FinalFlushTimeout.

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klite/klite/broker/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
)

const (
	s3UploadParallel = 4
	s3BackoffMin     = time.Second
	s3BackoffMax     = 30 * time.Second
	s3GateEvery      = 20 * time.Millisecond
	// defaultS3LocalBudget: local disk for partition segments with S3 configured.
	defaultS3LocalBudget = 10 << 30
	// defaultS3FinalFlush bounds Close's last upload round.
	defaultS3FinalFlush = 30 * time.Second
)

// Produce gate states.
const (
	s3GateOpen int32 = iota
	s3GateBudget
	s3GateLeaseLost
)

// s3Flusher is the S3 tier's run-time data state.
type s3Flusher struct {
	tiered *logstore.TieredStore
	gate   atomic.Int32

	roundMu sync.Mutex // one upload round at a time (the upload loop, Close's final round)
	lastLag time.Time  // ticker loop only

	purgeMu sync.Mutex
	purge   map[string]bool // topic prefixes ("<topic-id>/") whose S3 objects must go
}

// purgeS3Topic queues the deletion of a deleted topic's S3 objects (the upload loop runs
// it, retrying until S3 answers).
func (b *Broker) purgeS3Topic(id [16]byte) {
	s := b.s3
	if s == nil || s.flush == nil {
		return
	}
	f := s.flush
	f.purgeMu.Lock()
	if f.purge == nil {
		f.purge = map[string]bool{}
	}
	f.purge[fmt.Sprintf("%x/", id)] = true
	f.purgeMu.Unlock()
}

// s3Purge deletes the queued topics' S3 objects.
func (b *Broker) s3Purge(s *s3State) error {
	f := s.flush
	f.purgeMu.Lock()
	var prefixes []string
	for p := range f.purge {
		prefixes = append(prefixes, p)
	}
	f.purgeMu.Unlock()
	for _, p := range prefixes {
		n, err := f.tiered.Purge(p)
		if err != nil {
			return fmt.Errorf("deleting a deleted topic's S3 objects under %s: %w", p, err)
		}
		if n > 0 {
			b.log.Info("S3 tier: deleted a deleted topic's objects", "prefix", p, "objects", n)
		}
		f.purgeMu.Lock()
		delete(f.purge, p)
		f.purgeMu.Unlock()
	}
	return nil
}

// s3ProduceGate is KAFKA_STORAGE_ERROR (and why) while produce must be refused.
func (b *Broker) s3ProduceGate() (*kerr.Error, string) {
	s := b.s3
	if s == nil {
		return nil, ""
	}
	if s.lost.Load() {
		return kerr.KafkaStorageError, "another broker took over this broker's S3 prefix; this broker no longer accepts writes"
	}
	if s.flush == nil {
		return nil, ""
	}
	switch s.flush.gate.Load() {
	case s3GateBudget:
		return kerr.KafkaStorageError, "the S3 tier's local budget is used by data not yet in S3 (S3 unreachable or slow); retry later"
	case s3GateLeaseLost:
		return kerr.KafkaStorageError, "another broker took over this broker's S3 prefix; this broker no longer accepts writes"
	}
	return nil, ""
}

func (c S3Config) localBudget() int64 {
	if c.LocalBudgetBytes > 0 {
		return c.LocalBudgetBytes
	}
	return defaultS3LocalBudget
}

func (c S3Config) flushInterval() time.Duration {
	if c.FlushInterval > 0 {
		return c.FlushInterval
	}
	return 10 * time.Second
}

// runS3Flush is the flusher: a ticker loop that seals, gates, evicts and logs, and an
// upload loop beside it, so that an upload waiting on a slow or unreachable S3 delays
// neither the sealing by age nor the produce gate.
func (b *Broker) runS3Flush(s *s3State) {
	defer s.flushWG.Done()
	fi := s.cfg.flushInterval()
	tick := min(max(fi/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	// The produce gate follows the bytes more closely than the sealing does: at the
	// produce rates of one broker, a second lets far more than a budget's margin in.
	gate := time.NewTicker(s3GateEvery)
	defer gate.Stop()
	kick := make(chan struct{}, 1)
	uploaderDone := make(chan struct{})
	go func() {
		defer close(uploaderDone)
		b.runS3Uploads(s, kick)
	}()
	defer func() { <-uploaderDone }()
	for {
		select {
		case <-s.flushStop:
			return
		case <-gate.C:
			b.s3UpdateGate(s)
			continue
		case <-t.C:
		}
		b.s3Step(s, false)
		select {
		case kick <- struct{}{}:
		default: // a round is running or already asked for
		}
	}
}

// runS3Uploads runs an upload round each time it is kicked, backing off (1 s doubling to
// 30 s) after a failed round.
func (b *Broker) runS3Uploads(s *s3State, kick <-chan struct{}) {
	var backoff time.Duration
	for {
		select {
		case <-s.flushStop:
			return
		case <-kick:
		}
		err := b.s3Round(s)
		if err == nil {
			if backoff > 0 {
				b.log.Info("S3 tier: uploads succeed again")
			}
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, s3BackoffMin), s3BackoffMax)
		b.log.Warn("S3 tier: upload round failed; backing off", "err", err, "retry_in", backoff)
		select {
		case <-s.flushStop:
			return
		case <-time.After(backoff):
		}
	}
}

// s3Step is one pass of the ticker loop: seal tails by age, evict, gate, log the lag when
// due. The final pass (Close) seals every tail and runs an upload round itself.
func (b *Broker) s3Step(s *s3State, final bool) {
	f := s.flush
	fi := s.cfg.flushInterval()
	now := b.now()
	cutoff := now.Add(-fi).UnixMilli()
	if final {
		cutoff = math.MaxInt64
	}
	if err := b.drain.SealOlderThan(cutoff); err != nil {
		b.log.Warn("S3 tier: sealing partition tails failed; retrying", "err", err)
	}
	if final {
		if err := b.s3Round(s); err != nil {
			b.log.Error("S3 tier: the final upload round failed; what was not uploaded stays on local disk", "err", err)
		}
	}
	if n, freed, err := f.tiered.Evict(s.cfg.localBudget()); err != nil {
		b.log.Warn("S3 tier: evicting local segments failed", "err", err)
	} else if n > 0 {
		b.log.Debug("S3 tier: evicted local segments confirmed in S3", "segments", n, "bytes", freed)
	}
	b.s3UpdateGate(s)
	if now.Sub(f.lastLag) >= fi {
		f.lastLag = now
		b.logS3Lag()
	}
}

// s3Round uploads every partition with something pending, s3UploadParallel at a time.
func (b *Broker) s3Round(s *s3State) error {
	f := s.flush
	f.roundMu.Lock()
	defer f.roundMu.Unlock()
	if s.lost.Load() {
		return fmt.Errorf("S3 tier: the lease was lost; uploads stopped")
	}
	if !s.canWrite() {
		return logstore.ErrUploadNotAllowed
	}
	if err := b.s3Purge(s); err != nil {
		return err
	}
	pending := f.tiered.Pending()
	if len(pending) == 0 {
		return nil
	}
	work := make(chan string)
	errs := make(chan error, len(pending))
	var wg sync.WaitGroup
	for i := 0; i < min(s3UploadParallel, len(pending)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for prefix := range work {
				if _, err := f.tiered.Sync(prefix); err != nil {
					errs <- fmt.Errorf("%s: %w", prefix, err)
				}
			}
		}()
	}
	for _, p := range pending {
		work <- p
	}
	close(work)
	wg.Wait()
	close(errs)
	var first error
	n := 0
	for err := range errs {
		if first == nil {
			first = err
		}
		n++
	}
	if n > 0 {
		return fmt.Errorf("%d of %d partitions: %w", n, len(pending), first)
	}
	return nil
}

// s3UpdateGate opens or closes the produce gate.
func (b *Broker) s3UpdateGate(s *s3State) {
	f := s.flush
	if s.lost.Load() {
		f.gate.Store(s3GateLeaseLost)
		return
	}
	held := f.tiered.Stats().UnconfirmedBytes + b.drain.TailBytes()
	old := f.gate.Load()
	switch {
	case held >= s.cfg.localBudget():
		if old != s3GateBudget {
			b.log.Error("S3 tier: the local budget is used by data not yet in S3; produce answers KAFKA_STORAGE_ERROR until S3 takes the backlog",
				"unconfirmed_bytes", held, "budget", s.cfg.localBudget())
		}
		f.gate.Store(s3GateBudget)
	default:
		if old == s3GateBudget {
			b.log.Info("S3 tier: the backlog drained below the local budget; produce resumes", "unconfirmed_bytes", held)
		}
		f.gate.Store(s3GateOpen)
	}
}

// S3FlushLag is what only the local disk holds: the bytes of sealed segments not yet
// confirmed in S3 plus the unsealed partition tails, and the age of the oldest of them
// (zero when nothing is pending, or without S3).
func (b *Broker) S3FlushLag() (bytes int64, age time.Duration) {
	per := b.s3LagByPartition()
	now := b.now().UnixMilli()
	oldest := int64(math.MaxInt64)
	for _, l := range per {
		bytes += l.Bytes
		oldest = min(oldest, l.OldestMs)
	}
	if len(per) == 0 {
		return 0, 0
	}
	return bytes, time.Duration(max(now-oldest, 0)) * time.Millisecond
}

// S3Requests counts the requests sent to S3 for partition data, by operation (PutObject,
// GetObject, ...), retries and multipart parts included; nil without S3.
func (b *Broker) S3Requests() map[string]int64 {
	if s := b.s3; s != nil {
		return s.logs.Requests()
	}
	return nil
}

// S3TierStats are the tiered store's byte counts (zero without S3).
func (b *Broker) S3TierStats() logstore.TierStats {
	if s := b.s3; s != nil && s.flush != nil {
		return s.flush.tiered.Stats()
	}
	return logstore.TierStats{}
}

func (b *Broker) s3LagByPartition() map[string]logstore.PrefixLag {
	s := b.s3
	if s == nil || s.flush == nil {
		return nil
	}
	per := s.flush.tiered.Lag()
	for k, l := range b.drain.TailLag() {
		cur, ok := per[k]
		cur.Bytes += l.Bytes
		if !ok || l.OldestMs < cur.OldestMs {
			cur.OldestMs = l.OldestMs
		}
		per[k] = cur
	}
	return per
}

// logS3Lag logs the flush lag, total and for the partitions furthest behind.
func (b *Broker) logS3Lag() {
	per := b.s3LagByPartition()
	if len(per) == 0 {
		return
	}
	bytes, age := b.S3FlushLag()
	type pl struct {
		key string
		logstore.PrefixLag
	}
	var list []pl
	for k, l := range per {
		list = append(list, pl{k, l})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Bytes > list[j].Bytes })
	now := b.now().UnixMilli()
	args := []any{"bytes", bytes, "age", age.Round(time.Millisecond), "partitions", len(per)}
	for i, l := range list[:min(len(list), 3)] {
		args = append(args, fmt.Sprintf("p%d", i), fmt.Sprintf("%s %dB %dms", b.partitionName(l.key), l.Bytes, max(now-l.OldestMs, 0)))
	}
	b.log.Info("S3 tier: flush lag", args...)
}

// partitionName turns a partition key (topic ID / partition) into topic-partition.
func (b *Broker) partitionName(key string) string {
	for _, p := range b.livePartitions() {
		if p.key() == key {
			return fmt.Sprintf("%s-%d", p.t.name, p.idx)
		}
	}
	return key
}

// finalS3Flush seals every tail and runs one upload round, bounded by the deadline (Close).
func (b *Broker) finalS3Flush(s *s3State) {
	if s.flush == nil || b.drain == nil {
		return
	}
	d := s.cfg.FinalFlushTimeout
	if d <= 0 {
		d = defaultS3FinalFlush
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.s3Step(s, true)
	}()
	select {
	case <-done:
		bytes, _ := b.S3FlushLag()
		b.log.Info("S3 tier: final upload round done", "not_uploaded_bytes", bytes)
	case <-time.After(d):
		b.log.Error("S3 tier: the final upload round did not finish in time; the rest stays on local disk", "deadline", d)
	}
}
