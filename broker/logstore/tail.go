package logstore

// The active segment's data as it fills. With a Store that writes objects incrementally
// (Creator), a segBuilder holds only the bytes not yet in its ObjectWriter: the data is
// cut into chunks (chunkBytes, or a smaller multiple of dioAlign when the tails are over
// their budget), each written to the object in the background (Log.flush) and then
// dropped, so a partition's memory no longer grows with its segment size:
//
//	data position 0        written              memStart                 size
//	|----- in the object ------|--- pend chunks ---|------- data ---------|
//	                            (being written,     (filling; cut at
//	                             still readable)     chunkBytes)
//
// A reader takes a view (the writer, written, and the slices of the pending chunks and
// data) under Log.mu and reads it without the lock; the bytes a view covers never change
// while it is held, and a read of the object after its Commit or Abort fails and the reader
// looks again (errTailMoved). A written chunk's buffer is reused (chunkPool) only when no
// reader of its Log held a view as it was dropped (Log.viewers): otherwise the GC has it. Without a Creator the whole segment stays in data
// until the seal, as before.

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klite/klite/broker/internal/idle"
)

const (
	// chunkBytes is the size of the chunks an active segment is written in: large enough
	// for direct I/O to pay (one write per MiB), small enough that a hot partition holds a
	// few MiB at most.
	chunkBytes = 1 << 20
	// budgetChunkBytes: over the tail budget a builder writes what it holds once it has
	// this much (rounded down to dioAlign), so a thousand partitions hold tens of KiB each.
	budgetChunkBytes = 16 << 10
	// maxPendChunks bounds the chunks written in the background per builder: past it
	// Append waits for the writes (a disk slower than the producers slows them down
	// instead of filling memory).
	maxPendChunks = 4
	// firstDataCap is where a builder's data buffer starts (it doubles up to chunkBytes).
	firstDataCap = 16 << 10
)

// chunkPool keeps a few free chunkBytes buffers: a hot partition fills one a MiB, and
// allocating each (zeroed, then collected) cost a tenth of the broker's CPU under load. It
// keeps firstDataCap buffers too: over the tail budget every partition fills and writes one
// after another (a thousand partitions allocated and zeroed a buffer per 32 KiB produced
// when that was its size).
// The free buffers go once none was taken for poolIdleAfter, so an idle broker keeps none.
var chunkPool struct {
	mu    sync.Mutex
	bufs  [][]byte // chunkBytes
	small [][]byte // firstDataCap
	idle  idle.Check
}

const (
	// chunkPoolMax: free chunk buffers kept at most (shared by every Log). Six hot
	// partitions' chunks in flight swing by more than 8 between group commits: with 8,
	// one chunk in eight was dropped and allocated anew (70-110 MB/s of garbage at 900
	// MB/s of produce, and the collections it drove); with 16, a few a second.
	chunkPoolMax = 16
	// smallPoolMax: free firstDataCap buffers kept at most (8 MiB). A seal of every tail
	// over the budget gives back one per partition, taken again as they fill: with fewer
	// kept, a thousand partitions allocated (and zeroed) most of theirs anew.
	smallPoolMax = 512
	// poolIdleAfter: how long free buffers are kept with none taken.
	poolIdleAfter = time.Second
)

// poolIdleCheck drops the free buffers if none was taken since the last check.
func poolIdleCheck() {
	chunkPool.mu.Lock()
	defer chunkPool.mu.Unlock()
	if chunkPool.idle.Due() {
		dropFreeLocked()
	}
}

// DropFreeBuffers lets the pool's free buffers go now (the broker went idle and hands its
// memory back; the pool's own idle check may come a second later).
func DropFreeBuffers() {
	chunkPool.mu.Lock()
	defer chunkPool.mu.Unlock()
	dropFreeLocked()
}

func dropFreeLocked() {
	clear(chunkPool.bufs)
	chunkPool.bufs = chunkPool.bufs[:0]
	clear(chunkPool.small)
	chunkPool.small = chunkPool.small[:0]
}

// smallAllocs counts the firstDataCap buffers the pool had none free for (tests).
var smallAllocs atomic.Int64

// poolFree returns the free buffers the pool keeps (tests).
func poolFree() (chunks, small int) {
	chunkPool.mu.Lock()
	defer chunkPool.mu.Unlock()
	return len(chunkPool.bufs), len(chunkPool.small)
}

// newChunkBuf returns an empty buffer of capacity chunkBytes.
func newChunkBuf() []byte {
	if b := takeFree(&chunkPool.bufs); b != nil {
		return b
	}
	return make([]byte, 0, chunkBytes)
}

// newSmallBuf returns a buffer of length n and capacity firstDataCap (n <= firstDataCap).
func newSmallBuf(n int) []byte {
	if b := takeFree(&chunkPool.small); b != nil {
		return b[:n]
	}
	smallAllocs.Add(1)
	return make([]byte, n, firstDataCap)
}

// takeFree takes the last free buffer of list (a list of chunkPool), nil if there is none.
func takeFree(list *[][]byte) []byte {
	chunkPool.mu.Lock()
	defer chunkPool.mu.Unlock()
	chunkPool.idle.Took()
	n := len(*list)
	if n == 0 {
		return nil
	}
	b := (*list)[n-1]
	(*list)[n-1] = nil
	*list = (*list)[:n-1]
	return b[:0]
}

// recycleLocked keeps b for reuse when it is a whole chunk buffer (or a whole firstDataCap
// one) and no reader of l holds a view (so none can hold a slice of b: a new view is taken
// under l.mu and b is no longer in the builder). l.mu held.
func (l *Log) recycleLocked(b []byte) {
	if cap(b) != chunkBytes && cap(b) != firstDataCap || l.viewers.Load() != 0 {
		return
	}
	chunkPool.mu.Lock()
	defer chunkPool.mu.Unlock()
	switch {
	case cap(b) == chunkBytes && len(chunkPool.bufs) < chunkPoolMax:
		chunkPool.bufs = append(chunkPool.bufs, b[:0])
	case cap(b) == firstDataCap && len(chunkPool.small) < smallPoolMax:
		chunkPool.small = append(chunkPool.small, b[:0])
	default:
		return
	}
	chunkPool.idle.Arm(poolIdleAfter, poolIdleCheck)
}

// hotBytesPerSec: a Log that takes at least this many bytes a second (in the current or
// the previous second) fills chunkBytes chunks; a slower one writes budgetChunkBytes ones.
const hotBytesPerSec = chunkBytes

// appendRate counts the bytes a Log took per second of opts.Now. l.mu held.
type appendRate struct {
	start, cur, prev int64 // start of the current second (ms); bytes in it and in the one before
}

// hot adds n bytes taken at now (ms) and reports whether the Log takes at least
// hotBytesPerSec.
func (r *appendRate) hot(now, n int64) bool {
	if d := now - r.start; d >= 1000 || d < 0 {
		r.prev = r.cur
		if d >= 2000 || d < 0 {
			r.prev = 0 // a second with nothing taken between
		}
		r.cur, r.start = 0, now
	}
	r.cur += n
	return r.cur >= hotBytesPerSec || r.prev >= hotBytesPerSec
}

// atLeast reports whether the current or the previous second took at least n bytes.
func (r *appendRate) atLeast(n int64) bool { return r.cur >= n || r.prev >= n }

// crowdedShare: the tails are crowded when the budget shared by the Logs holding tails is
// less than this each.
const crowdedShare = chunkBytes

// crowded reports whether so many Logs hold tails that each has less than crowdedShare of
// the budget.
func (l *Log) crowded() bool {
	if l.opts.TailBudget <= 0 || l.opts.TailLogs == nil {
		return false
	}
	return l.opts.TailLogs.Load() > l.opts.TailBudget/crowdedShare
}

// chunk is a cut part of the data not yet in the object.
type chunk struct {
	pos   int64  // data position of b[0]
	b     []byte // never modified once cut
	first int64  // position of the first batch starting in b (-1: none)
}

// appendData appends p to the data, cutting full chunks when the builder has a writer.
func (s *segBuilder) appendData(p []byte) {
	if s.ext {
		s.appendExt(p)
		return
	}
	if s.cr == nil {
		s.appendWhole(p)
		return
	}
	for len(p) > 0 {
		if len(s.data) == cap(s.data) && s.small && len(s.data) >= budgetChunkBytes {
			s.cutEarly() // over the budget: write what the full buffer holds rather than grow it
			continue
		}
		if len(s.data) == cap(s.data) {
			nc := chunkBytes
			switch {
			case s.small:
				// Below budgetChunkBytes (else cut above): a pooled buffer, filled and
				// cut as the batch is copied in, rather than one sized to the batch.
				nc = max(firstDataCap, 2*cap(s.data))
			case !s.hot:
				nc = min(max(2*cap(s.data), firstDataCap, len(s.data)+len(p)), chunkBytes)
			}
			var nd []byte
			switch nc {
			case chunkBytes:
				nd = newChunkBuf()[:len(s.data)]
			case firstDataCap:
				nd = newSmallBuf(len(s.data))
			default:
				nd = make([]byte, len(s.data), nc)
			}
			copy(nd, s.data)
			s.data = nd
		}
		n := min(len(p), cap(s.data)-len(s.data))
		s.data = append(s.data, p[:n]...)
		p = p[n:]
		if len(s.data) == chunkBytes {
			s.hot = true
			s.cut(chunkBytes)
		}
	}
}

// appendWhole appends p to a builder that keeps all its data in memory.
func (s *segBuilder) appendWhole(p []byte) {
	if need := len(s.data) + len(p); need > cap(s.data) {
		// Double (append grows large slices by 1.25x, copying a 16 MiB tail many times),
		// up to the roll size plus room for the footer, and on past it (a segment that
		// waits for the previous seal, see rollAsync) without regrowing at every batch.
		nc := max(2*cap(s.data), need, 64<<10)
		if s.capHint > 0 && need <= s.capHint {
			nc = min(nc, s.capHint)
		}
		nd := make([]byte, len(s.data), nc)
		copy(nd, s.data)
		s.data = nd
	}
	s.data = append(s.data, p...)
}

// cut moves the first n bytes of data (a multiple of dioAlign) to a pending chunk.
func (s *segBuilder) cut(n int) {
	end := s.memStart + int64(n)
	c := chunk{pos: s.memStart, b: s.data[:n:n], first: -1}
	if n == len(s.data) {
		c.b = s.data[:n] // the whole buffer: its capacity tells recycleLocked what it is
	}
	if s.memFirst >= 0 && s.memFirst < end {
		c.first = s.memFirst
		s.memFirst = -1
		// What data keeps past end: the first batch starting there is found by walking
		// the headers from memFirst, up to the batch being added (it starts at size; a
		// batch starting later is marked by the next add).
		for p := c.first; p <= s.size && n < len(s.data); {
			if p >= end {
				s.memFirst = p
				break
			}
			if p == s.size {
				break
			}
			p += batchSize(s.data[p-s.memStart:])
		}
	}
	s.pend = append(s.pend, c)
	if n == len(s.data) {
		s.data = nil
	} else {
		// An early cut (tail budget): the rest goes to a new small buffer.
		var rest []byte
		if k := len(s.data) - n; k <= firstDataCap {
			rest = newSmallBuf(k)
		} else {
			rest = make([]byte, k)
		}
		copy(rest, s.data[n:])
		s.data = rest
	}
	s.memStart = end
}

// cutEarly cuts what data holds, rounded down to dioAlign, once it holds at least
// budgetChunkBytes (the tails are over their budget).
func (s *segBuilder) cutEarly() {
	if s.cr != nil && len(s.data) >= budgetChunkBytes {
		s.cut(len(s.data) &^ (dioAlign - 1))
	}
}

// memBytes is the memory the builder's buffers hold.
func (s *segBuilder) memBytes() int64 {
	n := int64(cap(s.data))
	for _, c := range s.pend {
		n += int64(len(c.b))
	}
	return n
}

// tailView is a builder's data as a reader sees it (taken under Log.mu, read without).
type tailView struct {
	b       *segBuilder
	w       ObjectWriter
	written int64
	size    int64
	next    int64
	maxTS   int64
	parts   []chunk // [written, size)
	pos     int64   // where the read starts (seekOff/seekTime at the time of the view)
}

// view returns the builder's data as of now. Log.mu held.
func (s *segBuilder) view() *tailView {
	v := &tailView{b: s, w: s.w, written: s.written, size: s.size, next: s.next, maxTS: s.maxTS}
	v.parts = make([]chunk, 0, len(s.pend)+1)
	if s.ext {
		s.extView(v)
		return v
	}
	v.parts = append(v.parts, s.pend...)
	if len(s.data) > 0 {
		v.parts = append(v.parts, chunk{pos: s.memStart, b: s.data[:len(s.data):len(s.data)], first: s.memFirst})
	}
	return v
}

// seekOff returns the data position to scan from for offset o. Log.mu held.
func (s *segBuilder) seekOff(o int64) int64 { return seekOffIn(s.off, o) }

// seekTime returns the data position to scan from for timestamp ts. Log.mu held.
func (s *segBuilder) seekTime(ts int64) int64 { return seekTimeIn(s.time, ts) }

// part returns the in-memory part holding pos (nil: none, or in the object).
func (v *tailView) part(pos int64) *chunk {
	i := sort.Search(len(v.parts), func(i int) bool { return v.parts[i].pos+int64(len(v.parts[i].b)) > pos })
	if i == len(v.parts) || pos < v.parts[i].pos {
		return nil
	}
	return &v.parts[i]
}

// readAt fills p with the data at pos, from the object and the parts.
func (v *tailView) readAt(p []byte, pos int64) error {
	if pos < 0 || pos+int64(len(p)) > v.size {
		return io.ErrUnexpectedEOF
	}
	for len(p) > 0 {
		if pos < v.written {
			n := min(int64(len(p)), v.written-pos)
			if _, err := v.w.ReadAt(p[:n], pos); err != nil {
				return err
			}
			p, pos = p[n:], pos+n
			continue
		}
		c := v.part(pos)
		if c == nil {
			return io.ErrUnexpectedEOF
		}
		n := copy(p, c.b[pos-c.pos:])
		p, pos = p[n:], pos+int64(n)
	}
	return nil
}

// firstAfterWritten is the position of the first batch starting at or after written (-1:
// none in memory).
func (v *tailView) firstAfterWritten() int64 {
	for _, c := range v.parts {
		if c.first >= 0 {
			return c.first
		}
	}
	return -1
}

// tailReader reads a view's batches in order, through a window for the part in the object.
type tailReader struct {
	v   *tailView
	buf []byte
	at  int64 // data position of buf[0]
}

// bytes returns n bytes at pos, valid until the next call: a slice of an in-memory part, of
// the window, or a new buffer when they straddle.
func (r *tailReader) bytes(pos, n int64) ([]byte, error) {
	v := r.v
	if pos+n > v.size {
		return nil, io.ErrUnexpectedEOF
	}
	if pos >= v.written {
		if c := v.part(pos); c != nil && pos+n <= c.pos+int64(len(c.b)) {
			return c.b[pos-c.pos : pos-c.pos+n], nil
		}
	} else if pos+n <= v.written {
		if pos < r.at || pos+n > r.at+int64(len(r.buf)) {
			m := min(max(n, readWindow), v.written-pos)
			if int64(cap(r.buf)) < m {
				r.buf = make([]byte, m)
			}
			r.buf = r.buf[:m]
			if _, err := v.w.ReadAt(r.buf, pos); err != nil {
				r.buf = r.buf[:0]
				return nil, err
			}
			r.at = pos
		}
		return r.buf[pos-r.at : pos-r.at+n], nil
	}
	b := make([]byte, n)
	return b, v.readAt(b, pos)
}

// batch returns the whole batch at pos (valid until the next call) and its header.
func (r *tailReader) batch(pos int64) ([]byte, batchInfo, error) {
	hdr, err := r.bytes(pos, min(12, r.v.size-pos))
	if err != nil {
		return nil, batchInfo{}, err
	}
	if len(hdr) < 12 {
		return nil, batchInfo{}, fmt.Errorf("%w: %d bytes at the tail end", errBadBatch, len(hdr))
	}
	n := batchSize(hdr)
	if n < batchHeaderLen || pos+n > r.v.size {
		return nil, batchInfo{}, fmt.Errorf("%w: batch of %d bytes at %d", errBadBatch, n, pos)
	}
	b, err := r.bytes(pos, n)
	if err != nil {
		return nil, batchInfo{}, err
	}
	h, err := parseBatch(b)
	return b, h, err
}

// each calls fn for the view's batches from pos until fn returns false.
func (v *tailView) each(pos int64, fn func(b []byte, h *batchInfo) bool) error {
	r := tailReader{v: v}
	for pos < v.size {
		b, h, err := r.batch(pos)
		if err != nil {
			return err
		}
		if !fn(b, &h) {
			return nil
		}
		pos += int64(h.Size)
	}
	return nil
}
