package server

import (
	"slices"
	"sync"
	"time"

	"github.com/klite/klite/broker/internal/idle"
)

// Frame buffers of Produce requests are reused. At a gigabyte per second of produce traffic
// a fresh buffer per request meant the runtime zeroing a gigabyte per second first (a tenth
// of the broker's CPU), and the garbage collector letting the heap grow to twice what was in
// flight. Only Produce frames come back to the pool (see readLoop): the produce path copies
// the batches into the WAL and its partition log and keeps no reference to the request once
// it has answered (acks=0 included: it answers nil once its appends are done), whereas
// other requests may keep slices of their frame (a consumer group keeps its members'
// metadata, for one).
//
// Buffers are pooled by size class from minPooledFrame to maxPooledFrame, two classes per
// doubling (16 KiB, 24 KiB, 32 KiB, 48 KiB, 64 KiB, ...), so a buffer is at most a third
// larger than its frame (a typical 6 MB request of six 1 MB batches takes a 6 MiB buffer,
// not 8); smaller frames are cheap to allocate and larger ones rare. (Produce requests of
// a few records, 20 KiB at 20,000 records/s, are not rare: allocated each, they were a
// quarter of the broker's garbage under that load.)
//
// The pool is sized to the request budget: the buffers it has handed out and those it keeps
// free together stay within limit (a buffer coming back when they would not is dropped), so
// pooled frames never hold more than the budget lets requests hold, however the traffic's
// sizes shift (small buffers aside, see held: each is charged to the budget; up to
// maxFreeSmall free ones per class are kept beside the limit). Free buffers go once no frame
// has been taken for idleAfter, so an idle broker keeps none.
const (
	minPooledFrame = 16 << 10
	maxPooledFrame = 16 << 20
	// maxFreeSmall: free buffers of each small class (up to firstStep: frames' first steps
	// and small frames) kept whatever the limit. Counted in it, every first step coming
	// back while the frames in flight filled the budget was dropped and the next frame's
	// allocated anew: at 900 MB/s of lean produce, 70 MB/s of garbage and the collections
	// it drove.
	maxFreeSmall = 16
)

// frameClassSizes are the buffer sizes of the classes, ascending.
var frameClassSizes = func() []int {
	var out []int
	for n := minPooledFrame; n <= maxPooledFrame; n *= 2 {
		out = append(out, n)
		if n < maxPooledFrame {
			out = append(out, n+n/2)
		}
	}
	return out
}()

// frameClass returns the pool index for a frame of n bytes, or -1 if n is not pooled.
func frameClass(n int) int {
	if n < minPooledFrame || n > maxPooledFrame {
		return -1
	}
	i, _ := slices.BinarySearch(frameClassSizes, n)
	return i
}

// smallClasses is the number of small classes: buffers of at most firstStep bytes (a
// frame's first step, or a whole small frame), held beside the limit (see held).
var smallClasses = frameClass(firstStep) + 1

// idleAfter is how long the pool keeps its free buffers without a frame being taken.
const idleAfter = time.Second

// framePool is a Server's pool of request frame buffers.
type framePool struct {
	limit int64

	mu        sync.Mutex
	free      [][]*[]byte // per class
	out       int64       // bytes of buffers handed out and not back
	outSmall  int64       // of which of small classes (see held)
	kept      int64       // bytes of free buffers
	keptSmall int64       // of which of small classes
	idle      idle.Check  // counts the takes of pooled classes
	dropped   int64       // buffers not kept (over the limit), for tests
}

// newFramePool returns a pool whose handed-out and free buffers stay within limit bytes
// (limit <= 0: up to maxPooledFrame free per class).
func newFramePool(limit int64) *framePool {
	if limit <= 0 {
		limit = int64(len(frameClassSizes)) * maxPooledFrame
	}
	return &framePool{limit: limit, free: make([][]*[]byte, len(frameClassSizes))}
}

// holdFor is what a frame of n bytes holds: its pooled buffer, or n when it is not pooled.
func holdFor(n int) int {
	if c := frameClass(n); c >= 0 {
		return frameClassSizes[c]
	}
	return n
}

// get returns a buffer of n bytes, from the pool when n is in its range (pooled is then
// what put takes back).
func (p *framePool) get(n int) (frame []byte, pooled *[]byte) {
	c := frameClass(n)
	if c < 0 {
		return make([]byte, n), nil
	}
	size := frameClassSizes[c]
	p.mu.Lock()
	p.idle.Took()
	p.out += int64(size)
	if c < smallClasses {
		p.outSmall += int64(size)
	}
	if l := len(p.free[c]); l > 0 {
		pooled = p.free[c][l-1]
		p.free[c][l-1] = nil
		p.free[c] = p.free[c][:l-1]
		p.kept -= int64(size)
		if c < smallClasses {
			p.keptSmall -= int64(size)
		}
	} else {
		// A new buffer: free ones of other sizes go first if together they would pass the
		// limit (the traffic's sizes shifted), so this one can be kept when it comes back.
		for i := len(p.free) - 1; i >= smallClasses && p.held() > p.limit; i-- {
			for l := len(p.free[i]); l > 0 && p.held() > p.limit; l-- {
				p.free[i][l-1] = nil
				p.free[i] = p.free[i][:l-1]
				p.kept -= int64(frameClassSizes[i])
			}
		}
	}
	p.mu.Unlock()
	if pooled == nil {
		b := make([]byte, size)
		pooled = &b
	}
	return (*pooled)[:n], pooled
}

// put hands a buffer from get back for reuse.
func (p *framePool) put(b *[]byte) {
	if b == nil {
		return
	}
	c := frameClass(cap(*b))
	if c < 0 || frameClassSizes[c] != cap(*b) {
		return
	}
	size := int64(cap(*b))
	p.mu.Lock()
	p.out -= size
	small := c < smallClasses
	if small {
		p.outSmall -= size
	}
	if small && len(p.free[c]) < maxFreeSmall || !small && p.held()+size <= p.limit {
		p.free[c] = append(p.free[c], b)
		p.kept += size
		if small {
			p.keptSmall += size
		}
		p.idle.Arm(idleAfter, p.idleCheck)
	} else {
		p.dropped++
	}
	p.mu.Unlock()
}

// disown forgets a buffer from get that will not come back (a request other than Produce
// may keep slices of its frame): the garbage collector frees it once unreferenced.
func (p *framePool) disown(b *[]byte) {
	if b == nil {
		return
	}
	p.mu.Lock()
	p.out -= int64(cap(*b))
	if frameClass(cap(*b)) < smallClasses {
		p.outSmall -= int64(cap(*b))
	}
	p.mu.Unlock()
}

// held is what the limit bounds: the buffers kept free and those handed out, but for those
// of small classes. readFrame takes one for each frame's first step and gives it back once
// the frame's whole buffer is taken; counted, the first steps of the connections waiting
// for the budget made the pool throw away the free buffer of a frame as large as the limit
// whenever one came back, so every such frame was allocated and zeroed anew. Each small
// buffer is charged to the request budget all the same, and at most maxFreeSmall per class
// are kept free. p.mu held.
func (p *framePool) held() int64 {
	return p.out - p.outSmall + p.kept - p.keptSmall
}

// idleCheck drops the free buffers if no frame was taken since the last check, else looks
// again later.
func (p *framePool) idleCheck() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.idle.Due() {
		p.dropFreeLocked()
	}
}

// dropFree lets the free buffers go now (the server went idle).
func (p *framePool) dropFree() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropFreeLocked()
}

func (p *framePool) dropFreeLocked() {
	for i := range p.free {
		clear(p.free[i])
		p.free[i] = nil
	}
	p.kept, p.keptSmall = 0, 0
}

// stats returns the bytes handed out and kept free.
func (p *framePool) stats() (out, kept int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out, p.kept
}
