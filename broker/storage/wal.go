package storage

// File WAL: a directory of segment files written by one goroutine with group commit.
//
//	<Dir>/wal/00000000000000000001.wal
//	<Dir>/wal/00000000000000000002.wal     segment number = file name, monotonic, gaps allowed
//	...                                     (RemoveSegmentsBefore deletes a prefix)
//
// A segment is a plain sequence of entries, no file header; written with direct I/O (see
// direct.go) it may end with fewer than 4096 zero bytes, up to the block boundary the file
// ends on:
//
//	+--------+--------+--------+--------+-----------------+
//	| entry  | entry  | entry  |  ...   | zeros (direct)  |
//	+--------+--------+--------+--------+-----------------+
//
// One entry = a 56-byte header followed by the batch bytes (all integers big-endian):
//
//	 off  size  field
//	   0     4  CRC-32C (Castagnoli) over bytes 4..55 of the header, then the batch bytes
//	   4     2  magic 0x4B57 ("KW")
//	   6     1  version (1)
//	   7     1  flags (0; 1 = the seal ending a rotated segment, see wal_recovery.go)
//	   8     4  length of the batch bytes (uint32, at most 1 GiB)
//	  12    16  topic ID
//	  28     4  partition (int32)
//	  32     8  base offset (int64)
//	  40     8  last offset (int64)
//	  48     8  max timestamp (int64)
//	  56     n  batch bytes (the Kafka RecordBatch as served); Location.Offset points here
//
// Writing: Append copies the header and batch into the open commit group (a contiguous
// buffer, capped at MaxGroupBytes unless a single entry is bigger). Three goroutines form a
// pipeline: the writer takes one group at a time and writes it with one pwrite (direct I/O
// where the file system allows, see direct.go); the syncer
// fsyncs everything written so far (one fsync covers every group written while the previous
// fsync ran) and hands the callbacks to the callback goroutine, which calls them in append
// order. The writer waits while MaxGroupBytes or more are written but unsynced, so at most
// about two groups are ever unsynced. A group that does not fit in the rest of the segment
// waits until everything before it is fsynced and is then split at an entry boundary: the
// first part is written and fsynced, a new segment is created (and the directory fsynced),
// then the rest follows. So a segment is complete and durable before the next one exists.
// A group arriving when the segment is older than SegmentMaxAge takes the same path and
// starts a new segment first (so drained data leaves the disk under a slow load too).
//
// A failed write fails every entry of that group and truncates the segment back to its size
// before the group, so no partial entry remains. A failed fsync (EIO) fails every entry
// written since the last good fsync and truncates back to that point (after a failed fsync
// the kernel may have dropped those pages). Later appends may succeed once space returns;
// nothing acknowledged is touched. If even the truncation fails the WAL stops accepting
// writes (every later Append fails with that error) until reopened.
//
// A failed entry also fails every entry queued behind it until its failure has been reported
// (poisonLocked), so a caller assigning offsets at Append time can give them back in order.
//
// Recovery (Replay, wal_recovery.go): rotated segments end with a seal entry; a torn tail is
// cut only at the end of the last segment, within what the writer can have in flight, and
// never after a clean shutdown (the marker wal/clean written by Close); anything else is
// corruption, refused with a *CorruptError naming the segment file and byte (recovery.go).

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type fileWAL struct {
	opts  WALOptions
	dir   string
	files fileLayer
	log   *slog.Logger

	// segMu guards segs (read handles by segment number) and cur.
	segMu sync.RWMutex
	segs  map[uint64]*os.File
	cur   uint64

	mu        sync.Mutex
	workCond  sync.Cond // pending gained a group, or closing
	spaceCond sync.Cond // pendingBytes dropped, or closing
	pending   []*group  // FIFO; the last one is open for appends
	pendBytes int
	free      []*group // written groups kept for reuse while busy (at most maxFree)
	maxFree   int
	groupHint int // bytes in the last written group: the initial capacity of a new one
	// The writer is idle (waiting for a group) since idleAt; freeTimer, when armed, lets
	// the spare groups go once it has been idle for freeGroupsAfter.
	idle           bool
	idleAt         time.Time
	freeTimer      *time.Timer
	freeTimerArmed bool
	closed         bool
	isClosed       atomic.Bool // closed, readable without mu
	tailReady      bool        // cur/curFile/curSize are set up (after Replay or the first Append)
	tailErr        error       // why the tail could not be set up
	broken         error       // sticky: a failed truncation left the segment in an unknown state

	disp       *dispatcher
	writerDone chan struct{}

	syncerDone chan struct{}

	// File state: set up under mu before the first group exists (setupTail), then guarded
	// by fileMu, shared by the writer goroutine (writes) and the syncer goroutine (fsyncs).
	fileMu       sync.Mutex
	syncCond     sync.Cond // L = &fileMu; any change below
	curFile      writeFile
	curSize      int64     // bytes written to the current segment
	curOpened    time.Time // when the current segment was opened (SegmentMaxAge)
	syncedSize   int64     // bytes of the current segment known durable
	writing      bool      // the writer has a pwrite in flight (without fileMu)
	syncing      bool      // the syncer has an fsync in flight (without fileMu)
	syncQ        [][]completion
	writerExited bool
	// poisoned: an append failed and not all failure callbacks have been called yet; every
	// group written meanwhile fails too (see poisonLocked). failGen numbers the failures.
	poisoned  bool
	poisonErr error // the failure that started it
	failGen   uint64
	// dropped: bytes of the current segment already dropped from the OS page cache (see
	// WALOptions.CacheBytes). Changed by the syncer and, while the syncer is idle, by rotate.
	// Buffered mode only.
	dropped int64

	// Direct I/O (see direct.go). direct is decided when the first segment is opened.
	direct       atomic.Bool // written under fileMu (or mu before the writer runs)
	directTried  bool
	directCopies atomic.Int64 // direct writes that had to copy the data first
	oldFiles     []writeFile  // direct handles left for buffered ones (retryBuffered)
	// tail holds the bytes of the current segment's last partial block (curSize % dioAlign
	// of them): a direct write starts at the block boundary below curSize and writes them
	// again. Owned by the writer goroutine; changed under fileMu.
	tail []byte
	// predEnd (guarded by mu) is where the next appended entry is expected to land in the
	// current segment, so that Append can lay out a new group's buffer with the same
	// alignment as its file position and the writer can write it from that buffer directly.
	// Only a hint: a wrong guess costs one copy.
	predEnd int64

	// recent: written groups kept in memory (direct mode) for readers of recent data, at
	// most CacheBytes, oldest first. The OS page cache does this job in buffered mode.
	cacheMu    sync.RWMutex
	recent     []cachedGroup
	recentSize int64
}

type group struct {
	buf  []byte
	ents []groupEntry
	// lead bytes at the start of buf are reserved (direct mode: room for the segment's
	// partial last block); the entries start at buf[lead].
	lead int
	// predEnd is w.predEnd after this group's last entry (direct mode).
	predEnd int64
	// seg and start: where data() was written, once it was written whole.
	seg   uint64
	start int64
}

// data returns the group's entries as they are written to the segment.
func (g *group) data() []byte { return g.buf[g.lead:] }

type groupEntry struct {
	off  int   // start of the entry (header) in buf
	size int32 // batch bytes
	done func(Location, error)
}

func segName(n uint64) string { return fmt.Sprintf("%020d.wal", n) }

// OpenWAL opens (creating if needed) the WAL under opts.Dir/wal. Call Replay before the first
// Append to read back what is stored; if Append comes first, only the last segment is checked
// (its torn tail truncated) before writing continues after it.
func OpenWAL(opts WALOptions) (WAL, error) {
	if opts.Dir == "" {
		return nil, errors.New("storage: WALOptions.Dir is empty")
	}
	o := opts.withDefaults()
	dir := filepath.Join(o.Dir, "wal")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	w := &fileWAL{opts: o, dir: dir, files: o.files, log: o.Logger, segs: map[uint64]*os.File{}}
	// Enough spare groups to refill the whole pending window without allocating.
	w.maxFree = o.MaxPendingBytes/o.MaxGroupBytes + 1
	w.workCond.L = &w.mu
	w.spaceCond.L = &w.mu
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, ".wal") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, ".wal"), 10, 64)
		if err != nil || n == 0 || segName(n) != name {
			continue
		}
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			w.closeSegs()
			return nil, err
		}
		w.segs[n] = f
		w.cur = max(w.cur, n)
	}
	w.syncCond.L = &w.fileMu
	w.disp = newDispatcher()
	w.writerDone = make(chan struct{})
	w.syncerDone = make(chan struct{})
	go w.writer()
	return w, nil
}

func (w *fileWAL) closeSegs() {
	for _, f := range w.segs {
		f.Close()
	}
}

func (w *fileWAL) segPath(n uint64) string { return filepath.Join(w.dir, segName(n)) }

// maxTornBytes is how far back from the end a torn tail may start: the writer waits while
// MaxGroupBytes or more are written but unsynced, so at most that plus the group being
// written (MaxGroupBytes, or a single larger entry of entryLen bytes) can be in flight, plus
// the block of padding a direct write leaves.
func (w *fileWAL) maxTornBytes(entryLen int64) int64 {
	return int64(w.opts.MaxGroupBytes) + max(int64(w.opts.MaxGroupBytes), entryLen) + dioAlign
}

// Append implements WAL. It copies b (the caller may reuse b.Data once Append returns) and
// blocks only while more than MaxPendingBytes are queued.
func (w *fileWAL) Append(b *Batch, done func(Location, error)) {
	size := entryHeaderSize + len(b.Data)
	w.mu.Lock()
	if !w.closed && !w.tailReady && w.tailErr == nil {
		w.tailErr = w.setupTail(nil)
		w.tailReady = w.tailErr == nil
	}
	for !w.closed && w.pendBytes > 0 && w.pendBytes+size > w.opts.MaxPendingBytes {
		w.spaceCond.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		go done(Location{}, ErrClosed)
		return
	}
	if len(b.Data) > maxEntryPayload {
		w.mu.Unlock()
		go done(Location{}, fmt.Errorf("storage: batch of %d bytes is too large", len(b.Data)))
		return
	}
	var g *group
	if n := len(w.pending); n > 0 {
		g = w.pending[n-1]
		if len(g.data()) > 0 && len(g.data())+size > w.opts.MaxGroupBytes {
			g = nil
		}
	}
	if g == nil {
		lead := 0
		if w.direct.Load() {
			lead = int(w.predEnd % dioAlign)
		}
		if n := len(w.free); n > 0 {
			g = w.free[n-1]
			w.free = w.free[:n-1]
		} else {
			// Start at the size the last written group reached: under load a new group
			// then fills without being regrown (and copied) step by step.
			g = &group{buf: w.newGroupBuf(max(min(w.groupHint, w.opts.MaxGroupBytes), size) + lead)}
		}
		g.lead = lead
		g.buf = g.buf[:lead]
		w.pending = append(w.pending, g)
	}
	off := len(g.buf)
	g.buf = w.growAppend(g.buf, size, w.opts.MaxGroupBytes+g.lead)
	putEntryHeader(g.buf[off:off+entryHeaderSize], b)
	copy(g.buf[off+entryHeaderSize:], b.Data)
	g.ents = append(g.ents, groupEntry{off: off, size: int32(len(b.Data)), done: done})
	w.pendBytes += size
	w.predEnd += int64(size)
	g.predEnd = w.predEnd
	w.mu.Unlock()
	w.workCond.Signal()
}

// freeGroupsAfter is how long the writer stays idle before it lets its spare groups go.
const freeGroupsAfter = time.Second

func (w *fileWAL) armFreeTimerLocked(d time.Duration) {
	w.freeTimerArmed = true
	if w.freeTimer == nil {
		w.freeTimer = time.AfterFunc(d, w.releaseIdleGroups)
	} else {
		w.freeTimer.Reset(d)
	}
}

func (w *fileWAL) releaseIdleGroups() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.freeTimerArmed = false
	if !w.idle || !w.hasSpareLocked() {
		return // busy again: the next idle spell arms the timer
	}
	if left := freeGroupsAfter - time.Since(w.idleAt); left > 0 {
		w.armFreeTimerLocked(left)
		return
	}
	w.free, w.groupHint = nil, 0
	w.dropRecent()
	if w.opts.OnIdle != nil {
		go w.opts.OnIdle()
	}
}

// hasSpareLocked reports whether group buffers are kept: spare ones, or recent ones (direct
// mode). Called with mu held.
func (w *fileWAL) hasSpareLocked() bool {
	w.cacheMu.RLock()
	defer w.cacheMu.RUnlock()
	return len(w.free) > 0 || len(w.recent) > 0
}

// growAppend extends buf by n bytes, growing capacity geometrically up to limit.
func (w *fileWAL) growAppend(buf []byte, n, limit int) []byte {
	need := len(buf) + n
	if need <= w.usableCap(buf) {
		return buf[:need]
	}
	c := max(2*w.usableCap(buf), 64<<10)
	if c > limit {
		c = limit
	}
	if c < need {
		c = need
	}
	nb := w.newGroupBuf(c)[:need]
	copy(nb, buf)
	return nb
}

// newGroupBuf returns an empty group buffer for n bytes. In direct mode it is block-aligned,
// has a block of spare capacity beyond n for the zero padding of the write, and is never
// smaller than a full group (plus its leading partial block): all such buffers are alike,
// so a recycled one never has to grow (growing meant allocating and zeroing a new buffer
// for most groups, a tenth of the broker's CPU at 1 GB/s).
func (w *fileWAL) newGroupBuf(n int) []byte {
	if w.direct.Load() {
		return alignedBuf(max(n, w.opts.MaxGroupBytes+dioAlign) + dioAlign)[:0]
	}
	return make([]byte, 0, n)
}

// usableCap is the capacity of a group buffer that entries may fill.
func (w *fileWAL) usableCap(buf []byte) int {
	if w.direct.Load() {
		return max(cap(buf)-dioAlign, 0)
	}
	return cap(buf)
}

func (w *fileWAL) writer() {
	defer close(w.writerDone)
	go w.syncer()
	w.mu.Lock()
	for {
		if len(w.pending) == 0 && !w.closed {
			// Idle: keep the spare groups for a moment (bursts come back often; letting
			// them go at every pause meant regrowing 16 MiB groups over and over), then
			// let them go (releaseIdleGroups) so an idle broker holds no commit buffers.
			w.idle, w.idleAt = true, time.Now()
			if w.hasSpareLocked() && !w.freeTimerArmed {
				w.armFreeTimerLocked(freeGroupsAfter)
			}
		}
		for len(w.pending) == 0 && !w.closed {
			w.workCond.Wait()
		}
		w.idle = false
		if len(w.pending) == 0 {
			break
		}
		g := w.pending[0]
		w.pending[0] = nil
		w.pending = w.pending[1:]
		err := w.broken
		if err == nil && !w.tailReady {
			err = w.tailErr
			if err == nil {
				err = errors.New("storage: WAL tail not set up")
			}
		}
		w.mu.Unlock()

		cs := make([]completion, len(g.ents))
		for i, e := range g.ents {
			cs[i] = completion{done: e.done, err: err}
		}
		var end int64
		reuse := []*group{g}
		if err == nil {
			end, reuse = w.writeGroup(g, cs)
		} else {
			w.fileMu.Lock()
			w.syncQ = append(w.syncQ, cs)
			end = w.curSize
			w.fileMu.Unlock()
			w.syncCond.Broadcast()
		}

		w.mu.Lock()
		// Where the group really ended: a rotation or a failed write moves every later
		// entry (the pending groups laid out for the old guess are written with a copy).
		if d := end - g.predEnd; d != 0 {
			w.predEnd += d
			for _, pg := range w.pending {
				pg.predEnd += d
			}
		}
		size := len(g.data())
		w.pendBytes -= size
		w.spaceCond.Broadcast()
		w.groupHint = size
		for _, r := range reuse {
			w.recycle(r)
		}
	}
	w.mu.Unlock()
	w.fileMu.Lock()
	w.writerExited = true
	w.fileMu.Unlock()
	w.syncCond.Broadcast()
	<-w.syncerDone
}

// recycle keeps g's buffer for a later group if there is room. Called with mu held.
func (w *fileWAL) recycle(g *group) {
	if len(w.free) < w.maxFree && w.usableCap(g.buf) <= w.opts.MaxGroupBytes+dioAlign {
		clear(g.ents)
		g.ents = g.ents[:0]
		g.buf = g.buf[:0]
		w.free = append(w.free, g)
	}
}

// writeGroup writes g and queues its completions cs for the syncer, which fsyncs and then
// reports them. Entries that fail get their error in cs. It returns the size of the current
// segment afterwards and the groups whose buffers are free for reuse: g itself, unless it
// was written whole in direct mode and now serves reads of recent data (see cacheGroup;
// caching it here, under fileMu, orders it before any truncateBack that drops it again).
//
// Common case: the group fits in the current segment; it is written with one pwrite while
// the syncer may be fsyncing earlier groups (at most about two groups are ever unsynced).
// A group that needs a new segment waits until everything before it is fsynced, then is
// written and fsynced here part by part, so that a segment is complete and durable before
// the next one is created.
func (w *fileWAL) writeGroup(g *group, cs []completion) (end int64, reuse []*group) {
	reuse = []*group{g}
	w.fileMu.Lock()
	defer func() {
		end = w.curSize
		w.syncQ = append(w.syncQ, cs)
		if err := firstErr(cs); err != nil {
			w.syncQ = append(w.syncQ, []completion{w.poisonLocked(err)})
		}
		w.fileMu.Unlock()
		w.syncCond.Broadcast()
	}()
	data := g.data()
	size := int64(len(data))
	expired := w.opts.SegmentMaxAge > 0 && w.curSize > 0 && time.Since(w.curOpened) >= w.opts.SegmentMaxAge
	fits := !expired && (w.curSize+size <= w.opts.SegmentBytes || (w.curSize == 0 && len(g.ents) == 1))
	if fits && size <= int64(w.opts.MaxGroupBytes) {
		for w.curSize-w.syncedSize >= int64(w.opts.MaxGroupBytes) {
			w.syncCond.Wait()
		}
	} else {
		for len(w.syncQ) > 0 || w.syncing {
			w.syncCond.Wait()
		}
	}
	if w.poisoned {
		failFrom(cs, 0, fmt.Errorf("storage: WAL append failed: an earlier append failed and its failure was not reported yet: %w", w.poisonErr))
		return
	}
	if fits {
		pos, f := w.curSize, w.curFile
		w.writing = true
		w.fileMu.Unlock()
		err := w.writeAt(f, data, pos, g)
		w.fileMu.Lock()
		w.writing = false
		w.syncCond.Broadcast()
		if err != nil {
			err = w.retryBuffered(err, data, pos)
		}
		if err != nil {
			err = fmt.Errorf("storage: WAL write to segment %d: %w", w.cur, err)
			w.truncateBack(pos, err)
			for i := range cs {
				cs[i].err = err
			}
			return
		}
		for i, e := range g.ents {
			cs[i].loc = Location{Segment: w.cur, Offset: pos + int64(e.off-g.lead) + entryHeaderSize, Size: e.size}
		}
		w.curSize = pos + size
		if w.direct.Load() {
			g.seg, g.start = w.cur, pos
			reuse = w.cacheGroup(g)
		}
		return
	}

	// Slow path, with the syncer idle: write and fsync segment by segment.
	if expired {
		if err := w.rotate(); err != nil {
			failFrom(cs, 0, err)
			return
		}
	}
	start := 0
	for start < len(g.ents) {
		stop := len(g.ents)
		from := g.ents[start].off
		room := w.opts.SegmentBytes - w.curSize
		if int64(len(g.buf)-from) > room {
			stop = start
			for stop < len(g.ents) && int64(entryEnd(g, stop)-from) <= room {
				stop++
			}
			if stop == start {
				if w.curSize > 0 {
					if err := w.rotate(); err != nil {
						failFrom(cs, start, err)
						return
					}
					continue
				}
				stop = start + 1 // a single entry larger than a segment gets one of its own
			}
		}
		to := entryEnd(g, stop-1)
		if err := w.writeSync(g.buf[from:to]); err != nil {
			failFrom(cs, start, err)
			return
		}
		for i := start; i < stop; i++ {
			e := g.ents[i]
			cs[i].loc = Location{Segment: w.cur, Offset: w.curSize + int64(e.off-from) + entryHeaderSize, Size: e.size}
		}
		w.curSize += int64(to - from)
		w.syncedSize = w.curSize
		start = stop
	}
	return
}

// poisonLocked starts (or extends) a failure: until the callbacks of everything failed so far
// have been called, every group the writer takes fails without being written. So an entry
// appended after a failed one but before that failure was reported fails too: the caller
// (a partition assigning offsets at Append time) can give the failed offsets back without
// leaving a hole, and replay may treat an offset gap between consecutive batches as lost
// data. It returns the completion to queue after the failed ones; when it is called and no
// later failure happened, writes resume. Called with fileMu held.
func (w *fileWAL) poisonLocked(cause error) completion {
	if !w.poisoned {
		w.poisonErr = cause
	}
	w.poisoned = true
	w.failGen++
	gen := w.failGen
	return completion{done: func(Location, error) {
		w.fileMu.Lock()
		if w.failGen == gen {
			w.poisoned = false
		}
		w.fileMu.Unlock()
	}}
}

func firstErr(cs []completion) error {
	for i := range cs {
		if cs[i].err != nil {
			return cs[i].err
		}
	}
	return nil
}

func failFrom(cs []completion, i int, err error) {
	for ; i < len(cs); i++ {
		cs[i].err = err
	}
}

func entryEnd(g *group, i int) int {
	return g.ents[i].off + entryHeaderSize + int(g.ents[i].size)
}

// writeSync writes p at the end of the current segment and fsyncs (slow path, syncer idle).
// On failure it truncates the segment back to curSize. Called with fileMu held.
func (w *fileWAL) writeSync(p []byte) error {
	err := w.writeAt(w.curFile, p, w.curSize, nil)
	if err != nil {
		err = w.retryBuffered(err, p, w.curSize)
	}
	if err == nil {
		err = w.curFile.Sync()
	}
	if err == nil {
		return nil
	}
	err = fmt.Errorf("storage: WAL write to segment %d: %w", w.cur, err)
	w.truncateBack(w.curSize, err)
	return err
}

// truncateBack cuts the current segment back to size after a failed write or fsync, so that
// no partial or unsynced entry remains. If that fails the WAL stops accepting writes.
// Called with fileMu held and no write in flight.
func (w *fileWAL) truncateBack(size int64, cause error) {
	if terr := w.curFile.Truncate(size); terr != nil {
		w.setBroken(fmt.Errorf("%w; truncating back failed: %v", cause, terr))
	}
	w.curSize = size
	if w.direct.Load() {
		w.forgetRecentFrom(w.cur, size)
		if terr := w.loadTail(w.cur, size); terr != nil {
			w.setBroken(fmt.Errorf("%w; reading the segment's last block back failed: %v", cause, terr))
		}
	}
}

// syncer fsyncs what the writer has written and reports the completions in order. A failed
// fsync fails everything written since the last good fsync: the segment is truncated back to
// that point (after a failed fsync the kernel may have dropped those pages).
func (w *fileWAL) syncer() {
	defer close(w.syncerDone)
	w.fileMu.Lock()
	for {
		for len(w.syncQ) == 0 && !w.writerExited {
			w.syncCond.Wait()
		}
		if len(w.syncQ) == 0 {
			break
		}
		items := w.syncQ
		w.syncQ = nil
		target, f := w.curSize, w.curFile
		var err error
		if target > w.syncedSize {
			w.syncing = true
			w.fileMu.Unlock()
			start := time.Now()
			err = f.Sync()
			took := time.Since(start)
			w.fileMu.Lock()
			w.syncing = false
			if err == nil && w.opts.OnSync != nil {
				n := 0
				for _, cs := range items {
					n += len(cs)
				}
				w.opts.OnSync(target-w.syncedSize, n, took)
			}
		}
		if err == nil {
			w.syncedSize = max(w.syncedSize, target)
		} else {
			err = fmt.Errorf("storage: WAL fsync of segment %d: %w", w.cur, err)
			for w.writing {
				w.syncCond.Wait()
			}
			w.truncateBack(w.syncedSize, err)
			// Groups written since this fsync started are gone too.
			items = append(items, w.syncQ...)
			w.syncQ = nil
			items = append(items, []completion{w.poisonLocked(err)})
		}
		for _, cs := range items {
			if err != nil {
				for i := range cs {
					if cs[i].err == nil {
						cs[i].err = err
						cs[i].loc = Location{}
					}
				}
			}
			w.disp.push(cs...)
		}
		w.syncCond.Broadcast()
		if err == nil {
			w.dropSyncedLocked()
		}
	}
	w.fileMu.Unlock()
}

// dropChunk is the least the syncer drops from the page cache at a time.
const dropChunk = 8 << 20

// dropSyncedLocked drops fsynced data of the current segment that is more than CacheBytes
// behind the end from the OS page cache (the callbacks have already been handed over, so it
// costs no latency). The kernel then reuses those pages for the next writes, which on some
// virtual machines is several times cheaper than populating fresh pages, and the WAL keeps
// only a bounded window of recent data cached for tailing consumers. Called by the syncer
// with fileMu held; releases it during the call.
func (w *fileWAL) dropSyncedLocked() {
	if w.opts.CacheBytes < 0 || w.direct.Load() {
		return
	}
	to := w.syncedSize - w.opts.CacheBytes
	from := w.dropped
	if to-from < dropChunk {
		return
	}
	w.segMu.RLock()
	rf := w.segs[w.cur]
	w.segMu.RUnlock()
	if rf == nil {
		return
	}
	w.dropped = to
	w.syncing = true // keeps rotate (the only other user of dropped) waiting
	w.fileMu.Unlock()
	dropPageCache(rf, from, to-from)
	w.fileMu.Lock()
	w.syncing = false
	w.syncCond.Broadcast()
}

func (w *fileWAL) setBroken(err error) {
	w.log.Error("storage: WAL stopped accepting writes", "err", err)
	w.mu.Lock()
	w.broken = err
	w.mu.Unlock()
}

// rotate seals the current segment (it is already fsynced; the seal entry is written and
// fsynced after its last entry, see recovery rules in wal_recovery.go) and creates the next.
func (w *fileWAL) rotate() error {
	if err := w.writeSync(sealEntry(w.curSize)); err != nil {
		return fmt.Errorf("storage: sealing WAL segment %d: %w", w.cur, err)
	}
	w.curSize += entryHeaderSize
	w.syncedSize = w.curSize
	n := w.cur + 1
	f, rf, err := w.createSeg(n)
	if err != nil {
		return fmt.Errorf("storage: creating WAL segment %d: %w", n, err)
	}
	w.curFile.Close()
	w.segMu.Lock()
	if old := w.segs[w.cur]; old != nil && w.opts.CacheBytes >= 0 && !w.direct.Load() {
		dropPageCache(old, w.dropped, 0) // the finished segment, to its end
	}
	w.segs[n] = rf
	w.cur = n
	w.segMu.Unlock()
	w.curFile, w.curSize, w.curOpened = f, 0, time.Now()
	w.syncedSize, w.dropped = 0, 0
	w.tail = w.tail[:0]
	return nil
}

// createSeg creates segment n, fsyncs the directory and opens a read handle.
func (w *fileWAL) createSeg(n uint64) (writeFile, *os.File, error) {
	path := w.segPath(n)
	f, err := w.openSegFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return nil, nil, err
	}
	rf, err := os.Open(path)
	if err == nil {
		err = w.files.SyncDir(w.dir)
		if err != nil {
			rf.Close()
		}
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, nil, err
	}
	return f, rf, nil
}

// openTail opens segment n for appending at size. It fsyncs the segment first: a previous
// process that died (without the machine crashing) may have left written but unsynced
// entries in the page cache, which replay has just accepted.
// With truncate it first cuts the segment to size (a torn tail, or padding).
func (w *fileWAL) openTail(n uint64, size int64, truncate bool) error {
	f, err := w.openSegFile(w.segPath(n), os.O_WRONLY)
	if err != nil {
		return err
	}
	if truncate {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	w.curFile, w.curSize, w.syncedSize = f, size, size
	w.curOpened = time.Now()
	w.predEnd = size
	if w.direct.Load() {
		if err := w.loadTail(n, size); err != nil {
			f.Close()
			return err
		}
	}
	return nil
}

// Replay implements WAL. b and b.Data are only valid during fn (the buffer is reused, so
// memory stays bounded whatever the log's size). It must not be called after Append.
func (w *fileWAL) Replay(fn func(b *Batch, loc Location) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.tailReady || w.tailErr != nil {
		return errors.New("storage: WAL Replay after Append or after a failed Replay")
	}
	if err := w.setupTail(fn); err != nil {
		// Appends would land after data that could not be read back: refuse them.
		w.tailErr = fmt.Errorf("storage: WAL replay failed: %w", err)
		return err
	}
	w.tailReady = true
	return nil
}

// ReadAt implements WAL with pread on the segment's read handle.
func (w *fileWAL) ReadAt(loc Location, buf []byte) ([]byte, error) {
	if loc.Size < 0 || loc.Offset < entryHeaderSize {
		return nil, fmt.Errorf("storage: invalid location %+v", loc)
	}
	if w.isClosed.Load() {
		return nil, ErrClosed
	}
	if b, ok := w.readRecent(loc, buf); ok {
		return b, nil
	}
	w.segMu.RLock()
	f := w.segs[loc.Segment]
	w.segMu.RUnlock()
	if f == nil {
		return nil, ErrNotFound
	}
	buf = growBuf(buf, int(loc.Size))
	n, err := f.ReadAt(buf, loc.Offset)
	if err != nil {
		if errors.Is(err, os.ErrClosed) {
			return nil, ErrNotFound
		}
		if err == io.EOF && n < len(buf) {
			return nil, fmt.Errorf("storage: read %+v beyond end of segment: %w", loc, io.ErrUnexpectedEOF)
		}
		if err != io.EOF {
			return nil, err
		}
	}
	return buf, nil
}

// RemoveSegmentsBefore implements WAL. The segment being written is never removed.
func (w *fileWAL) RemoveSegmentsBefore(seg uint64) error {
	if w.isClosed.Load() {
		return ErrClosed
	}
	w.segMu.Lock()
	var firstErr error
	removed := false
	for _, n := range sortedSegs(w.segs) {
		if n >= seg || n >= w.cur {
			break
		}
		f := w.segs[n]
		delete(w.segs, n)
		w.forgetRecent(n)
		f.Close()
		if err := os.Remove(w.segPath(n)); err != nil && !errors.Is(err, os.ErrNotExist) && firstErr == nil {
			firstErr = err
		}
		removed = true
	}
	w.segMu.Unlock()
	if removed {
		if err := w.files.SyncDir(w.dir); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// Close implements WAL: queued appends are written and their callbacks called first.
func (w *fileWAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.isClosed.Store(true)
	w.mu.Unlock()
	w.workCond.Broadcast()
	w.spaceCond.Broadcast()
	<-w.writerDone
	w.mu.Lock()
	if w.freeTimer != nil {
		w.freeTimer.Stop()
	}
	w.free = nil
	w.dropRecent()
	w.mu.Unlock()
	w.disp.close()
	var err error
	if w.curFile != nil {
		w.mu.Lock()
		clean := w.tailReady && w.broken == nil && !w.opts.noCleanMarker
		w.mu.Unlock()
		w.fileMu.Lock()
		clean = clean && w.syncedSize == w.curSize
		end := cleanMarker{Seg: w.cur, Size: w.curSize}
		w.fileMu.Unlock()
		err = w.curFile.Close()
		if err == nil && clean {
			// Everything written is durable: record where the WAL ends (recovery.go).
			err = writeCleanMarker(w.files, w.cleanPath(), end)
		}
	}
	for _, f := range w.oldFiles {
		f.Close()
	}
	w.segMu.Lock()
	w.closeSegs()
	w.segs = map[uint64]*os.File{}
	w.segMu.Unlock()
	return err
}
