package storage

// File WAL: a directory of segment files written by one goroutine with group commit.
//
//	<Dir>/wal/00000000000000000001.wal
//	<Dir>/wal/00000000000000000002.wal     segment number = file name, monotonic, gaps allowed
//	...                                     (RemoveSegmentsBefore deletes a prefix)
//
// A segment is a plain sequence of entries, no file header; written with direct I/O (see
// direct.go) it may end with zero bytes up to the block boundary the file ends on: the
// padding of the last block, and the region written with zeros ahead of the commits
// (wal_prealloc.go):
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
//	   7     1  flags (0; 1 = the seal ending a rotated segment, see wal_recovery.go;
//	            2 = an external entry, below)
//	   8     4  length of the batch bytes (uint32, at most 1 GiB)
//	  12    16  topic ID
//	  28     4  partition (int32)
//	  32     8  base offset (int64)
//	  40     8  last offset (int64)
//	  48     8  max timestamp (int64)
//	  56     n  batch bytes (the Kafka RecordBatch as served); Location.Offset points here
//
// An external entry (Batch.External: a hot partition writes its batches only into its own
// segment file, made durable with the WAL's group commit, so they are not written twice)
// holds no batch bytes. Its header is the same as if they followed (flags 2, length and CRC
// of the batch), but replay cannot check that CRC without them, so a CRC of the header
// itself follows instead, and the entry is 60 bytes on disk:
//
//	 off  size  field
//	   0    56  header, as above (flags 2; the CRC covers the batch bytes held elsewhere)
//	  56     4  CRC-32C over bytes 0..55; Location.Offset points here, Location.Size is n
//
// Replay checks the header CRC; Batch.CheckExternal lets the caller check the batch bytes it
// finds in its segment against the header's CRC.
//
// Writing: Append copies the entry (header and batch, or header and header CRC) into the
// open commit group (a contiguous buffer of at most MaxGroupDataBytes unless a single entry
// is bigger, and of at most MaxGroupBytes of entry weight, below). Three goroutines form a
// pipeline: the writer takes one group at a time and writes it with one pwrite (direct I/O
// where the file system allows, see direct.go); the syncer fsyncs everything written so far
// (one fsync covers every group written while the previous fsync ran) and hands the
// callbacks to the callback goroutine, which calls them in append order. The writer waits
// while MaxGroupBytes or more are written but unsynced, so at most about two groups are
// ever unsynced. A group that does not fit in the rest of
// the segment waits until everything before it is fsynced and is then split at an entry
// boundary: the first part is written and fsynced, a new segment is created (and the
// directory fsynced), then the rest follows. So a segment is complete and durable before
// the next one exists. A group arriving when the segment is older than SegmentMaxAge takes
// the same path and starts a new segment first (so drained data leaves the disk under a
// slow load too).
//
// External entries: every fsync of WAL data (the syncer's, or the slow path's) runs together
// with SyncExternal of every distinct Syncer among the external entries it covers, each on a
// goroutine of its own, and the entries are reported only when all succeeded; a failed
// SyncExternal is handled as a failed fsync (below). For flow control an external entry
// weighs what it stands for, header plus batch bytes (its Syncer's owner holds them in memory
// until they are durable): in MaxPendingBytes, in MaxGroupBytes (a group closes when its
// weight would pass it) and in the writer's wait for unsynced data, so at most about two
// groups' worth of external batches are ever unsynced.
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
	pendData  int      // bytes of the queued groups' entries (2 x MaxGroupDataBytes, or one larger entry)
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
	// External entries (Batch.External) of the groups in syncQ: their Syncers (the syncer
	// calls them with its next fsync) and batch bytes; extSyncing: the batch bytes of the
	// round being synced. Both count as unsynced data in the writer's wait (unsyncedWeight).
	extQ       []Syncer
	extQBytes  int64
	extSyncing int64
	// poisoned: an append failed and not all failure callbacks have been called yet; every
	// group written meanwhile fails too (see poisonLocked). failGen numbers the failures.
	poisoned  bool
	poisonErr error // the failure that started it
	failGen   uint64
	// preEnd: the current segment's file holds zeros written ahead of the commits up to
	// here (direct mode, wal_prealloc.go; 0: none known); zeros is the buffer they are
	// written from. Changed by the writer's writes and, with no write in flight, where the
	// current segment changes or is cut back (unprepare).
	preEnd int64
	zeros  []byte
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
	copyFree   [][]byte // buffers of copied groups that fell out of recent, for the next copies (cacheMu)
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
	// weight counts the group's entries for flow control: their bytes, plus the batch bytes
	// of external entries (see entryWeight).
	weight int
}

// entryWeight is what b counts for in MaxPendingBytes and MaxGroupBytes: the header and the
// batch bytes, external or not (the owner of an external batch holds its bytes in memory
// until the WAL reports it durable, and they are fsynced with the group's commit).
func entryWeight(b *Batch) int { return entryHeaderSize + len(b.Data) }

// data returns the group's entries as they are written to the segment.
func (g *group) data() []byte { return g.buf[g.lead:] }

type groupEntry struct {
	off  int   // start of the entry (header) in buf
	size int32 // batch bytes (Location.Size)
	ext  Syncer
	done func(Location, error)
}

// diskLen is the entry's size in the group's buffer and on disk.
func (e *groupEntry) diskLen() int {
	if e.ext != nil {
		return entryHeaderSize + externalCRCSize
	}
	return entryHeaderSize + int(e.size)
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
	// Enough spare groups to refill the whole pending window without allocating: two
	// groups full of data, or as many as MaxPendingBytes holds of external entries' weight.
	w.maxFree = max(o.MaxPendingBytes/o.MaxGroupBytes, 2) + 1
	w.workCond.L = &w.mu
	w.spaceCond.L = &w.mu
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(name, ".wal"+reclaimSuffix) {
			reclaimFile(filepath.Join(dir, name)) // removed before a crash or stop
			continue
		}
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

// Append implements WAL. It copies b (the caller may reuse b.Data once Append returns; of
// an external batch only the header is kept, and b.External until the entry is durable) and
// blocks only while more than MaxPendingBytes are queued.
func (w *fileWAL) Append(b *Batch, done func(Location, error)) {
	size, weight := entryLen(b), entryWeight(b)
	w.mu.Lock()
	if !w.closed && !w.tailReady && w.tailErr == nil {
		w.tailErr = w.setupTail(nil)
		w.tailReady = w.tailErr == nil
	}
	for !w.closed && w.pendBytes > 0 && (w.pendBytes+weight > w.opts.MaxPendingBytes || w.pendData+size > 2*w.opts.MaxGroupDataBytes) {
		w.spaceCond.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		go done(Location{}, ErrClosed)
		return
	}
	if err := checkBatch(b); err != nil {
		w.mu.Unlock()
		go done(Location{}, err)
		return
	}
	var g *group
	if n := len(w.pending); n > 0 {
		g = w.pending[n-1]
		if len(g.ents) > 0 && (g.weight+weight > w.opts.MaxGroupBytes || len(g.data())+size > w.opts.MaxGroupDataBytes) {
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
			g = &group{buf: w.newGroupBuf(max(min(w.groupHint, w.opts.MaxGroupDataBytes), size) + lead)}
		}
		g.lead = lead
		g.buf = g.buf[:lead]
		w.pending = append(w.pending, g)
	}
	off := len(g.buf)
	g.buf = w.growAppend(g.buf, size, w.opts.MaxGroupDataBytes+g.lead)
	putEntry(g.buf[off:off+size], b)
	g.ents = append(g.ents, groupEntry{off: off, size: int32(len(b.Data)), ext: b.External, done: done})
	g.weight += weight
	w.pendBytes += weight
	w.pendData += size
	w.predEnd += int64(size)
	g.predEnd = w.predEnd
	w.mu.Unlock()
	w.workCond.Signal()
}

// checkBatch returns why b cannot be appended, or nil.
func checkBatch(b *Batch) error {
	if len(b.Data) > maxEntryPayload {
		return fmt.Errorf("storage: batch of %d bytes is too large", len(b.Data))
	}
	if b.External != nil && len(b.Data) == 0 {
		return errors.New("storage: an external batch without bytes")
	}
	return nil
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
		return alignedBuf(max(n, w.opts.MaxGroupDataBytes+dioAlign) + dioAlign)[:0]
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
