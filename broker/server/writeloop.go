package server

// The connection's write side: writeLoop gathers completed answers in request order into
// few writes, within the response budget (see server.go for the read side).

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxWriteBatch bounds the bytes of responses gathered into one write.
const maxWriteBatch = 1 << 20

// connHoldBytes is how much of a connection's answers may wait to be written before its
// reader stops (acks of pipelined produce requests stay far below it).
const connHoldBytes = 1 << 20

// connDoneAnswers is how many answers of a connection may wait to be written before its
// reader stops: none. As Kafka (which mutes a connection until its answer is sent), a
// connection reads no further request while an answer of its waits to be written, so a
// client that pipelines requests and reads nothing gets one answer built for it, not one per
// request; answers are accounted in the response budget only once encoded, and the build
// budget (ResponseSizer) bounds those built across connections. klite still reads ahead
// while requests wait for their fsync (only answers already given count), so pipelined
// produce requests share a group commit; answers that complete together stop the reader
// only until the writer has written them.
const connDoneAnswers = 0

// writeChunk is the most written by one write call: the write deadline (WriteTimeout) applies
// per chunk, so a slow reader that keeps taking bytes is served.
const writeChunk = 1 << 20

// writeBufPool holds the write buffers of connections that have nothing to write, so an idle
// connection keeps none.
var writeBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// writeLoop writes responses in request order. Responses that are already complete when the
// previous one is written are gathered into one write (pipelined produce and fetch requests
// often complete together after one fsync), so a burst costs one syscall, not one each;
// the loop writes what it has before it waits for a response that is not ready yet.
//
// Every encoded response takes its bytes from the response budget until they are written.
// One that does not fit is dropped again (its bytes are not held while waiting), the
// connection's reader stops, and once the budget has room the response is encoded anew.
//
// The loop ends (parks, writer.go) when it has nothing left to write; the reader starts it
// again with the next request.
func (s *Server) writeLoop(c *Conn, queue <-chan *slot, done chan<- struct{}) {
	var bufp *[]byte
	var buf []byte
	var charged int64 // bytes of buf taken from the response budget
	doneInBuf := 0    // answers in buf, counted in c.respDone until written
	broken := c.w.broken
	markBroken := func() {
		if !broken {
			broken = true
			c.nc.Close() // the reader notices and stops
			close(c.broken)
		}
	}
	flush := func() {
		if len(buf) > 0 && !broken {
			s.setWriting(c)
		}
		for off := 0; off < len(buf) && !broken; {
			end := min(off+writeChunk, len(buf))
			if s.cfg.WriteTimeout > 0 {
				// Per chunk: a slow reader that keeps taking bytes is served; one that
				// takes nothing for WriteTimeout is closed.
				c.nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			}
			if _, err := c.nc.Write(buf[off:end]); err != nil {
				if isClosedOrTimeout(err) && !errors.Is(err, net.ErrClosed) {
					s.log.Warn("closing connection: peer read nothing for the write timeout",
						"conn", c.ID, "remote", c.Remote.String(), "timeout", s.cfg.WriteTimeout)
				}
				markBroken()
				break
			}
			off = end
		}
		// The budget gets the bytes back once the whole buffer is written: the buffer
		// stays allocated until then, however much of it the peer has taken.
		s.settle(c, charged, doneInBuf)
		charged, doneInBuf = 0, 0
		buf = buf[:0]
	}
	// idle writes what is gathered and gives the buffer back before the loop blocks.
	idle := func() {
		flush()
		if bufp != nil {
			if cap(buf) <= 4*maxWriteBatch {
				*bufp = buf
				writeBufPool.Put(bufp)
			}
			bufp, buf = nil, nil
		}
	}
	// finish is the last writer's end: the queue is closed.
	finish := func() {
		idle()
		close(done)
	}
	var held *slot // taken from the queue while gathering, not handled yet
	for {
		sl := held
		held = nil
		if sl == nil {
			select {
			case n, ok := <-queue:
				if !ok {
					finish()
					return
				}
				sl = n
			default:
				idle() // about to block: send what is gathered
				if s.park(c, broken) {
					return
				}
				n, ok := <-queue
				if !ok {
					finish()
					return
				}
				sl = n
			}
		}
		select {
		case <-sl.done:
		default:
			idle() // about to wait for this response: send what is gathered
			select {
			case <-sl.done:
			case <-s.force:
				s.dropReservation(c, sl)
				markBroken()
				continue // the answer may never come: sl.resp is not ours to read
			}
		}
		if sl.resp == nil {
			s.unreserve(c, sl)
			continue
		}
		if _, ok := sl.resp.(closeConn); ok {
			s.unreserve(c, sl)
			flush()
			markBroken()
			continue
		}
		if broken {
			s.unreserve(c, sl)
			s.settle(c, 0, 1) // never to be written
			if sp, ok := sl.resp.(Spliced); ok {
				sp.Close()
			}
			recycle(sl.resp)
			continue
		}
		last, delay := false, time.Duration(0)
		if ca, ok := sl.resp.(closeAfter); ok {
			sl.resp, last, delay = ca.Response, true, ca.delay
		}
		if sl.setVer {
			sl.resp.SetVersion(sl.version)
		}
		if sp, ok := sl.resp.(Spliced); ok { // record bytes sent from files (splice.go)
			flush()
			if handled, failed := s.writeSpliced(c, sl, sp, last); handled {
				if failed {
					markBroken()
				}
				continue
			}
		}
		if bufp == nil {
			bufp = writeBufPool.Get().(*[]byte)
			buf = (*bufp)[:0]
		}
		start := len(buf)
		buf = appendSlot(buf, sl)
		m := int64(len(buf) - start)
		if !s.resps.tryAcquire(m, &c.respHeld) {
			buf = buf[:start]
			flush()
			if cap(buf) > maxWriteBatch {
				bufp, buf = nil, nil // grown by this answer: not kept while waiting
			}
			if !s.waitResponseBudget(c, m) {
				s.unreserve(c, sl)
				markBroken()
				s.settle(c, 0, 1)
				continue
			}
			if bufp == nil {
				bufp = writeBufPool.Get().(*[]byte)
				buf = (*bufp)[:0]
			}
			buf = appendSlot(buf, sl)
		}
		// Encoded and accounted in the response budget: the built answer is no longer
		// needed (nothing keeps it alive through a long write) nor its estimate.
		recycle(sl.resp)
		sl.resp = nil
		s.unreserve(c, sl)
		charged += m
		doneInBuf++
		if last {
			flush()
			if delay <= 0 {
				markBroken()
			} else if !broken {
				// Nothing more is written or read; the client gets delay to read this answer.
				broken = true
				close(c.broken)
				time.AfterFunc(delay, func() { c.nc.Close() })
			}
			continue
		}
		if len(buf) >= maxWriteBatch {
			flush()
		}
	}
}

// Recycler is an answer whose builder reuses its buffers: the writer calls Recycle once the
// answer is encoded into the write buffer (never before: the encode reads them), or when it
// drops the answer unwritten. An answer the writer never reaches is left to the GC.
type Recycler interface {
	Recycle()
}

// recycle hands resp's buffers back to its builder if it is a Recycler.
func recycle(resp kmsg.Response) {
	if r, ok := resp.(Recycler); ok {
		r.Recycle()
	}
}

// appendSlot encodes a slot's answer: a Kafka response, or a bare SASL token behind its size.
func appendSlot(buf []byte, sl *slot) []byte {
	if r, ok := sl.resp.(rawFrame); ok {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(r.b)))
		return append(buf, r.b...)
	}
	return AppendResponse(buf, sl.key, sl.corr, sl.resp)
}

// trueUp makes sl's build reservation the memory m its built answer holds (m 0: unknown,
// the estimate stands). Called before sl.done closes, so the writer sees the new figure.
func (s *Server) trueUp(c *Conn, sl *slot, m int64) {
	if m <= 0 {
		return
	}
	s.builds.mu.Lock()
	if m > sl.reserved {
		s.builds.takeLocked(m-sl.reserved, &c.buildHeld)
	} else if m < sl.reserved {
		s.builds.releaseLocked(sl.reserved-m, &c.buildHeld)
	}
	sl.reserved = m
	s.builds.mu.Unlock()
}

// unreserve gives back the build budget taken for sl's answer.
// The writer calls it once sl's answer is given (sl.done closed: trueUp is done with it).
func (s *Server) unreserve(c *Conn, sl *slot) {
	if sl.reserved > 0 {
		s.dropReservation(c, sl)
	}
}

// dropReservation is unreserve for a slot whose answer may still come (Shutdown gave up
// waiting): sl.reserved is read and changed under the build budget's lock, as trueUp does.
func (s *Server) dropReservation(c *Conn, sl *slot) {
	s.builds.mu.Lock()
	if sl.reserved > 0 {
		s.builds.releaseLocked(sl.reserved, &c.buildHeld)
		sl.reserved = 0
	}
	s.builds.mu.Unlock()
}

// setWriting marks c's writer as in a write call (settle clears it and wakes the reader).
func (s *Server) setWriting(c *Conn) {
	s.resps.mu.Lock()
	c.respWriting = true
	s.resps.mu.Unlock()
}

// settle gives back the response budget still held for c's written (or dropped) bytes and
// counts done answers as written, waking c's reader if it waits for that.
func (s *Server) settle(c *Conn, bytes int64, done int) {
	s.resps.mu.Lock()
	c.respDone -= done
	c.respWriting = false
	s.resps.releaseLocked(bytes, &c.respHeld)
	s.resps.mu.Unlock()
}

// waitResponseBudget takes m bytes of response budget for c's writer, stopping c's reader
// while it waits. It returns false if Shutdown gave up first.
func (s *Server) waitResponseBudget(c *Conn, m int64) bool {
	s.resps.mu.Lock()
	c.respWaiting = true
	s.resps.mu.Unlock()
	ok := s.resps.acquire(m, 0, &c.respHeld, s.force, nil) // flushed: holds nothing
	s.resps.mu.Lock()
	c.respWaiting = false
	s.resps.notifyLocked()
	s.resps.mu.Unlock()
	return ok
}
