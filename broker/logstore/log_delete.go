package logstore

// Deleting from a partition log: DeleteRecords (moving the log start), the prefix of
// segments it and retention delete, and removing the whole log (DeleteTopics).

import (
	"errors"
	"fmt"
	"slices"
)

// DeleteRecordsBefore advances the log start offset to off (at most NextOffset unless the
// log has no in-memory tail) durably,
// then deletes the segments wholly below it unless a job is running (retention will).
func (l *Log) DeleteRecordsBefore(off int64) error {
	l.mu.Lock()
	if off > l.next && (l.active != nil || l.sealing != nil) {
		l.mu.Unlock()
		return fmt.Errorf("%w: %d is past the log end %d", ErrOffsetOutOfRange, off, l.next)
	}
	if off <= l.ckpt.logStart {
		l.mu.Unlock()
		return nil
	}
	c := l.ckpt
	c.logStart = off
	err := l.st.Put(l.prefix+checkpointName, c.encode())
	if err == nil {
		l.ckpt = c
		// Past the end of a log with no tail (its batches were lost with the WAL, or never
		// drained): the log resumes at off, as Kafka's log end never moves back.
		l.next = max(l.next, off)
	}
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if l.jobMu.TryLock() {
		defer l.jobMu.Unlock()
		_, _, err = l.deletePrefix(0)
	}
	return err
}

// deletePrefix removes the first n sealed segments plus any wholly below the log start
// offset; the checkpoint must already cover them. Called with jobMu held.
func (l *Log) deletePrefix(n int) (int, int64, error) {
	l.mu.Lock()
	for n < len(l.segs) && l.segs[n].next <= l.ckpt.logStart {
		n++
	}
	gone := slices.Clone(l.segs[:n])
	// A new array, not the old one shifted in place: readers iterate the slices they took
	// under l.mu without it (Read, ReadSpan and its background prefetch).
	l.segs = slices.Clone(l.segs[n:])
	l.mu.Unlock()
	var bytes int64
	for _, s := range gone {
		if err := l.st.Delete(s.name); err != nil {
			return 0, 0, err
		}
		bytes += s.size
	}
	return len(gone), bytes, nil
}

// tailWritersLocked waits for the tail builders' background writes and returns their
// writers. l.mu held.
func (l *Log) tailWritersLocked() []ObjectWriter {
	var ws []ObjectWriter
	for _, b := range []*segBuilder{l.sealing, l.active, l.staging} {
		if b != nil {
			for b.flushing {
				l.flushed.Wait()
			}
			if b.w != nil {
				ws = append(ws, b.w)
			}
		}
	}
	return ws
}

// abortTail drops the temporary objects of the unsealed tail (Drain.Close), but keeps the
// durable ones of single-copy builders: they hold the only copy of their batches, which
// the next start's replay reads (staged.go).
func (l *Log) abortTail() error {
	l.sealMu.Lock() // a background seal finishes first
	defer l.sealMu.Unlock()
	l.mu.Lock()
	ws := l.tailWritersLocked()
	durable := l.durableWritersLocked()
	l.mu.Unlock()
	var errs []error
	for _, w := range ws {
		if slices.Contains(durable, w) {
			w.Close()
			continue
		}
		errs = append(errs, w.Abort())
	}
	return errors.Join(errs...)
}

// durableWritersLocked returns the durable writers of the single-copy builders. l.mu held.
func (l *Log) durableWritersLocked() []ObjectWriter {
	var ws []ObjectWriter
	for _, b := range []*segBuilder{l.sealing, l.active, l.staging} {
		if b != nil && b.dw != nil {
			ws = append(ws, b.dw)
		}
	}
	return ws
}

// Remove deletes every object of the log (DeleteTopics). The Log must not be used after.
func (l *Log) Remove() error {
	l.jobMu.Lock()
	defer l.jobMu.Unlock()
	l.sealMu.Lock() // a background seal finishes first
	defer l.sealMu.Unlock()
	l.mu.Lock()
	segs := l.segs
	ws := l.tailWritersLocked()
	for _, b := range []*segBuilder{l.sealing, l.active, l.staging} {
		if b != nil {
			b.data, b.pend, b.staged = nil, nil, nil
		}
	}
	l.segs, l.active, l.sealing, l.staging = nil, nil, nil, nil
	left := l.left
	l.left = nil
	l.heldLocked()
	l.mu.Unlock()
	for _, lo := range left {
		if err := l.st.(DurableCreator).DropLeftover(lo.name); err != nil {
			return err
		}
	}
	for _, w := range ws {
		if err := w.Abort(); err != nil { // the active segment's temporary object
			return err
		}
	}
	for _, s := range segs {
		if err := l.st.Delete(s.name); err != nil {
			return err
		}
	}
	return l.st.Delete(l.prefix + checkpointName)
}
