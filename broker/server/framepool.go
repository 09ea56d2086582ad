package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// Frame buffers of Produce requests are reused. At a gigabyte per second of produce traffic
// a fresh buffer per request meant the runtime zeroing a gigabyte per second first (a tenth
// of the broker's CPU). Only Produce frames come back to the pool (see readLoop): the
// produce path copies the batches into the WAL and keeps no reference to the request once
// it has answered, whereas other requests may keep slices of their frame (a consumer
// group keeps its members' metadata, for one).
//
// Buffers are pooled by size class from minPooledFrame to maxPooledFrame, two classes per
// doubling (64 KiB, 96 KiB, 128 KiB, 192 KiB, ...), so a buffer is at most a third larger
// than its frame (a typical 6 MB request of six 1 MB batches takes a 6 MiB buffer, not 8);
// smaller frames are cheap to allocate and larger ones rare. sync.Pool lets idle buffers go
// at the next garbage collections, so an idle broker keeps none.
const (
	minPooledFrame = 64 << 10
	maxPooledFrame = 16 << 20
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

var framePools = make([]sync.Pool, len(frameClassSizes))

// frameClass returns the pool index for a frame of n bytes, or -1 if n is not pooled.
func frameClass(n int) int {
	if n < minPooledFrame || n > maxPooledFrame {
		return -1
	}
	i, _ := slices.BinarySearch(frameClassSizes, n)
	return i
}

// errStopped reports that reading stopped while waiting for the request budget (shutdown or
// a broken connection); the connection closes without an error being logged.
var errStopped = errors.New("server: stopped while waiting for memory")

// firstGrowStep is the first buffer of a frame above maxPooledFrame; such a frame's buffer
// doubles as its bytes arrive.
const firstGrowStep = 64 << 10

// readFrame reads one size-prefixed frame from r, taking its bytes from the request budget b
// before allocating them. A size outside [1, max] is an error and allocates nothing.
//
//   - A frame up to maxPooledFrame (every Produce request of a normal client) is allocated at
//     once, from the frame pool when in its range, and its announced size is taken from the
//     budget first (waiting while the budget is exhausted, as Kafka's queued.max.request.bytes
//     does). One allocation and no copy keeps the produce path lean.
//   - A larger frame starts with firstGrowStep bytes and doubles as bytes arrive, so a client
//     announcing 100 MB and stalling holds at most about twice what it sent (exactly what
//     it sent when it stalls at a step: the buffer grows only once more bytes are there),
//     never what it announced. Only the first step waits for the budget; the growth is
//     taken without waiting, since waiting with a frame half read could deadlock every
//     connection, and it is backed by bytes the client really sent.
//
// charged is what the frame took from b; the caller releases it once the request is
// answered (also on error: charged is then what is still taken). pooled is the pool buffer
// for putFrame, nil when the frame is not pooled.
func readFrame(r io.Reader, max int32, b *budget, stop1, stop2 <-chan struct{}) (frame []byte, pooled *[]byte, charged int64, err error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return nil, nil, 0, err
	}
	n := int32(binary.BigEndian.Uint32(sz[:]))
	if n <= 0 || n > max {
		return nil, nil, 0, fmt.Errorf("%w: %d", ErrFrameSize, n)
	}
	if n <= maxPooledFrame {
		if !b.acquire(int64(n), nil, stop1, stop2) {
			return nil, nil, 0, errStopped
		}
		charged = int64(n)
		if c := frameClass(int(n)); c >= 0 {
			pooled, _ = framePools[c].Get().(*[]byte)
			if pooled == nil {
				b := make([]byte, frameClassSizes[c])
				pooled = &b
			}
			frame = (*pooled)[:n]
		} else {
			frame = make([]byte, n)
		}
		if _, err := io.ReadFull(r, frame); err != nil {
			putFrame(pooled)
			return nil, nil, charged, err
		}
		return frame, pooled, charged, nil
	}
	if !b.acquire(firstGrowStep, nil, stop1, stop2) {
		return nil, nil, 0, errStopped
	}
	charged = firstGrowStep
	frame = make([]byte, firstGrowStep)
	got := 0
	for {
		k, err := io.ReadFull(r, frame[got:])
		got += k
		if err != nil {
			return nil, nil, charged, err
		}
		if got == int(n) {
			return frame, nil, charged, nil
		}
		// Grow only once more bytes have arrived: a client that stalls holds what it sent.
		if p, ok := r.(interface{ Peek(int) ([]byte, error) }); ok {
			if _, err := p.Peek(1); err != nil {
				return nil, nil, charged, err
			}
		}
		grown := min(int(n), 2*len(frame))
		b.force(int64(grown - len(frame)))
		charged = int64(grown)
		nb := make([]byte, grown)
		copy(nb, frame[:got])
		frame = nb
	}
}

// putFrame hands a buffer from readPooledFrame back for reuse.
func putFrame(b *[]byte) {
	if b == nil {
		return
	}
	if c := frameClass(cap(*b)); c >= 0 && frameClassSizes[c] == cap(*b) {
		framePools[c].Put(b)
	}
}
