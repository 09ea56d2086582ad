package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// errStopped reports that reading stopped while waiting for the request budget (shutdown or
// a broken connection); the connection closes without an error being logged.
var errStopped = errors.New("server: stopped while waiting for memory")

// firstStep is the most a frame holds before more than that has arrived.
const firstStep = 64 << 10

// readFrame reads one size-prefixed frame from r, taking its bytes from the request budget b
// before allocating them. A size outside [1, max] is an error and allocates nothing.
//
// A frame holds memory as its bytes arrive, not as announced, so a client announcing a
// large frame and stalling holds little, and a few such clients cannot exhaust the budget:
//
//   - the first min(size, firstStep) bytes are read into a buffer of that size;
//   - once more bytes have arrived (r's Peek, when it has one, waits for them without
//     reading), a frame up to maxPooledFrame (every Produce request of a normal client) gets
//     its whole pooled buffer and the first step is copied over: one allocation from the
//     pool and at most 64 KiB copied keep the produce path lean;
//   - a larger frame doubles its buffer each time it is full and more bytes have arrived,
//     so it holds at most twice what was sent.
//
// Every step waits for the budget (a taker that holds the only bytes taken always fits, so
// one frame larger than the whole budget is still read). charged is what the frame holds of
// b; the caller releases it once the request is answered, or at once on error. pooled is the
// pool buffer for fp.put, nil when the frame is not pooled.
func readFrame(r io.Reader, max int32, b *budget, fp *framePool, stop1, stop2 <-chan struct{}) (frame []byte, pooled *[]byte, charged int64, err error) {
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		return nil, nil, 0, err
	}
	n := int(int32(binary.BigEndian.Uint32(sz[:])))
	if n <= 0 || n > int(max) {
		return nil, nil, 0, fmt.Errorf("%w: %d", ErrFrameSize, n)
	}
	size := min(n, firstStep)
	got := 0
	for {
		// The budget counts the buffer, not only the frame's bytes (a pooled buffer may be a
		// third larger), so the pool sized to the budget holds what requests hold.
		hold := int64(holdFor(size))
		if !b.acquire(hold-charged, charged, nil, stop1, stop2) {
			fp.put(pooled)
			return nil, nil, charged, errStopped
		}
		charged = hold
		next, nextPooled := fp.get(size)
		copy(next, frame[:got])
		fp.put(pooled) // the first step's buffer, or a smaller one of a growing frame
		frame, pooled = next, nextPooled
		k, err := io.ReadFull(r, frame[got:])
		got += k
		if err != nil {
			fp.put(pooled)
			return nil, nil, charged, err
		}
		if got == n {
			return frame, pooled, charged, nil
		}
		// Grow only once more bytes are there: a client that stalls holds what it sent.
		if p, ok := r.(interface{ Peek(int) ([]byte, error) }); ok {
			if _, err := p.Peek(1); err != nil {
				fp.put(pooled)
				return nil, nil, charged, err
			}
		}
		if n <= maxPooledFrame {
			size = n
		} else {
			size = min(n, 2*size)
		}
	}
}
