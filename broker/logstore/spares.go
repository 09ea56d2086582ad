package logstore

import (
	"sync"
	"sync/atomic"
)

// Spares keeps the data buffers of sealed segments for the next active segments of every
// Log sharing it (the Drain's Logs). A fresh multi-MiB buffer costs page faults and zeroing
// at every roll, so buffers are reused; one kept per Log held a buffer for each hot
// partition for most of its roll cycle (about a third of the tails' memory under load),
// where a few shared ones serve them all: the rolls of different partitions rarely meet.
type Spares struct {
	mu    sync.Mutex
	bufs  [][]byte
	max   int           // buffers kept at most
	tails *atomic.Int64 // the tails' memory counter, which includes the kept buffers
}

// defaultSpares: buffers kept at most by a Drain's pool.
const defaultSpares = 2

// NewSpares returns a pool keeping at most max buffers, counting their capacity in tails
// (may be nil).
func NewSpares(max int, tails *atomic.Int64) *Spares {
	return &Spares{max: max, tails: tails}
}

// take returns the largest kept buffer if it has at least n bytes of capacity (length 0),
// else nil.
func (s *Spares) take(n int) []byte {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	big := -1
	for i, b := range s.bufs {
		if cap(b) >= n && (big < 0 || cap(b) > cap(s.bufs[big])) {
			big = i
		}
	}
	if big < 0 {
		return nil
	}
	b := s.bufs[big]
	s.bufs = append(s.bufs[:big], s.bufs[big+1:]...)
	s.count(-int64(cap(b)))
	return b[:0]
}

// put keeps b for reuse unless the pool is full (then the smallest kept buffer makes room
// for a larger b).
func (s *Spares) put(b []byte) {
	if s == nil || cap(b) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bufs) >= s.max {
		small := 0
		for i := range s.bufs {
			if cap(s.bufs[i]) < cap(s.bufs[small]) {
				small = i
			}
		}
		if s.max == 0 || cap(s.bufs[small]) >= cap(b) {
			return
		}
		s.count(-int64(cap(s.bufs[small])))
		s.bufs = append(s.bufs[:small], s.bufs[small+1:]...)
	}
	s.bufs = append(s.bufs, b[:0])
	s.count(int64(cap(b)))
}

// Drop lets every kept buffer go (appends stopped, or the tails are over their budget).
func (s *Spares) Drop() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bufs {
		s.count(-int64(cap(b)))
	}
	s.bufs = nil
}

// Bytes is the capacity of the kept buffers.
func (s *Spares) Bytes() int64 {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, b := range s.bufs {
		n += int64(cap(b))
	}
	return n
}

func (s *Spares) count(d int64) {
	if s.tails != nil {
		s.tails.Add(d)
	}
}
