package storage

// WAL segment files: rotation, creation, reopening the tail, replay, reads by Location,
// trimming a prefix and closing (the file format is drawn at the top of wal.go).

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// rotate seals the current segment (it is already fsynced; the seal entry is written and
// fsynced after its last entry, see recovery rules in wal_recovery.go) and creates the next.
func (w *fileWAL) rotate() error {
	if err := w.writeSync(sealEntry(w.curSize), nil); err != nil {
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
	w.unprepare()
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
	w.unprepare()
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
// memory stays bounded whatever the log's size); for an external entry b.Data is nil and
// loc.Size its ExternalLen. It must not be called after Append.
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

// ReadAt implements WAL with pread on the segment's read handle. The entry's header is read
// first (from a recent group when one holds it, else with a pread of its own): an external
// entry has no batch bytes after it, so its location is refused with ErrExternal.
func (w *fileWAL) ReadAt(loc Location, buf []byte) ([]byte, error) {
	if loc.Size < 0 || loc.Offset < entryHeaderSize {
		return nil, fmt.Errorf("storage: invalid location %+v", loc)
	}
	if w.isClosed.Load() {
		return nil, ErrClosed
	}
	if b, ok, err := w.readRecent(loc, buf); ok {
		return b, err
	}
	w.segMu.RLock()
	f := w.segs[loc.Segment]
	w.segMu.RUnlock()
	if f == nil {
		return nil, ErrNotFound
	}
	var h [entryHeaderSize]byte
	if err := readFull(f, h[:], loc.Offset-entryHeaderSize, loc); err != nil {
		return nil, err
	}
	if isExternalHeader(h[:]) {
		return nil, ErrExternal
	}
	buf = growBuf(buf, int(loc.Size))
	if err := readFull(f, buf, loc.Offset, loc); err != nil {
		return nil, err
	}
	return buf, nil
}

// readFull reads len(p) bytes at off of segment f for ReadAt of loc.
func readFull(f *os.File, p []byte, off int64, loc Location) error {
	n, err := f.ReadAt(p, off)
	switch {
	case err == nil || err == io.EOF && n == len(p):
		return nil
	case errors.Is(err, os.ErrClosed):
		return ErrNotFound
	case err == io.EOF:
		return fmt.Errorf("storage: read %+v beyond end of segment: %w", loc, io.ErrUnexpectedEOF)
	}
	return err
}

// RemoveSegmentsBefore implements WAL. The segment being written is never removed.
func (w *fileWAL) RemoveSegmentsBefore(seg uint64) error {
	if w.isClosed.Load() {
		return ErrClosed
	}
	w.segMu.Lock()
	var firstErr error
	var removed []string
	for _, n := range sortedSegs(w.segs) {
		if n >= seg || n >= w.cur {
			break
		}
		// Renamed out of the way now, its blocks given back gradually (reclaim.go). The
		// read handle is closed first (some systems refuse to rename an open file). A
		// segment that cannot be renamed stays, read handle opened again, and so do the
		// ones after it: only a prefix of the WAL is ever removed (recovery refuses a gap).
		p := w.segPath(n)
		w.segs[n].Close()
		err := os.Rename(p, p+reclaimSuffix)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			firstErr = err
			if f, oerr := os.Open(p); oerr == nil {
				w.segs[n] = f
			}
			break
		}
		if err == nil {
			removed = append(removed, p+reclaimSuffix)
		}
		delete(w.segs, n)
		w.forgetRecent(n)
	}
	w.segMu.Unlock()
	if len(removed) > 0 {
		if err := w.files.SyncDir(w.dir); err != nil && firstErr == nil {
			firstErr = err
		}
		for _, p := range removed {
			reclaimFile(p)
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
