package storage

// The WAL's write pipeline: the writer goroutine (one pwrite per commit group), failure
// handling (poisoning, truncating back), the syncer goroutine (one fsync for everything
// written meanwhile) and dropping synced pages (see the design at the top of wal.go).

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

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
		w.pendBytes -= g.weight
		w.pendData -= len(g.data())
		w.spaceCond.Broadcast()
		w.groupHint = len(g.data())
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
	if len(w.free) < w.maxFree && w.usableCap(g.buf) <= w.opts.MaxGroupDataBytes+dioAlign {
		clear(g.ents)
		g.ents = g.ents[:0]
		g.buf = g.buf[:0]
		g.weight = 0
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
// the syncer may be fsyncing earlier groups (at most about two groups are ever unsynced,
// counting external entries by their weight) and queued with its Syncers for the syncer.
// A group that needs a new segment waits until everything before it is fsynced, then is
// written and fsynced here part by part (each with its entries' Syncers), so that a segment
// is complete and durable before the next one is created.
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
		for w.unsyncedWeight() >= int64(w.opts.MaxGroupBytes) {
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
		extDone := writeExternals(g.ents)
		err := w.writeAt(f, data, pos, g)
		extErr := <-extDone
		w.fileMu.Lock()
		w.writing = false
		w.syncCond.Broadcast()
		if err != nil {
			err = w.retryBuffered(err, data, pos)
		}
		if err != nil {
			err = fmt.Errorf("storage: WAL write to segment %d: %w", w.cur, err)
		}
		if err = joinErrs(err, extErr); err != nil {
			w.truncateBack(pos, err)
			for i := range cs {
				cs[i].err = err
			}
			return
		}
		for i, e := range g.ents {
			cs[i].loc = Location{Segment: w.cur, Offset: pos + int64(e.off-g.lead) + entryHeaderSize, Size: e.size}
		}
		var extBytes int64
		w.extQ, extBytes = appendSyncers(w.extQ, g.ents)
		w.extQBytes += extBytes
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
		exts, _ := appendSyncers(nil, g.ents[start:stop])
		if err := w.writeSync(g.buf[from:to], exts); err != nil {
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
	return g.ents[i].off + g.ents[i].diskLen()
}

// unsyncedWeight is what the writer has written but the syncer not yet made durable: bytes
// of the current segment, and the batch bytes of external entries. Called with fileMu held.
func (w *fileWAL) unsyncedWeight() int64 {
	return w.curSize - w.syncedSize + w.extQBytes + w.extSyncing
}

// appendSyncers appends to dst the Syncers of the external entries among ents (a Syncer
// repeating the previous one is skipped: consecutive entries of a partition are common) and
// returns it with the external entries' batch bytes.
func appendSyncers(dst []Syncer, ents []groupEntry) ([]Syncer, int64) {
	var n int64
	for i := range ents {
		e := &ents[i]
		if e.ext == nil {
			continue
		}
		n += int64(e.size)
		if len(dst) == 0 || dst[len(dst)-1] != e.ext {
			dst = append(dst, e.ext)
		}
	}
	return dst, n
}

// writeExternals calls WriteExternal of the distinct ExternalWriters among ents
// concurrently, in the background, and sends their joined error (nil: all succeeded, or
// there were none).
func writeExternals(ents []groupEntry) <-chan error {
	exts, _ := appendSyncers(nil, ents)
	return writeExternalsOf(exts)
}

// writeExternalsOf is writeExternals for the Syncers exts (reordered in place).
func writeExternalsOf(exts []Syncer) <-chan error {
	done := make(chan error, 1)
	exts = distinctSyncers(exts)
	var ws []ExternalWriter
	for _, s := range exts {
		if ew, ok := s.(ExternalWriter); ok {
			ws = append(ws, ew)
		}
	}
	if len(ws) == 0 {
		done <- nil
		return done
	}
	go func() {
		errs := make([]error, len(ws))
		var wg sync.WaitGroup
		for i, ew := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = ew.WriteExternal()
			}()
		}
		wg.Wait()
		var err error
		for _, e := range errs {
			if e != nil && err == nil {
				err = fmt.Errorf("storage: writing the batch bytes of external WAL entries failed: %w", e)
			}
		}
		done <- err
	}()
	return done
}

// syncAll fsyncs f (if syncFile) and calls SyncExternal of every distinct Syncer in exts,
// all concurrently (the partitions' segment files are fsynced in parallel with the WAL), and
// waits for all. It returns the fsync's error and the external syncs' (nil when all succeeded).
func syncAll(f writeFile, syncFile bool, exts []Syncer) (fileErr, extErr error) {
	exts = distinctSyncers(exts)
	errs := make([]error, len(exts))
	var wg sync.WaitGroup
	for i, s := range exts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.SyncExternal()
		}()
	}
	if syncFile {
		fileErr = f.Sync()
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			if failed == 0 {
				extErr = err
			}
			failed++
		}
	}
	if failed > 0 {
		extErr = fmt.Errorf("storage: syncing the batch bytes of external WAL entries failed (%d of %d syncers): %w", failed, len(exts), extErr)
	}
	return fileErr, extErr
}

// distinctSyncers removes repeated Syncers from exts (in place).
func distinctSyncers(exts []Syncer) []Syncer {
	if len(exts) < 2 {
		return exts
	}
	seen := make(map[Syncer]struct{}, len(exts))
	out := exts[:0]
	for _, s := range exts {
		if _, ok := seen[s]; !ok {
			seen[s] = struct{}{}
			out = append(out, s)
		}
	}
	clear(exts[len(out):])
	return out
}

// joinErrs returns a and b as one error (either may be nil); errors.Is sees both.
func joinErrs(a, b error) error {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return fmt.Errorf("%w; %w", a, b)
}

// writeSync writes p at the end of the current segment and fsyncs it, together with the
// Syncers of the external entries in p (slow path, syncer idle). On failure it truncates
// the segment back to curSize. Called with fileMu held.
func (w *fileWAL) writeSync(p []byte, exts []Syncer) error {
	err := w.writeAt(w.curFile, p, w.curSize, nil)
	if err != nil {
		err = w.retryBuffered(err, p, w.curSize)
	}
	var extErr error
	if err == nil {
		if extErr = <-writeExternalsOf(slices.Clone(exts)); extErr == nil {
			err, extErr = syncAll(w.curFile, true, exts)
		}
	}
	if err != nil {
		err = fmt.Errorf("storage: WAL write to segment %d: %w", w.cur, err)
	}
	if err = joinErrs(err, extErr); err == nil {
		return nil
	}
	w.truncateBack(w.curSize, err)
	return err
}

// truncateBack cuts the current segment back to size after a failed write or fsync, so that
// no partial or unsynced entry remains. If that fails the WAL stops accepting writes.
// Called with fileMu held and no write in flight.
func (w *fileWAL) truncateBack(size int64, cause error) {
	w.unprepare()
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

// syncer fsyncs what the writer has written, together with the Syncers of its external
// entries, and reports the completions in order. A failed fsync (or external sync) fails
// everything written since the last good fsync: the segment is truncated back to that point
// (after a failed fsync the kernel may have dropped those pages; an entry whose batch bytes
// may be lost must not stay).
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
		exts := w.extQ
		w.extQ = nil
		w.extSyncing, w.extQBytes = w.extQBytes, 0
		target, f := w.curSize, w.curFile
		var err error
		// The external entries are synced even if the WAL's bytes already are (they should
		// not be: the slow path syncs its own).
		if syncFile := target > w.syncedSize; syncFile || len(exts) > 0 {
			w.syncing = true
			w.fileMu.Unlock()
			start := time.Now()
			fileErr, extErr := syncAll(f, syncFile, exts)
			took := time.Since(start)
			w.fileMu.Lock()
			w.syncing = false
			if fileErr != nil {
				fileErr = fmt.Errorf("storage: WAL fsync of segment %d: %w", w.cur, fileErr)
			}
			err = joinErrs(fileErr, extErr)
			if err == nil && syncFile && w.opts.OnSync != nil {
				n := 0
				for _, cs := range items {
					n += len(cs)
				}
				w.opts.OnSync(target-w.syncedSize, n, took)
			}
		}
		w.extSyncing = 0
		if err == nil {
			w.syncedSize = max(w.syncedSize, target)
		} else {
			for w.writing {
				w.syncCond.Wait()
			}
			w.truncateBack(w.syncedSize, err)
			// Groups written since this fsync started are gone too (their external entries
			// need no sync).
			items = append(items, w.syncQ...)
			w.syncQ = nil
			w.extQ, w.extQBytes = nil, 0
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
