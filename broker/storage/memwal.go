package storage

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// MemWAL is the in-memory twin of the file WAL, for unit tests of the layers above storage.
// It has the same observable semantics: Append copies the batch, done callbacks run in append
// order on the WAL's own goroutine (never inside Append), locations are (segment, byte
// position) pairs with segments rotating at SegmentBytes, ReadAt returns ErrNotFound for
// removed segments, the active segment is never removed, Replay's b.Data is only valid during
// fn (it is overwritten afterwards), Replay after Append is an error, and Close completes
// pending callbacks. External batches (Batch.External) are stored as header-only entries
// too: an entry is reported once its Syncer synced (on the callback goroutine, in order), a
// failed sync fails it and everything appended until then (which is removed again, see
// afterExternal), replay hands them over with ExternalLen, and ReadAt refuses them with
// ErrExternal.
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
	// extPending counts the external entries whose Syncer has not synced yet; while there
	// are any, appended entries wait for them (afterExternal). seq numbers the stored
	// entries; a failed sync fails every entry numbered below cutSeq with cutErr.
	extPending int
	seq        uint64
	cutSeq     uint64
	cutErr     error
}

type memWALStore struct {
	segs map[uint64]*memSeg
	cur  uint64
}

type memSeg struct {
	data    []byte // entries laid out as in the file WAL (putEntry)
	entries []memEntry
}

type memEntry struct {
	b   Batch // without Data (resolved on replay: seg.data may move while growing)
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
	err := w.failErr
	if err == nil {
		err = checkBatch(b)
	}
	if err != nil {
		w.disp.push(completion{done: done, err: err})
		w.mu.Unlock()
		return
	}
	st := w.st
	seg := st.segs[st.cur]
	size := int64(entryLen(b))
	if len(seg.data) > 0 && int64(len(seg.data))+size > w.segBytes {
		st.cur++
		seg = &memSeg{}
		st.segs[st.cur] = seg
	}
	start := int64(len(seg.data))
	seg.data = append(seg.data, make([]byte, size)...)
	putEntry(seg.data[start:], b)
	loc := Location{Segment: st.cur, Offset: start + entryHeaderSize, Size: int32(len(b.Data))}
	e := memEntry{b: *b, loc: loc}
	e.b.Data, e.b.External = nil, nil
	decodeEntryHeader(seg.data[start:], &e.b) // ExternalLen and the CRC, as replay reads them
	seg.entries = append(seg.entries, e)
	c := completion{done: done, loc: loc}
	if b.External != nil || w.extPending > 0 {
		c.done = w.afterExternal(w.seq, b.External, done)
	}
	if b.External != nil {
		w.extPending++
	}
	w.seq++
	w.disp.push(c)
	w.mu.Unlock()
}

// afterExternal wraps the callback of entry seq, which is external (s is its Syncer) or was
// appended while an external entry was pending. As in the file WAL, an external entry is
// reported only once s wrote (an ExternalWriter) and synced; if that fails, the entry and
// every one appended until then are removed from the store and fail, so that a caller can
// give their offsets back in order (see fileWAL.poisonLocked). Callbacks run in append
// order, so every entry stored after a failed one still waits for its callback, and none
// before it does.
func (w *MemWAL) afterExternal(seq uint64, s Syncer, done func(Location, error)) func(Location, error) {
	return func(loc Location, err error) {
		var serr error
		if ew, ok := s.(ExternalWriter); ok {
			serr = ew.WriteExternal()
		}
		if s != nil && serr == nil {
			serr = s.SyncExternal()
		}
		w.mu.Lock()
		if s != nil {
			w.extPending--
		}
		if serr != nil {
			w.cutBack(loc)
			w.cutSeq = w.seq
			w.cutErr = fmt.Errorf("storage: writing or syncing the batch bytes of an external WAL entry failed: %w", serr)
		}
		if seq < w.cutSeq {
			loc, err = Location{}, w.cutErr
		}
		w.mu.Unlock()
		done(loc, err)
	}
}

// cutBack removes the entry at loc and every later one from the store. Called with mu held.
func (w *MemWAL) cutBack(loc Location) {
	st := w.st
	for n := range st.segs {
		if n > loc.Segment {
			delete(st.segs, n)
		}
	}
	seg := st.segs[loc.Segment]
	if seg == nil { // removed meanwhile (RemoveSegmentsBefore): start it again
		seg = &memSeg{}
		st.segs[loc.Segment] = seg
	}
	st.cur = loc.Segment
	seg.data = seg.data[:min(loc.Offset-entryHeaderSize, int64(len(seg.data)))]
	i := sort.Search(len(seg.entries), func(i int) bool { return seg.entries[i].loc.Offset >= loc.Offset })
	clear(seg.entries[i:])
	seg.entries = seg.entries[:i]
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
	n := int64(len(seg.data))
	if loc.Offset >= entryHeaderSize && loc.Offset <= n && isExternalHeader(seg.data[loc.Offset-entryHeaderSize:]) {
		return nil, ErrExternal
	}
	end := loc.Offset + int64(loc.Size)
	if loc.Offset < entryHeaderSize || loc.Size < 0 || end > n {
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
			var d []byte // nil for an external entry
			if e.b.ExternalLen == 0 {
				d = append([]byte(nil), seg.data[e.loc.Offset:e.loc.Offset+int64(e.loc.Size)]...)
			}
			datas = append(datas, d)
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
		if errors.Is(err, ErrCutReplay) {
			return w.cutAt(all[i].loc)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// cutAt drops the entry at loc and everything after it (ErrCutReplay); as the file WAL,
// only in the last segment.
func (w *MemWAL) cutAt(loc Location) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if loc.Segment != w.st.cur {
		return &CorruptError{Path: fmt.Sprintf("memwal segment %d", loc.Segment), Offset: loc.Offset,
			Reason: "the entry names a batch its partition segment does not hold (single-copy); later segments exist"}
	}
	w.cutBack(loc)
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
