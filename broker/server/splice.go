package server

// Answers sent partly from files (zero-copy Fetch). A Fetch served from sealed segments on
// a plain TCP connection carries, instead of its record bytes, a one-byte placeholder per
// partition and the file range holding those bytes. The writer encodes the answer twice
// with the placeholders set to 0 and then 1; the bytes where the two encodings differ are
// the placeholders, in encoding order. It then writes the encoding with each placeholder's
// length prefix rewritten to the range's length and the range itself sent from the file
// (sendfile at the range's offset, so the file's position is never moved), and the frame's size prefix grown to match:
//
//	encoded:  | size | header ... len=1 | P0 | ... len=1 | P1 | ... |
//	written:  | size'| header ... len=n0| <n0 bytes of file 0> | ... len=n1 | <n1 bytes of file 1> | ... |
//
// A bytes field's length prefix is an int32 in non-flexible versions and an unsigned
// varint of length+1 in flexible ones (compact nullable bytes). Only the encoded bytes (the
// header) are counted in the response budget: the record bytes never enter memory. TLS
// connections (and anything else that is not a *net.TCPConn) never get such answers: the
// Dispatcher asks ZeroCopy first. Should the two encodings not line up as expected, the
// answer reads its files into memory (Inline) and is written like any other.

import (
	"encoding/binary"
	"errors"
	"math"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
)

// FileRange is a byte range of an open file.
type FileRange struct {
	File     *os.File
	Off, Len int64
}

// Spliced is an answer whose file-backed bytes fields are written from files.
type Spliced interface {
	// Mark sets every file-backed field's one-byte placeholder to m.
	Mark(m byte)
	// Files returns the file range of each file-backed field still in the answer, in
	// encoding order.
	Files() []FileRange
	// Inline reads the file ranges into the fields (the answer is then an ordinary one).
	Inline() error
	// Close closes the files; the writer calls it once the answer is written or dropped.
	Close()
}

// ZeroCopy reports whether answers to c may be sent from files: a plain TCP connection
// (not TLS, whose records must be encrypted in memory).
func (c *Conn) ZeroCopy() bool {
	_, ok := c.nc.(*net.TCPConn)
	return ok
}

// splicedFrame is an encoded answer with file ranges to send between its bytes: hdr[:cuts[0]],
// files[0], hdr[cuts[0]:cuts[1]], files[1], ..., hdr[cuts[n-1]:].
type splicedFrame struct {
	hdr   []byte
	cuts  []int
	files []FileRange
}

var errSpliceLayout = errors.New("server: spliced answer does not encode as expected")

// encodeSpliced encodes sl's answer sp as a splicedFrame.
func encodeSpliced(sl *slot, sp Spliced) (splicedFrame, error) {
	sp.Mark(0)
	a := appendSlot(nil, sl)
	sp.Mark(1)
	b := appendSlot(make([]byte, 0, len(a)), sl)
	files := sp.Files()
	if len(a) != len(b) {
		return splicedFrame{}, errSpliceLayout
	}
	flexible := sl.resp.IsFlexible()
	f := splicedFrame{hdr: make([]byte, 0, len(a)+4*len(files)), files: files}
	prev, n := 0, 0
	for i := range a {
		if a[i] == b[i] {
			continue
		}
		if n == len(files) || a[i] != 0 || b[i] != 1 {
			return splicedFrame{}, errSpliceLayout
		}
		// The placeholder's length prefix: int32 1, or uvarint 2 (compact: length+1).
		plen := 4
		if flexible {
			plen = 1
		}
		if i-plen < prev {
			return splicedFrame{}, errSpliceLayout
		}
		if flexible && a[i-1] != 2 || !flexible && binary.BigEndian.Uint32(a[i-4:]) != 1 {
			return splicedFrame{}, errSpliceLayout
		}
		f.hdr = append(f.hdr, a[prev:i-plen]...)
		ln := files[n].Len
		if ln < 0 || ln > math.MaxInt32 {
			return splicedFrame{}, errSpliceLayout
		}
		if flexible {
			f.hdr = kbin.AppendUvarint(f.hdr, uint32(ln+1))
		} else {
			f.hdr = kbin.AppendInt32(f.hdr, int32(ln))
		}
		f.cuts = append(f.cuts, len(f.hdr))
		prev = i + 1
		n++
	}
	if n != len(files) {
		return splicedFrame{}, errSpliceLayout
	}
	f.hdr = append(f.hdr, a[prev:]...)
	total := int64(len(f.hdr)) - 4 // the frame size: everything after the size prefix
	for _, fr := range files {
		total += fr.Len
	}
	if total > math.MaxInt32 {
		return splicedFrame{}, errSpliceLayout
	}
	binary.BigEndian.PutUint32(f.hdr, uint32(total))
	return f, nil
}

// writeSpliced writes a spliced answer (the writer has flushed what it gathered before):
// its encoded bytes take response budget, its file ranges none. handled is false when the
// answer was turned into an ordinary one (Inline) for the caller to encode, as the last
// answer of a connection always is; failed is true when the connection can no longer be
// written (the caller marks it broken).
func (s *Server) writeSpliced(c *Conn, sl *slot, sp Spliced, last bool) (handled, failed bool) {
	var f splicedFrame
	err := errSpliceLayout
	if !last {
		f, err = encodeSpliced(sl, sp)
	}
	if err != nil {
		if ierr := sp.Inline(); ierr != nil {
			s.log.Warn("closing connection: reading a file-backed answer failed", "conn", c.ID, "err", ierr)
			sp.Close()
			s.unreserve(c, sl)
			s.settle(c, 0, 1)
			return true, true
		}
		sp.Close()
		return false, false
	}
	defer sp.Close()
	m := int64(len(f.hdr))
	if !s.resps.tryAcquire(m, &c.respHeld) && !s.waitResponseBudget(c, m) {
		s.unreserve(c, sl)
		s.settle(c, 0, 1)
		return true, true
	}
	sl.resp = nil
	s.unreserve(c, sl)
	s.setWriting(c)
	err = s.writeFrame(c, f)
	s.settle(c, m, 1)
	if err != nil {
		if isClosedOrTimeout(err) && !errors.Is(err, net.ErrClosed) {
			s.log.Warn("closing connection: peer read nothing for the write timeout",
				"conn", c.ID, "remote", c.Remote.String(), "timeout", s.cfg.WriteTimeout)
		} else if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			// The client went away mid-answer (a consumer closing): as on the copy path,
			// not worth a warning.
			s.log.Debug("connection closed by the peer while sending a file-backed answer", "conn", c.ID, "err", err)
		} else if !errors.Is(err, net.ErrClosed) {
			s.log.Warn("closing connection: sending a file-backed answer failed", "conn", c.ID, "err", err)
		}
		return true, true
	}
	return true, false
}

// writeFrame writes f's bytes and file ranges in order, a writeChunk at a time under the
// write deadline.
func (s *Server) writeFrame(c *Conn, f splicedFrame) error {
	deadline := func() {
		if s.cfg.WriteTimeout > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		}
	}
	writeBytes := func(b []byte) error {
		for len(b) > 0 {
			n := min(len(b), writeChunk)
			deadline()
			if _, err := c.nc.Write(b[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	}
	prev := 0
	for i, fr := range f.files {
		if err := writeBytes(f.hdr[prev:f.cuts[i]]); err != nil {
			return err
		}
		prev = f.cuts[i]
		if err := sendRange(c.nc, fr, deadline); err != nil {
			return err
		}
	}
	return writeBytes(f.hdr[prev:])
}
