package server

import (
	"bufio"
	"io"
	"net"
	"sync"
	"syscall"
)

// connReader hands out a buffered reader for one connection and gives the buffer back to a
// shared pool whenever the connection has nothing buffered, so an idle connection holds no
// read buffer: it waits for the socket to become readable without one (waitReadable peeks
// at the file descriptor) and only then takes a buffer again. Connections without a pollable
// file descriptor (TLS keeps its own decrypted bytes) keep their buffer.
type connReader struct {
	nc  net.Conn
	raw syscall.RawConn
	buf *bufio.Reader
	// busy is set from the moment the connection has bytes to read until it waits without
	// a buffer again; onBusy and onIdle (if set) are called as it changes.
	busy           bool
	onBusy, onIdle func()
}

// testHookIdle, when set by a test, runs when a connection goes idle (buffer released).
var testHookIdle func(*connReader)

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

func newConnReader(nc net.Conn) *connReader {
	r := &connReader{nc: nc}
	if canPeek {
		if sc, ok := nc.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				r.raw = raw
			}
		}
	}
	return r
}

// next returns the reader for the next frame, waiting (bufferless) until the connection has
// bytes to read when nothing is buffered. A read error (deadline, close) is returned as is.
func (r *connReader) next() (io.Reader, error) {
	if r.buf != nil && r.buf.Buffered() > 0 {
		return r.buf, nil
	}
	if r.raw != nil {
		r.release()
		r.setBusy(false)
		if testHookIdle != nil {
			testHookIdle(r)
		}
		if err := waitReadable(r.raw); err != nil {
			return nil, err
		}
		r.setBusy(true)
	}
	if r.buf == nil {
		r.buf = readerPool.Get().(*bufio.Reader)
		r.buf.Reset(r.nc)
	}
	return r.buf, nil
}

func (r *connReader) setBusy(busy bool) {
	if r.busy == busy {
		return
	}
	r.busy = busy
	if f := r.onIdle; !busy && f != nil {
		f()
	} else if f := r.onBusy; busy && f != nil {
		f()
	}
}

// close releases the buffer and counts the connection idle (it is gone).
func (r *connReader) close() {
	r.release()
	r.setBusy(false)
}

// release gives the buffer back to the pool; the caller must not use an earlier next result.
func (r *connReader) release() {
	if r.buf != nil {
		r.buf.Reset(nil)
		readerPool.Put(r.buf)
		r.buf = nil
	}
}
