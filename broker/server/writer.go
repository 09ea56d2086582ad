package server

import "sync"

// A connection's writer goroutine runs only while the connection has answers to write: it
// ends (parks) when its queue is empty and the reader starts it again with the next request.
// An idle connection then keeps one goroutine, its reader waiting for bytes, instead of two;
// with 10,000 idle connections the writers' stacks were a quarter of the broker's memory.
//
// The handoff is under writerState.mu: the writer parks only when the queue is empty, the
// reader is not blocked sending to it, and the reader has not closed it; the reader starts a
// writer whenever none runs before it sends. So every slot sent is written by some writer,
// in order (one writer at a time), and the last writer closes done once the queue is closed.
type writerState struct {
	mu      sync.Mutex
	running bool // a writeLoop goroutine owns the queue
	sending bool // the reader is blocked sending to a full queue
	closing bool // the reader is about to close the queue
	broken  bool // the connection can no longer be written (kept across writers)
	queue   chan *slot
	done    chan struct{} // closed by the last writer
}

func newWriterState(inFlight int) *writerState {
	return &writerState{queue: make(chan *slot, inFlight), done: make(chan struct{})}
}

// startLocked starts a writer unless one runs. w.mu held.
func (s *Server) startWriterLocked(c *Conn) {
	if !c.w.running {
		c.w.running = true
		go s.writeLoop(c, c.w.queue, c.w.done)
	}
}

// send queues sl for c's writer (starting one if none runs); it blocks while the queue is
// full (MaxInFlight requests unanswered).
func (s *Server) send(c *Conn, sl *slot) {
	w := c.w
	w.mu.Lock()
	s.startWriterLocked(c)
	select {
	case w.queue <- sl:
		w.mu.Unlock()
		return
	default:
	}
	w.sending = true // the writer runs and will not park until this send is done
	w.mu.Unlock()
	w.queue <- sl
	w.mu.Lock()
	w.sending = false
	w.mu.Unlock()
}

// closeQueue ends c's writes: the writer (started if none runs) writes what is queued and
// closes done.
func (s *Server) closeQueue(c *Conn) {
	w := c.w
	w.mu.Lock()
	w.closing = true
	s.startWriterLocked(c)
	w.mu.Unlock()
	close(w.queue)
}

// park ends the calling writer if it has nothing to do, keeping broken for the next one.
func (s *Server) park(c *Conn, broken bool) bool {
	w := c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) > 0 || w.sending || w.closing {
		return false
	}
	w.broken = broken
	w.running = false
	return true
}
