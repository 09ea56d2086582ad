//go:build linux || darwin || freebsd || netbsd || openbsd

package server

import "syscall"

const canPeek = true

// waitReadable returns once the socket has bytes to read (or is at EOF or in error: the read
// that follows reports those), without reading them. It peeks at one byte without blocking
// and otherwise waits in the runtime's poller, which honours the connection's deadlines.
func waitReadable(raw syscall.RawConn) error {
	var b [1]byte
	return raw.Read(func(fd uintptr) bool {
		for {
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch err {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // nothing yet: wait for readability
			}
			return true
		}
	})
}
