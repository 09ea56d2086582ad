package storage

import (
	"errors"
	"fmt"
	"sync"
)

// MemWAL is the in-memory twin of the file WAL, for unit tests of the layers above storage.
// It has the same observable semantics: Append copies the batch, done callbacks run in append
// order on the WAL's own goroutine (never inside Append), locations are (segment, byte
// position) pairs with segments rotating at SegmentBytes, ReadAt returns ErrNotFound for
// removed segments, the active segment is never removed, Replay's b.Data is only valid during
// fn (it is overwritten afterwards), Replay after Append is an error, and Close completes
// pending callbacks.
//
// Extras for tests: FailAppends makes appends fail like a full disk, and Reopen simulates a
// restart (a new WAL over the same acknowledged data).
type MemWAL struct {
	mu       sync.Mutex
	st       *memWALStore
	segBytes int64
	failErr  error
	closed   bool
	appended bool
	disp     *dispatcher
}

type memWALStore struct {
	segs map[uint64]*memSeg
	cur  uint64
}

type memSeg struct {
	data    []byte // entries laid out like the file WAL: a header gap, then the batch bytes
	entries []memEntry
}

type memEntry struct {
	b   Batch // Data aliases memSeg.data
	loc Location
}

var _ WAL = (*MemWAL)(nil)

// NewMemWAL returns an empty in-memory WAL with the default segment size.
func NewMemWAL() *MemWAL { return NewMemWALWithOptions(WALOptions{}) }

// NewMemWALWithOptions returns an empty in-memory WAL; only opts.SegmentBytes is used.
func NewMemWALWithOptions(opts WALOptions) *MemWAL {
	o := opts.withDefaults()
	st := &memWALStore{segs: map[uint64]*memSeg{1: {}}, cur: 1}
	return &MemWAL{st: st, segBytes: o.SegmentBytes, disp: newDispatcher()}
}

// FailAppends makes every following Append fail with err (nothing is stored), like a full
// disk; FailAppends(nil) heals it.
func (w *MemWAL) FailAppends(err error) {
	w.mu.Lock()
	w.failErr = err
	w.mu.Unlock()
}

// Reopen closes w and returns a new MemWAL over the same stored data, as after a restart.
func (w *MemWAL) Reopen() *MemWAL {
	w.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	return &MemWAL{st: w.st, segBytes: w.segBytes, disp: newDispatcher()}
}

func (w *MemWAL) Append(b *Batch, done func(Location, error)) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		go done(Location{}, ErrClosed)
		return
	}
	w.appended = true
	if w.failErr != nil {
		err := w.failErr
		w.disp.push(completion{done: done, err: err})
		w.mu.Unlock()
		return
	}
	st := w.st
	seg := st.segs[st.cur]
	size := int64(entryHeaderSize + len(b.Data))
	if len(seg.data) > 0 && int64(len(seg.data))+size > w.segBytes {
		st.cur++
		seg = &memSeg{}
		st.segs[st.cur] = seg
	}
	pos := int64(len(seg.data)) + entryHeaderSize
	seg.data = append(seg.data, make([]byte, entryHeaderSize)...)
	seg.data = append(seg.data, b.Data...)
	loc := Location{Segment: st.cur, Offset: pos, Size: int32(len(b.Data))}
	e := memEntry{b: *b, loc: loc}
	e.b.Data = nil // resolved on replay; seg.data may move while growing
	seg.entries = append(seg.entries, e)
	w.disp.push(completion{done: done, loc: loc})
	w.mu.Unlock()
}

func (w *MemWAL) ReadAt(loc Location, buf []byte) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	seg := w.st.segs[loc.Segment]
	if seg == nil {
		return nil, ErrNotFound
	}
	end := loc.Offset + int64(loc.Size)
	if loc.Offset < entryHeaderSize || loc.Size < 0 || end > int64(len(seg.data)) {
		return nil, fmt.Errorf("storage: read %+v beyond end of segment (%d bytes)", loc, len(seg.data))
	}
	buf = growBuf(buf, int(loc.Size))
	copy(buf, seg.data[loc.Offset:end])
	return buf, nil
}

func (w *MemWAL) Replay(fn func(b *Batch, loc Location) error) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	if w.appended {
		w.mu.Unlock()
		return errors.New("storage: WAL Replay after Append")
	}
	var all []memEntry
	var datas [][]byte
	for _, n := range sortedSegs(w.st.segs) {
		seg := w.st.segs[n]
		for _, e := range seg.entries {
			all = append(all, e)
			datas = append(datas, append([]byte(nil), seg.data[e.loc.Offset:e.loc.Offset+int64(e.loc.Size)]...))
		}
	}
	w.mu.Unlock()
	for i := range all {
		b := all[i].b
		b.Data = datas[i]
		err := fn(&b, all[i].loc)
		// Like the file WAL, b.Data is only valid during fn: poison it so that a caller that
		// keeps it sees garbage in tests.
		for j := range datas[i] {
			datas[i][j] = 0xDB
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *MemWAL) RemoveSegmentsBefore(seg uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	for n := range w.st.segs {
		if n < seg && n != w.st.cur {
			delete(w.st.segs, n)
		}
	}
	return nil
}

func (w *MemWAL) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	w.disp.close()
	return nil
}

func growBuf(buf []byte, n int) []byte {
	if cap(buf) >= n {
		return buf[:n]
	}
	return make([]byte, n)
}
