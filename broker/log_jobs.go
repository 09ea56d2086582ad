package broker

// Background work on the partition logs (the jobs loop) and the WAL trim it drives: see
// partition_log.go for the design.

import (
	"errors"
	"fmt"
	"math"
	rtmetrics "runtime/metrics"
	"strconv"
	"time"

	"github.com/klite/klite/broker/logstore"
	"golang.org/x/time/rate"
)

const (
	defaultRetentionCheckInterval = 5 * time.Minute
	defaultCompactionBackoff      = 15 * time.Second
	// cleanerBytesPerSec bounds the cleaner's reads and writes so producers do not stall.
	cleanerBytesPerSec = 64 << 20
)

// cleanerLimit is shared by every Log's cleaner.
var cleanerLimit = rate.NewLimiter(cleanerBytesPerSec, 1<<20)

func (b *Broker) startJobs() {
	b.jobsStop = make(chan struct{})
	b.jobsDone = make(chan struct{})
	go b.runJobs()
}

func (b *Broker) stopJobs() {
	if b.jobsStop == nil {
		return
	}
	close(b.jobsStop)
	<-b.jobsDone
}

func (b *Broker) runJobs() {
	defer close(b.jobsDone)
	retention, backoff := b.cfg.RetentionCheckInterval, b.cfg.CompactionBackoff
	if retention <= 0 {
		retention = defaultRetentionCheckInterval
	}
	if backoff <= 0 {
		backoff = defaultCompactionBackoff
	}
	trimEvery := b.cfg.WALTrimInterval
	if trimEvery <= 0 {
		trimEvery = defaultTrimInterval // the loop still drains refused batches and seals idle tails
	}
	staticBackoff := backoff
	trimT, retT, compT := time.NewTicker(trimEvery), time.NewTicker(retention), time.NewTicker(backoff)
	defer trimT.Stop()
	defer retT.Stop()
	defer compT.Stop()
	for {
		select {
		case <-b.jobsStop:
			return
		case <-trimT.C:
			b.maintainLogs()
			if d := b.compactionBackoff(staticBackoff); d != backoff { // a dynamic log.cleaner.backoff.ms
				backoff = d
				compT.Reset(d)
			}
		case <-retT.C:
			b.runRetention()
		case <-compT.C:
			b.runCompaction()
		}
	}
}

// livePartitions lists the partitions of every live topic.
func (b *Broker) livePartitions() []*partition {
	var out []*partition
	for _, t := range b.allTopics() {
		out = append(out, t.partitions()...)
	}
	return out
}

// maintainLogs drains batches a Log refused earlier, keeps the tails within their memory
// budget (sealing all of them once appends stopped) and trims the WAL.
func (b *Broker) maintainLogs() {
	for _, p := range b.livePartitions() {
		p.mu.Lock()
		stuck := len(p.undrained) > 0
		p.mu.Unlock()
		if stuck {
			b.drainUndrained(p)
		}
	}
	err := b.sealIdleTails()
	if err = errors.Join(err, b.trimWAL(walKeepSegments)); err != nil {
		b.log.Warn("sealing partition segments or trimming the WAL failed; retrying", "err", err)
	}
}

// sealIdleTails frees the memory of tails that stopped growing (partition_log.go): the
// large tails of partitions idle for idleSealAfter are sealed; once the whole broker took
// no append for idleSealAfter the memory is handed back to the OS,
// once per pause in appends (not at every tick: a release is two full collections); every
// tail is sealed once it took none for idleSealAllAfter. Under load the tails are kept
// within tailBudget instead.
func (b *Broker) sealIdleTails() error {
	now := b.now().UnixMilli()
	sealed, err := b.drain.SealIdle(idleSealAfter.Milliseconds(), idleSealBytes)
	b.idleGarbage = b.idleGarbage || sealed > 0
	last := b.lastAppend.Load()
	idle := now - last
	if idle <= idleSealAfter.Milliseconds() {
		return errors.Join(err, b.drain.EnforceTailBudget(tailBudget, tailIdleAfter.Milliseconds()))
	}
	if idle > idleSealAllAfter.Milliseconds() && (b.idleSealed != last || b.drain.TailBytes() > 0) {
		b.idleSealed = last
		err = errors.Join(err, b.drain.SealPinning(math.MaxUint64))
		b.released = -1 // the small tails' buffers too
	}
	if b.released != last {
		b.released = last
		// Only when there is something to give back: a trickle of small records pauses
		// between every two, and a release is two full collections.
		if b.idleGarbage || heapFreeBytes() > idleReleaseMin {
			releaseMemory() // the tails' buffers, as the WAL's own when it went idle
		}
		b.idleGarbage = false
	}
	return err
}

// idleReleaseMin: going idle hands memory back to the OS only when the heap holds more
// free memory than this (or tails were just let go).
const idleReleaseMin = 4 << 20

// heapFreeBytes is the heap memory free and not yet returned to the OS.
func heapFreeBytes() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// walKeepSegments is how many WAL segments before the newest the periodic trim leaves to
// the tails that still need them: a tail is sealed once it pins a segment older than that,
// not at every rotation. Each seal is a file created, two fsyncs and a rename, and under a
// thousand evenly loaded partitions every rotation sealed a thousand tails of ~250 KiB
// each: waiting three rotations writes segments four times larger, and produce went from
// 428-448 to 467-473 MB/s in the same run. The WAL holds up to four segments (1 GiB at the
// default size) and a crash replays them; a clean shutdown seals everything.
const walKeepSegments = 3

// trimWAL seals the tails that pin WAL segments more than keep before the newest, writes the
// producer state snapshot for the new checkpoint and deletes the WAL segments below it.
func (b *Broker) trimWAL(keep uint64) error {
	if !b.trimmable {
		return nil
	}
	b.trimMu.Lock()
	defer b.trimMu.Unlock()
	below := b.drain.LastSegment()
	below -= min(below, keep)
	sealErr := b.drain.SealPinning(below)
	cp := b.drain.Checkpoint()
	for _, p := range b.livePartitions() {
		p.mu.Lock()
		if len(p.undrained) > 0 {
			cp = min(cp, p.undrained[0].loc.Segment)
		}
		p.mu.Unlock()
	}
	if cp <= b.snapSeg {
		return sealErr
	}
	if err := b.writeSnapshot(b.takeSnapshot(cp)); err != nil {
		return errors.Join(sealErr, fmt.Errorf("writing the producer-state snapshot: %w", err))
	}
	b.snapSeg = cp
	return errors.Join(sealErr, b.wal.RemoveSegmentsBefore(cp))
}

// sealAll seals every tail and trims the WAL (Close): a restart replays little.
func (b *Broker) sealAll() error {
	if !b.trimmable || b.drain == nil {
		return nil
	}
	return errors.Join(b.drain.SealPinning(math.MaxUint64), b.trimWAL(0))
}

// runRetention applies retention.ms / retention.bytes / DeleteRecords to every Log. A tail
// whose newest record is past retention.ms is sealed first, as Kafka rolls an expired
// active segment so that retention can delete it.
func (b *Broker) runRetention() {
	b.refreshLogConfigs()
	now := b.now().UnixMilli()
	for _, t := range b.allTopics() {
		cfg := t.logConfig()
		for _, p := range t.partitions() {
			lg := p.log()
			if lg == nil {
				continue
			}
			if ts := lg.TailMaxTimestamp(); cfg.Delete && cfg.RetentionMs >= 0 && ts >= 0 && now-ts > cfg.RetentionMs {
				if err := b.drain.Seal(p.key()); err != nil {
					b.log.Warn("sealing an expired segment failed", "topic", t.name, "partition", p.idx, "err", err)
					continue
				}
			}
			n, bytes, err := lg.EnforceRetentionBytes()
			if err != nil {
				b.jobStats.retentionErrors.Add(1)
				b.log.Warn("retention failed", "topic", t.name, "partition", p.idx, "err", err)
			}
			b.jobStats.retentionSegments.Add(int64(n))
			b.jobStats.retentionBytes.Add(bytes)
			if p.syncLogStart() {
				b.log.Info("retention deleted segments", "topic", t.name, "partition", p.idx, "segments", n, "log_start", lg.LogStartOffset())
				b.signalData()
			}
		}
	}
	b.jobStats.retentionRuns.Add(1)
	b.jobStats.retentionLastMs.Store(b.now().UnixMilli())
}

// runCompaction cleans the Logs of compacted topics that are due.
func (b *Broker) runCompaction() {
	b.refreshLogConfigs()
	for _, t := range b.allTopics() {
		if !t.logConfig().Compact {
			continue
		}
		for _, p := range t.partitions() {
			lg := p.log()
			if lg == nil {
				continue
			}
			st, err := lg.Clean()
			if err != nil {
				b.jobStats.compactionErrors.Add(1)
				b.log.Warn("compaction failed", "topic", t.name, "partition", p.idx, "err", err)
			} else if !st.NothingToDo {
				b.noteCleaning(st)
				b.log.Info("compacted", "topic", t.name, "partition", p.idx, "segments", st.Segments)
			}
			p.syncLogStart()
		}
	}
	b.jobStats.compactionRuns.Add(1)
	b.jobStats.compactionLastMs.Store(b.now().UnixMilli())
}

// noteCleaning counts one cleaning's work for /metrics (metrics_ops.go).
func (b *Broker) noteCleaning(st logstore.CleanStats) {
	j := &b.jobStats
	j.compactionCleanings.Add(1)
	j.compactionSegments.Add(int64(st.Segments))
	j.compactionBytesRead.Add(st.BytesRead)
	j.compactionBytesWritten.Add(st.BytesWritten)
	j.compactionRecordsRemoved.Add(int64(st.RecordsRemoved))
}

// settleLogs reconciles each partition with its Log after replay: the Log holds every
// offset below the high watermark, the log start is the larger of DeleteRecords' and the
// Log's, and the Log must reach the end the producer-state snapshot saw.
func (b *Broker) settleLogs() error {
	for _, t := range b.topics {
		for _, p := range t.partitions() {
			lg := p.lg
			if ls := lg.LogStartOffset(); p.logStart > ls {
				if err := lg.DeleteRecordsBefore(p.logStart); err != nil {
					b.log.Warn("moving the partition log's start to the DeleteRecords log start failed", "topic", t.name, "partition", p.idx, "err", err)
				}
			}
			p.logStart = max(p.logStart, lg.LogStartOffset())
			next := lg.NextOffset()
			if p.snapNext > next && p.snapNext > p.logStart {
				err := fmt.Errorf("topic %s partition %d: %s covers offsets below %d, but the partition segments and the WAL end at %d",
					t.name, p.idx, b.snapshotPath(), p.snapNext, next)
				if !b.cfg.RecoverDamaged {
					return err
				}
				b.log.Error("RECOVERY: partition data is missing; serving what remains", "err", err)
			}
			p.hwm = max(next, p.logStart)
			p.next = p.hwm
			p.snapNext, p.replayLast = -1, -1
		}
	}
	return nil
}

var _ = logstore.DefaultConfig

// compactionBackoff is the cleaner's backoff: a dynamic log.cleaner.backoff.ms (this broker's,
// else the cluster-wide one) over the static one.
func (b *Broker) compactionBackoff(static time.Duration) time.Duration {
	for _, m := range []map[string]string{b.admin.brokerConfigs(b.selfName()), b.admin.brokerConfigs("")} {
		if v, ok := m["log.cleaner.backoff.ms"]; ok {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
				return time.Duration(ms) * time.Millisecond
			}
		}
	}
	return static
}
