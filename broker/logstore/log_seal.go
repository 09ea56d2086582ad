package logstore

// Sealing the active segment: the seal itself (Seal, the background roll rollAsync), putting
// a failed seal's batches back, and the background writes of the active segment's chunks
// (tail.go).

import (
	"errors"
	"fmt"
	"slices"
)

// Seal writes the active segment to the Store as a sealed segment. The drain calls it to
// let the WAL go; Append calls it to roll (in the background with Options.AsyncRoll).
func (l *Log) Seal() error {
	l.sealMu.Lock()
	defer l.sealMu.Unlock()
	a, data := l.startSeal()
	if a == nil {
		return nil
	}
	return l.completeSeal(a, data)
}

// rollAsync seals the active segment in the background, so the appender (the WAL's
// callback, which acknowledges every producer) does not wait for the Store. While an
// earlier seal still runs, the active segment goes on taking batches (the next append
// rolls it once that seal is done) until must: then it seals in the foreground, after the
// running one. At most one segment is being written per log, and a slow disk stalls the
// acknowledgements only once a partition's active segment reaches rollSlack x
// MaxActiveBytes (waiting at every roll for the previous seal's fsync cut throughput by
// half and more on a loaded disk).
func (l *Log) rollAsync(must bool) error {
	if !l.sealMu.TryLock() {
		if !must {
			return nil
		}
		return l.Seal()
	}
	a, data := l.startSeal()
	if a == nil {
		l.sealMu.Unlock()
		return nil
	}
	go func() {
		defer l.sealMu.Unlock()
		if err := l.completeSeal(a, data); err != nil {
			// The batches are back in the active segment and still in the WAL (the
			// durable offset did not move): the next roll or drain seal retries.
			l.opts.Logger.Warn("logstore: sealing a segment failed; retried at the next roll", "log", l.prefix, "err", err)
		}
	}()
	return nil
}

// startSeal moves the active segment to sealing and encodes its footer. sealMu held.
func (l *Log) startSeal() (*segBuilder, []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.active
	if a == nil || len(a.staged) > 0 {
		return nil, nil // a builder with staged batches waits for their commits
	}
	l.active, l.sealing = nil, a
	return a, a.footer(a.next, 0, l.openList())
}

// completeSeal writes the rest of the segment (with a writer: the chunks not yet written,
// the data and the footer f; without: all of it) and makes it part of the log. sealMu held.
func (l *Log) completeSeal(a *segBuilder, f []byte) error {
	name := segName(l.prefix, a.base, 0)
	if a.ext {
		a.writeMu.Lock() // a write or sync of the builder finishes first
		defer a.writeMu.Unlock()
		a.syncMu.Lock()
		defer a.syncMu.Unlock()
	}
	l.mu.Lock()
	for a.flushing {
		l.flushed.Wait()
	}
	w := a.w
	var rest [][]byte
	for _, c := range a.pend {
		rest = append(rest, c.b)
	}
	data := a.data
	if a.ext {
		// What WriteExternal wrote stays; the rest (batches appended the ordinary way since)
		// follows it.
		from := int64(0)
		if a.dw != nil {
			a.dw.SetSize(a.flushed)
			from = a.flushed
		}
		rest, data = a.extPieces(from, a.size), nil
	}
	l.mu.Unlock()
	var err error
	switch {
	case w != nil:
		err = w.Commit(append(rest, data, f)...)
	case len(rest) > 0: // its object could not be created: all of it is in memory
		err = l.st.Put(name, slices.Concat(append(rest, data, f)...))
	default: // less than a chunk, or a Store without Creator
		err = l.st.Put(name, a.finishWith(f))
	}
	size := a.size + int64(len(f))
	l.mu.Lock()
	if err != nil {
		defer l.mu.Unlock()
		l.sealing = nil
		c := l.active
		// Put the batches back in front of whatever was appended meanwhile.
		if c != nil {
			for c.flushing {
				l.flushed.Wait()
			}
			if merr := l.mergeLocked(a, c); merr != nil {
				// Only when the disk fails reads too: the log end goes back to what
				// a holds; the rest is still in the WAL (the durable offset did not
				// move), replayed at the next start.
				l.next = a.next
				err = errors.Join(err, merr)
			}
		}
		l.active = a
		l.heldLocked()
		l.sealFailedAt = max(l.opts.Now(), 1)
		if c != nil && c.w != nil {
			go c.w.Abort()
		}
		return fmt.Errorf("logstore: sealing %s: %w", name, err)
	}
	s, derr := decodeTrailer(f[len(f)-trailerLen:], size)
	if derr != nil {
		l.mu.Unlock()
		return derr // not reachable: footer wrote it
	}
	s.name = name
	l.sealing = nil
	l.sealFailedAt = 0
	l.segs = append(l.segs, &s)
	if a.cr != nil {
		for _, c := range a.pend {
			l.recycleLocked(c.b)
		}
		l.recycleLocked(a.data)
	}
	a.data, a.pend = nil, nil // readers holding a view keep their slices
	l.heldLocked()
	l.mu.Unlock()
	if a.w != nil {
		a.w.Close() // a reader still holding a view of a reads the segment instead
	}
	return nil
}

// mergeLocked appends c's batches to a (a failed seal becomes the active segment again,
// followed by what was appended meanwhile). l.mu held, c not flushing.
func (l *Log) mergeLocked(a, c *segBuilder) error {
	err := c.view().each(0, func(b []byte, h *batchInfo) bool {
		a.add(b, h)
		return true
	})
	a.aborted = append(a.aborted, c.aborted...)
	return err
}

// startFlushLocked starts writing a builder's pending chunks in the background unless that
// runs, or the last write failed less than sealRetryMs ago. l.mu held.
func (l *Log) startFlushLocked(a *segBuilder, now int64) {
	if a.flushing || len(a.pend) == 0 || a.flushFailed != 0 && now-a.flushFailed < sealRetryMs {
		return
	}
	a.flushing = true
	go l.flush(a)
}

// flush writes a's pending chunks in order, dropping each once written (readers holding a
// view keep their slices). A failed write leaves the chunk pending: the next append after
// sealRetryMs tries again, and the seal writes whatever is still pending.
func (l *Log) flush(a *segBuilder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.flushed.Broadcast()
	for len(a.pend) > 0 {
		if a.w == nil {
			// The first chunk: the object is created off the Append path.
			l.mu.Unlock()
			w, err := a.cr.Create(segName(l.prefix, a.base, 0))
			l.mu.Lock()
			if err != nil {
				a.flushFailed = max(l.opts.Now(), 1)
				l.opts.Logger.Warn("logstore: creating the active segment's file failed; it stays in memory", "log", l.prefix, "err", err)
				break
			}
			a.w = w
		}
		c := a.pend[0]
		l.mu.Unlock()
		err := a.w.Write(c.b)
		l.mu.Lock()
		if err != nil {
			a.flushFailed = max(l.opts.Now(), 1)
			l.opts.Logger.Warn("logstore: writing the active segment failed; it stays in memory", "log", l.prefix, "err", err)
			break
		}
		a.flushFailed = 0
		a.written += int64(len(c.b))
		a.pend[0] = chunk{}
		a.pend = a.pend[1:]
		l.recycleLocked(c.b)
		l.heldLocked()
		l.flushed.Broadcast()
	}
	a.flushing = false
}
