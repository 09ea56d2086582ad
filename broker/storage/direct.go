package storage

// Direct I/O for WAL segments.
//
// Where the file system supports it (O_DIRECT on Linux), segments are written with direct
// I/O: the group's buffer goes to the device by DMA instead of being copied into the page
// cache first, which at ~1 GB/s of produce traffic was a third of the broker's CPU. The
// segment format is unchanged; only how the bytes reach the disk differs:
//
//   - a direct write must start and end on a block boundary (dioAlign) and come from a
//     block-aligned buffer. The writer starts each write at the block boundary below the
//     segment's end and writes the last partial block again (its bytes are kept in
//     memory: fileWAL.tail), with the new entries after it and zeros up to the next
//     boundary. Rewriting that block cannot damage acknowledged data: its first bytes are
//     the same as on disk, so a torn rewrite leaves them as they were.
//   - a segment therefore ends with fewer than dioAlign zero bytes after its last entry.
//     Replay treats such an all-zero remainder as the segment's end, and cuts it off the
//     last segment before writing on.
//   - Append lays out a new group's buffer so that its first entry has the alignment its
//     file position will have (w.predEnd), leaving room for the partial block in front
//     and for the padding behind: the writer then writes the group from its own buffer.
//     When the guess is wrong (after a rotation or a failed write) the group is copied.
//   - reads go through the page cache (the read handles are ordinary), which no longer
//     holds what was just written; the writer keeps the most recent CacheBytes of written
//     groups in memory instead and ReadAt serves tailing consumers from them.
//
// fsync still follows every write: O_DIRECT alone does not flush the device's cache or
// the file's size. Where O_DIRECT is refused (tmpfs, other systems) or
// WALOptions.BufferedIO is set, the WAL writes through the page cache as before.

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"sort"
	"syscall"
	"unsafe"
)

// dioAlign is the block size direct writes are aligned to (file offset, length and memory).
const dioAlign = 4096

// alignedBuf returns a zero-length slice of capacity n whose first byte is dioAlign-aligned.
func alignedBuf(n int) []byte {
	b := make([]byte, n+dioAlign)
	skip := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % dioAlign); r != 0 {
		skip = dioAlign - r
	}
	return b[skip : skip : skip+n]
}

func alignUp(n int) int { return (n + dioAlign - 1) &^ (dioAlign - 1) }

func alignUp64(n int64) int64 { return (n + dioAlign - 1) &^ (dioAlign - 1) }

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// openSegFile opens a segment for writing, with O_DIRECT unless the WAL writes buffered.
// The first open decides: if the file system refuses O_DIRECT the WAL stays buffered.
func (w *fileWAL) openSegFile(path string, flag int) (writeFile, error) {
	if oDirect != 0 && !w.opts.BufferedIO && (w.direct.Load() || !w.directTried) {
		f, err := w.files.OpenFile(path, flag|oDirect, 0o644)
		if err == nil {
			if !w.directTried {
				w.directTried = true
				w.direct.Store(true)
			}
			return f, nil
		}
		if !errors.Is(err, syscall.EINVAL) {
			return nil, err // decides nothing
		}
		w.directTried = true
		w.direct.Store(false)
		w.log.Info("storage: O_DIRECT refused by the file system; the WAL writes through the page cache", "dir", w.dir)
	}
	w.directTried = true
	return w.files.OpenFile(path, flag, 0o644)
}

// writeAt writes data at pos of the current segment file f. In direct mode it writes whole
// blocks: the kept partial block, data, zero padding; from g's own buffer when data is all
// of g and g was laid out for pos, else through a copy. Called by the writer goroutine
// (with fileMu held, or with w.writing set, which keeps truncateBack away from tail).
func (w *fileWAL) writeAt(f writeFile, data []byte, pos int64, g *group) error {
	if !w.direct.Load() {
		_, err := f.WriteAt(data, pos)
		return err
	}
	t := int(pos % dioAlign)
	if len(w.tail) != t {
		return errors.New("storage: WAL partial block out of step with the segment size")
	}
	n := t + len(data)
	padded := alignUp(n)
	var wbuf []byte
	if g != nil && g.lead == t && len(g.buf) == n && cap(g.buf) >= padded {
		wbuf = g.buf[:padded]
	} else {
		wbuf = alignedBuf(padded)[:padded]
		copy(wbuf[t:], data)
		w.directCopies.Add(1)
	}
	copy(wbuf, w.tail)
	clear(wbuf[n:])
	if _, err := f.WriteAt(wbuf, pos-int64(t)); err != nil {
		if errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("%w: %w", errDirectRefused, err)
		}
		return err
	}
	w.prepareAhead(f, pos-int64(t)+int64(padded), len(data))
	nt := int((pos + int64(len(data))) % dioAlign)
	w.tail = append(w.tail[:0], wbuf[n-nt:n]...)
	return nil
}

// errDirectRefused: the file system took O_DIRECT at open but refuses block-aligned writes
// (it wants a larger alignment). The WAL then leaves direct I/O (retryBuffered).
var errDirectRefused = errors.New("storage: direct write refused")

// retryBuffered handles a failed write of data at pos: if it was a refused direct write, the
// WAL switches to buffered writes for good (reopening the current segment without
// O_DIRECT) and writes data again. Called with fileMu held and no write in flight.
func (w *fileWAL) retryBuffered(err error, data []byte, pos int64) error {
	if !errors.Is(err, errDirectRefused) {
		return err
	}
	f, oerr := w.files.OpenFile(w.segPath(w.cur), os.O_WRONLY, 0o644)
	if oerr != nil {
		return err
	}
	w.log.Warn("storage: direct I/O write refused; the WAL writes through the page cache from now on", "dir", w.dir, "err", err)
	// The syncer may be fsyncing the old handle right now: it is closed with the WAL.
	w.oldFiles = append(w.oldFiles, w.curFile)
	w.curFile = f
	w.direct.Store(false)
	_, err = f.WriteAt(data, pos)
	return err
}

// loadTail reads the partial last block of segment n (size bytes long) into w.tail.
func (w *fileWAL) loadTail(n uint64, size int64) error {
	t := int(size % dioAlign)
	w.tail = growBuf(w.tail, t)
	if t == 0 {
		return nil
	}
	w.segMu.RLock()
	rf := w.segs[n]
	w.segMu.RUnlock()
	if rf == nil {
		return ErrNotFound
	}
	_, err := rf.ReadAt(w.tail, size-int64(t))
	return err
}

type cachedGroup struct {
	seg   uint64
	start int64  // file position of data[0]
	data  []byte // g.data() when it was cached, or a copy of it
	g     *group // nil for a copy
}

// held is the memory a recent group holds.
func (c *cachedGroup) held() int64 {
	if c.g != nil {
		return int64(cap(c.g.buf))
	}
	return int64(cap(c.data))
}

// cacheGroup adds the written group g to the recent groups and returns the groups that are
// free for reuse: g itself when its data was small enough to be kept as a copy (a full-size
// buffer held for a few kilobytes would leave room for only a handful of recent groups under
// light load), and groups that fell out (beyond CacheBytes). Called by the writer with
// fileMu held.
func (w *fileWAL) cacheGroup(g *group) []*group {
	if w.opts.CacheBytes <= 0 {
		return []*group{g}
	}
	var out []*group
	clear(g.ents) // the callbacks are in the completions already
	g.ents = g.ents[:0]
	c := cachedGroup{seg: g.seg, start: g.start, data: g.data(), g: g}
	w.cacheMu.Lock()
	defer w.cacheMu.Unlock()
	if len(c.data) <= cap(g.buf)/8 {
		c.data, c.g = append(w.copyBufLocked(len(c.data)), c.data...), nil
		out = append(out, g)
	}
	w.recent = append(w.recent, c)
	w.recentSize += c.held()
	for len(w.recent) > 0 && w.recentSize > w.opts.CacheBytes {
		old := w.recent[0]
		w.recent[0] = cachedGroup{}
		w.recent = w.recent[1:]
		w.recentSize -= old.held()
		if old.g != nil {
			out = append(out, old.g)
		} else if len(w.copyFree) < maxCopyFree {
			// No reader holds it: readRecent copies out under cacheMu.
			w.copyFree = append(w.copyFree, old.data[:0])
		}
	}
	return out
}

// maxCopyFree: buffers of copied recent groups kept for reuse. A copy per group commit
// under light load (1,000 a second at 20,000 records/s) was a third of the broker's
// garbage, and with the low GC percentage a collection every few milliseconds.
const maxCopyFree = 8

// copyBufLocked returns an empty buffer for a copy of n bytes: a free one if the last
// freed is large enough, else a new one rounded up (sizes vary from group to group).
// cacheMu held.
func (w *fileWAL) copyBufLocked(n int) []byte {
	if k := len(w.copyFree); k > 0 {
		b := w.copyFree[k-1]
		w.copyFree[k-1] = nil
		w.copyFree = w.copyFree[:k-1]
		if cap(b) >= n {
			return b
		}
	}
	return make([]byte, 0, max(4<<10, 1<<bits.Len(uint(n-1))))
}

// dropRecent forgets the recent groups (idle, or closing).
func (w *fileWAL) dropRecent() {
	w.cacheMu.Lock()
	w.recent, w.recentSize, w.copyFree = nil, 0, nil
	w.cacheMu.Unlock()
}

// readRecent copies loc from a recent group, if one holds it (ErrExternal if the header
// there is an external entry's). The recent groups are in write order, so sorted by
// segment and position.
func (w *fileWAL) readRecent(loc Location, buf []byte) ([]byte, bool, error) {
	w.cacheMu.RLock()
	defer w.cacheMu.RUnlock()
	// The last group that starts at or before the entry's header.
	hpos := loc.Offset - entryHeaderSize
	i := sort.Search(len(w.recent), func(i int) bool {
		c := &w.recent[i]
		return c.seg > loc.Segment || c.seg == loc.Segment && c.start > hpos
	}) - 1
	if i < 0 {
		return nil, false, nil
	}
	c := &w.recent[i]
	end := c.start + int64(len(c.data))
	if c.seg != loc.Segment || loc.Offset > end {
		return nil, false, nil
	}
	if isExternalHeader(c.data[hpos-c.start:]) {
		return nil, true, ErrExternal
	}
	if loc.Offset+int64(loc.Size) > end {
		return nil, false, nil
	}
	buf = growBuf(buf, int(loc.Size))
	copy(buf, c.data[loc.Offset-c.start:])
	return buf, true, nil
}

// forgetRecent drops the recent groups of segment seg (being removed), so that reads of it
// fail as reads of any removed segment do.
func (w *fileWAL) forgetRecent(seg uint64) {
	w.cacheMu.Lock()
	kept := w.recent[:0]
	for _, c := range w.recent {
		if c.seg == seg {
			w.recentSize -= c.held()
			continue
		}
		kept = append(kept, c)
	}
	clear(w.recent[len(kept):])
	w.recent = kept
	w.cacheMu.Unlock()
}

// forgetRecentFrom drops the recent groups of segment seg that reach beyond pos (the segment
// was cut back to pos after a failed write or fsync), so that entries written there later
// are never read from the groups that failed. Called with fileMu held.
func (w *fileWAL) forgetRecentFrom(seg uint64, pos int64) {
	w.cacheMu.Lock()
	defer w.cacheMu.Unlock()
	for n := len(w.recent); n > 0; n-- {
		c := &w.recent[n-1]
		if c.seg < seg || c.seg == seg && c.start+int64(len(c.data)) <= pos {
			break
		}
		w.recentSize -= c.held()
		*c = cachedGroup{}
		w.recent = w.recent[:n-1]
	}
}
