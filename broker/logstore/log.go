package logstore

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klite/klite/broker/storage"
	"golang.org/x/time/rate"
)

// ErrOffsetOutOfRange is returned by Read for an offset below the log start offset.
var ErrOffsetOutOfRange = errors.New("logstore: offset out of range")

// Config is a partition's topic configuration, with Kafka's names and meanings.
type Config struct {
	SegmentBytes           int64   // segment.bytes: roll the active segment at this size
	SegmentMs              int64   // segment.ms: roll it when its first batch is this old
	RetentionMs            int64   // retention.ms (< 0: no limit)
	RetentionBytes         int64   // retention.bytes (< 0: no limit)
	Delete, Compact        bool    // cleanup.policy contains delete / compact
	DeleteRetentionMs      int64   // delete.retention.ms: how long tombstones outlive cleaning
	MinCompactionLagMs     int64   // min.compaction.lag.ms
	MaxCompactionLagMs     int64   // max.compaction.lag.ms
	MinCleanableDirtyRatio float64 // min.cleanable.dirty.ratio
	IndexIntervalBytes     int     // index.interval.bytes
}

// DefaultConfig returns Kafka 4.0's defaults.
func DefaultConfig() Config {
	return Config{
		SegmentBytes: 1 << 30, SegmentMs: 7 * 24 * 3600 * 1000, RetentionMs: 7 * 24 * 3600 * 1000,
		RetentionBytes: -1, Delete: true, DeleteRetentionMs: 24 * 3600 * 1000,
		MaxCompactionLagMs: math.MaxInt64, MinCleanableDirtyRatio: 0.5, IndexIntervalBytes: 4096,
	}
}

// Options are the broker-wide settings of a Log.
type Options struct {
	// MaxActiveBytes bounds the active segment: it is sealed at min(segment.bytes,
	// MaxActiveBytes). Default 16 MiB. Only a Store without Creator holds it in memory.
	MaxActiveBytes int64
	// Now returns the wall clock in milliseconds (a fake clock in tests).
	Now func() int64
	// CleanerLimit, when set, rate-limits the cleaner's reads and writes (bytes/s).
	CleanerLimit *rate.Limiter
	// DedupeEntries bounds the cleaner's key map (Kafka's log.cleaner.dedupe.buffer.size).
	// Default 1 << 20.
	DedupeEntries int
	Logger        *slog.Logger
	// AsyncRoll: Append rolls by sealing the full active segment in the background (it
	// stays readable meanwhile); a failed background seal is retried by the next one.
	AsyncRoll bool
	// TailBudget, when positive, bounds the memory of the unsealed tails of every Log
	// sharing Tails (the buffers of the active and sealing segments): above it Append
	// writes an active segment's data once it holds budgetChunkBytes (a Store without
	// Creator: rolls it once it holds budgetRollBytes). The Drain sets Tails for its Logs.
	TailBudget int64
	// Tails counts the bytes those buffers hold (nil: not counted).
	Tails *atomic.Int64
	// TailLogs counts the Logs whose buffers hold anything (nil: not counted); with Tails
	// set, Append keeps the budget's share of each (crowded).
	TailLogs *atomic.Int64
	// SingleCopy lets Stage take hot partitions' batches into durable segments that are
	// their only copy (staged.go; a Store that is a DurableCreator only).
	SingleCopy bool
	// SingleCopyBytesPerSec: a partition taking at least this many bytes a second (in the
	// current or the previous second) is single-copy. Default DefaultSingleCopyBytesPerSec.
	SingleCopyBytesPerSec int64
}

// budgetRollBytes is the least an active segment kept in memory (a Store without Creator)
// holds before the tail budget rolls it: smaller segments would cost a file and an fsync
// for little.
const budgetRollBytes = 1 << 20

// rollSlack: an active segment grows up to rollSlack x MaxActiveBytes (never past
// segment.bytes) while the previous seal is still being written (written as it fills, it
// costs disk, not memory).
const rollSlack = 4

func (o *Options) defaults() {
	if o.MaxActiveBytes <= 0 {
		o.MaxActiveBytes = 16 << 20
	}
	if o.Now == nil {
		o.Now = func() int64 { return time.Now().UnixMilli() }
	}
	if o.SingleCopyBytesPerSec <= 0 {
		o.SingleCopyBytesPerSec = DefaultSingleCopyBytesPerSec
	}
	if o.DedupeEntries <= 0 {
		o.DedupeEntries = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Log is one partition's history: sealed segments in the Store (each summarized by a
// fixed-size struct in memory) and the active segment in memory. The active segment is not
// durable here: the WAL holds it until it is sealed, and DurableOffset tells the WAL how far
// it may be deleted; after a crash the caller appends again from DurableOffset.
type Log struct {
	st     Store
	prefix string
	opts   Options

	jobMu  sync.Mutex // serializes jobs that delete or replace segments (retention, cleaner)
	sealMu sync.Mutex // one Seal at a time

	mu      sync.Mutex
	cfg     Config
	segs    []*segment      // sealed, by base offset; contiguous ranges
	sealing *segBuilder     // being written by Seal (readable meanwhile)
	active  *segBuilder     // nil when empty
	open    map[int64]int64 // producer ID -> first offset of its open transaction
	next    int64
	ckpt    checkpoint
	// badCRC: segments a read found a batch with a wrong CRC in (logged once each).
	badCRC sync.Map
	held   int64 // capacity of the tail buffers, as last added to opts.Tails
	// lastAppend is when Append last took a batch (opts.Now; Drain.EnforceTailBudget).
	lastAppend int64
	// rate is the bytes Append took in the current and the previous second (crowded tails).
	rate appendRate
	// sealFailedAt is when the last seal failed (0: it succeeded); Append does not roll
	// again for sealRetryMs after (see Append).
	sealFailedAt int64
	// flushed is signalled (on mu) when a builder's background write (flush) makes
	// progress or stops.
	flushed *sync.Cond
	// viewers counts the reads holding views of the tail builders (tail.go): taken under
	// mu, released without it.
	viewers atomic.Int64
	// Single-copy (staged.go): staging is the builder that becomes active at its first
	// commit; ratedTo the offset Stage counted the append rate up to; noStageUntil when
	// Stage may take batches again after a durable object could not be created; left the
	// durable objects in the making a restart found, until FinishRecovery.
	staging      *segBuilder
	ratedTo      int64
	noStageUntil int64
	left         []*leftover
}

// sealRetryMs: after a failed seal (a full disk), Append leaves the retries to the jobs loop
// for this long. A seal attempt writes up to the whole tail before it fails, taking the
// space the WAL needs meanwhile: retried at every append it kept the disk full for good.
const sealRetryMs = 1000

// heldLocked brings opts.Tails up to date with the capacity of the tail buffers (active,
// sealing). l.mu held.
func (l *Log) heldLocked() {
	if l.opts.Tails == nil {
		return
	}
	var n int64
	for _, b := range []*segBuilder{l.sealing, l.active, l.staging} {
		if b != nil {
			n += b.memBytes()
		}
	}
	if n != l.held {
		l.opts.Tails.Add(n - l.held)
		if l.opts.TailLogs != nil && (n == 0) != (l.held == 0) {
			if n > 0 {
				l.opts.TailLogs.Add(1)
			} else {
				l.opts.TailLogs.Add(-1)
			}
		}
		l.held = n
	}
}

// overBudget reports whether the tails of all Logs together hold more than TailBudget.
func (l *Log) overBudget() bool {
	return l.opts.TailBudget > 0 && l.opts.Tails != nil && l.opts.Tails.Load() > l.opts.TailBudget
}

// Open loads a partition's log from st, reading and checking each segment's footer. Leftovers of
// an interrupted job are removed: segments wholly below the checkpointed log start offset
// (retention) and segments covered by a newer generation (the cleaner's swap).
func Open(st Store, prefix string, cfg Config, opts Options) (*Log, error) {
	l := newLog(st, prefix, cfg, opts)
	opts = l.opts
	objs, err := st.List(prefix)
	if err != nil {
		return nil, err
	}
	var found []*segment
	for _, o := range objs {
		if o.Name == prefix+checkpointName {
			b, err := st.Get(o.Name, 0, -1)
			if err != nil {
				return nil, err
			}
			if l.ckpt, err = decodeCheckpoint(b); err != nil {
				return nil, err
			}
			continue
		}
		base, gen, ok := parseSegName(prefix, o.Name)
		if !ok {
			continue
		}
		if o.Size < trailerLen {
			return nil, fmt.Errorf("logstore: segment %s: %d bytes", o.Name, o.Size)
		}
		s, err := openSegment(st, o, base)
		if err != nil {
			return nil, err
		}
		s.name, s.gen = o.Name, gen
		found = append(found, s)
	}
	sort.Slice(found, func(i, j int) bool {
		if found[i].base != found[j].base {
			return found[i].base < found[j].base
		}
		return found[i].gen < found[j].gen
	})
	var stale []string
	for _, s := range found {
		if s.next <= l.ckpt.logStart && s.next > s.base {
			stale = append(stale, s.name) // retention deleted it after the checkpoint
			continue
		}
		if n := len(l.segs); n > 0 && s.base < l.segs[n-1].next {
			last := l.segs[n-1]
			switch {
			case s.base == last.base && s.gen > last.gen && s.next >= last.next:
				stale = append(stale, last.name) // the cleaner's output replaced last
				l.segs[n-1] = s
			case s.next <= last.next:
				stale = append(stale, s.name) // a segment the cleaner's output covers
			default:
				return nil, fmt.Errorf("logstore: segments %s and %s overlap", last.name, s.name)
			}
			continue
		}
		l.segs = append(l.segs, s)
	}
	for _, name := range stale {
		opts.Logger.Info("logstore: removing segment left by an interrupted job", "segment", name)
		if err := st.Delete(name); err != nil {
			return nil, err
		}
	}
	if err := l.openLeftovers(); err != nil {
		return nil, err
	}
	l.next = l.ckpt.logStart
	if n := len(l.segs); n > 0 {
		l.next = max(l.next, l.segs[n-1].next)
		last := l.segs[n-1]
		if last.nOpen > 0 {
			b, err := st.Get(last.name, last.size-trailerLen-int64(last.nOpen)*openEntryLen, int64(last.nOpen)*openEntryLen)
			if err != nil {
				return nil, err
			}
			for i := 0; i+openEntryLen <= len(b); i += openEntryLen {
				l.open[int64(be64(b[i:]))] = int64(be64(b[i+8:]))
			}
		}
	}
	return l, nil
}

// OpenNew returns the empty Log of a partition that has never existed: a topic or partition
// just created, whose prefix holds a new topic ID, so nothing can be stored under it. It
// lists nothing, so creating a topic does not wait for the Store (an S3 outage).
func OpenNew(st Store, prefix string, cfg Config, opts Options) *Log {
	return newLog(st, prefix, cfg, opts)
}

func newLog(st Store, prefix string, cfg Config, opts Options) *Log {
	opts.defaults()
	l := &Log{st: st, prefix: prefix, opts: opts, cfg: cfg, open: map[int64]int64{}}
	l.flushed = sync.NewCond(&l.mu)
	return l
}

// SetConfig changes the topic configuration (AlterConfigs).
func (l *Log) SetConfig(cfg Config) {
	l.mu.Lock()
	l.cfg = cfg
	l.mu.Unlock()
}

// NextOffset is one past the last offset appended.
func (l *Log) NextOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next
}

// LogStartOffset is the first offset still readable (durable).
func (l *Log) LogStartOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ckpt.logStart
}

// DurableOffset is one past the last offset in sealed segments: everything below it is
// in the Store, so the WAL may drop it; after a crash, appends resume from here.
func (l *Log) DurableOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.segs); n > 0 {
		return max(l.segs[n-1].next, l.ckpt.logStart)
	}
	return l.ckpt.logStart
}

// Size is the bytes held: sealed segment objects plus the in-memory tail.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	for _, b := range []*segBuilder{l.sealing, l.active} {
		if b != nil {
			n += b.size
		}
	}
	return n
}

// SegmentInfo describes one sealed segment (DescribeLogDirs, tests).
type SegmentInfo struct {
	Name       string
	Base, Next int64
	Size       int64
	Cleaned    bool
}

// Segments lists the sealed segments.
func (l *Log) Segments() []SegmentInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]SegmentInfo, len(l.segs))
	for i, s := range l.segs {
		out[i] = SegmentInfo{s.name, s.base, s.next, s.size, s.cleaned != 0}
	}
	return out
}

// Append adds one batch whose base offset is assigned. A batch wholly below NextOffset is
// ignored (a replay of what the log already holds); any other must start at NextOffset. The
// active segment is sealed first when the batch would overflow it or it is segment.ms old.
func (l *Log) Append(b []byte) error {
	h, err := parseBatch(b)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if h.Last < l.next {
		l.mu.Unlock()
		return nil
	}
	now := l.opts.Now()
	if staged, err := l.commitStagedLocked(&h, now); staged {
		l.mu.Unlock()
		return err
	}
	if err := l.checkNextLocked(&h); err != nil {
		l.mu.Unlock()
		return err
	}
	// Over the tail budget a builder with a writer writes what it holds early (cutEarly);
	// one without rolls at budgetRollBytes.
	roll := l.active != nil && (l.active.size+int64(h.Size) > min(l.cfg.SegmentBytes, l.opts.MaxActiveBytes) ||
		l.active.batches > 0 && l.active.waited(now, h.MaxTimestamp) > l.cfg.SegmentMs ||
		l.active.cr == nil && l.active.size >= budgetRollBytes && l.overBudget())
	full := l.active != nil && l.active.size+int64(h.Size) > min(l.cfg.SegmentBytes, l.opts.MaxActiveBytes)
	// Past must the roll waits for a seal still running; below it the active segment takes
	// the batch meanwhile (see rollAsync).
	must := l.active != nil && l.active.size+int64(h.Size) > min(l.cfg.SegmentBytes, rollSlack*l.opts.MaxActiveBytes)
	if roll && !must && l.sealFailedAt != 0 && now-l.sealFailedAt < sealRetryMs {
		roll = false
	}
	// A roll Kafka would make (segment.ms passed, segment.bytes reached) keeps its boundary
	// even while an earlier seal runs: merging the batch into the active segment would keep
	// it, say, in the segment DeleteRecords or retention must delete whole. Only the rolls at
	// the internal MaxActiveBytes may be skipped.
	kafkaRoll := l.active != nil && (l.active.size+int64(h.Size) > l.cfg.SegmentBytes ||
		l.active.batches > 0 && l.active.waited(now, h.MaxTimestamp) > l.cfg.SegmentMs)
	l.mu.Unlock()
	if roll {
		var err error
		if l.opts.AsyncRoll {
			err = l.rollAsync(must || kafkaRoll)
		} else {
			err = l.Seal()
		}
		if err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkNextLocked(&h); err != nil { // a concurrent Append won
		return err
	}
	if l.active == nil {
		// An empty log whose start DeleteRecords moved into a batch replays that whole
		// batch: the segment starts at the batch, below the log start.
		l.active = newSegBuilder(min(l.next, h.Base), l.cfg.IndexIntervalBytes, l.cfg.Compact, now)
		// Written as it fills (tail.go); its object is created by the first chunk's write.
		l.active.cr, _ = l.st.(Creator)
		if roll := min(l.cfg.SegmentBytes, l.opts.MaxActiveBytes); l.active.cr == nil && roll > 0 && roll < 1<<30 {
			l.active.capHint = int(roll + roll/32 + 4096)
			if full && !l.overBudget() {
				// A partition that just filled a segment fills the next one: one buffer
				// of the roll size costs less than doubling up to it (zeroing and
				// copying every step). Partitions that roll for other reasons
				// (segment.ms, the budget) are not hot: they grow as they fill.
				l.active.data = make([]byte, 0, l.active.capHint)
			}
		}
	}
	l.trackTxn(b, &h, l.active)
	a := l.active
	// Where many Logs hold tails (crowded), one taking less than hotBytesPerSec writes what
	// it holds at budgetChunkBytes even under the budget: a thousand warm partitions
	// filling MiB chunks held the whole budget and more. A hot one writes MiB chunks (direct
	// I/O) unless over the budget.
	var n int64
	if h.Base >= l.ratedTo {
		n = int64(h.Size) // Stage counted the batches below ratedTo
	}
	hot := l.rate.hot(now, n)
	a.small = l.overBudget() || l.crowded() && !hot
	a.add(b, &h)
	l.next = h.Last + 1
	l.lastAppend = now
	if a.cr != nil && !a.ext {
		if a.small {
			a.cutEarly()
		}
		l.startFlushLocked(a, now)
		// A disk slower than the producers: wait for the writes rather than fill memory.
		for a.flushing && len(a.pend) > maxPendChunks && l.active == a {
			l.flushed.Wait()
		}
	}
	l.heldLocked()
	return nil
}

// checkNextLocked refuses a batch that does not start at the log end: a gap would be data
// the log lost (say, an Append that failed while sealing) and the WAL checkpoint would then
// pass it. An empty log takes a batch that holds its next offset (replay after DeleteRecords
// moved the start into a batch).
func (l *Log) checkNextLocked(h *batchInfo) error {
	if h.Base == l.next || l.emptyLocked() && h.Base <= l.next {
		return nil
	}
	return fmt.Errorf("logstore: batch %d..%d does not start at the log end %d", h.Base, h.Last, l.next)
}

// emptyLocked reports that the log holds nothing: no sealed segment, no tail.
func (l *Log) emptyLocked() bool {
	return len(l.segs) == 0 && l.active == nil && l.sealing == nil
}

// trackTxn keeps the open-transaction table and records aborted transactions in the
// segment holding their ABORT marker (Kafka's .txnindex).
func (l *Log) trackTxn(b []byte, h *batchInfo, seg *segBuilder) {
	if !h.transactional() {
		return
	}
	if !h.control() {
		if _, ok := l.open[h.ProducerID]; !ok {
			l.open[h.ProducerID] = h.Base
		}
		return
	}
	first, ok := l.open[h.ProducerID]
	if !ok {
		return
	}
	delete(l.open, h.ProducerID)
	if controlType(b, h) == 0 {
		seg.aborted = append(seg.aborted, AbortedTxn{h.ProducerID, first, h.Last})
	}
}

func (l *Log) openList() []openTxn {
	out := make([]openTxn, 0, len(l.open))
	for pid, first := range l.open {
		out = append(out, openTxn{pid, first})
	}
	slices.SortFunc(out, func(a, b openTxn) int { return int(sign(a.pid - b.pid)) })
	return out
}

func sign(v int64) int64 { return min(max(v, -1), 1) }

func be64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// waited is how long the segment has been open for segment.ms, as Kafka's
// LogSegment.timeWaitedForRoll: from its first batch's max timestamp to the new batch's, so
// records stamped far apart roll whatever the wall clock says; without a timestamp (-1),
// from its creation to now.
func (s *segBuilder) waited(now, batchMaxTS int64) int64 {
	if s.rollTS >= 0 {
		return batchMaxTS - s.rollTS
	}
	return now - s.created
}

// footerReadAhead: Open reads this much of a segment's end at once, which holds the whole
// footer (index sections and trailer) of most segments.
const footerReadAhead = 64 << 10

// openSegment reads a segment's footer and checks it whole (the trailer CRC covers the index
// sections and the trailer), so a damaged trailer or index is found at start-up, as
// corruption naming the object, and is never used to serve or to delete data (retention
// reads the trailer's timestamps). The batches carry their own CRCs.
func openSegment(st Store, o Object, base int64) (*segment, error) {
	corrupt := func(at int64, err error) error {
		return &storage.CorruptError{Path: o.Name, Offset: at, Size: o.Size, Reason: err.Error()}
	}
	if o.Size < trailerLen {
		return nil, corrupt(0, fmt.Errorf("logstore: segment of %d bytes, shorter than its trailer", o.Size))
	}
	n := min(o.Size, footerReadAhead)
	tail, err := st.Get(o.Name, o.Size-n, n)
	if err != nil {
		return nil, err
	}
	s, err := decodeTrailer(tail[len(tail)-trailerLen:], o.Size)
	if err != nil {
		return nil, corrupt(o.Size-trailerLen, err)
	}
	s.name = o.Name
	if s.base != base {
		return nil, corrupt(o.Size-trailerLen, fmt.Errorf("logstore: segment trailer says base %d", s.base))
	}
	f := tail
	if fl := o.Size - s.dataLen; fl <= n {
		f = tail[n-fl:]
	} else if f, err = st.Get(o.Name, s.dataLen, fl); err != nil {
		return nil, err
	}
	if _, err := decodeFooter(&s, f); err != nil {
		return nil, corrupt(s.dataLen, err)
	}
	return &s, nil
}
