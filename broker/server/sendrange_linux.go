package server

import (
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// sendRange sends fr with sendfile at fr's offsets (the file's own position is neither
// used nor moved: readers share the descriptor, see logstore's fdcache.go), a writeChunk
// per deadline.
func sendRange(nc net.Conn, fr FileRange, deadline func()) error {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return errSpliceLayout // ZeroCopy admits TCP connections only
	}
	out, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	in, err := fr.File.SyscallConn()
	if err != nil {
		return err
	}
	off, end := fr.Off, fr.Off+fr.Len
	var serr error
	cerr := in.Control(func(infd uintptr) {
		for off < end && serr == nil {
			deadline()
			stop := min(end, off+writeChunk)
			werr := out.Write(func(outfd uintptr) bool {
				for off < stop {
					n, err := unix.Sendfile(int(outfd), int(infd), &off, int(stop-off))
					switch {
					case err == unix.EAGAIN:
						return false // the socket is full: wait until it drains
					case err == unix.EINTR:
					case err != nil:
						serr = err
						return true
					case n == 0:
						serr = io.ErrUnexpectedEOF // the file ended early: the frame cannot be completed
						return true
					}
				}
				return true
			})
			if werr != nil && serr == nil {
				serr = werr
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return serr
}
