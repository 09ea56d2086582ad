package logstore

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const oDirect = syscall.O_DIRECT

// startWriteback asks the kernel to start writing f's dirty pages in [off, off+n) to the
// disk now, without waiting for it (SYNC_FILE_RANGE_WRITE).
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// fdatasync makes f's data (and the size it needs) durable, without its other metadata.
func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// pwritev writes bufs one after the other at off, in one system call where it can (a
// direct write costs mostly per call: on a virtual disk a 4 KiB one takes as much CPU as a
// 200 KiB one), looping over short writes.
func pwritev(f *os.File, bufs [][]byte, off int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	for len(bufs) > 0 {
		var n int
		var werr error
		if cerr := rc.Write(func(fd uintptr) bool {
			n, werr = unix.Pwritev(int(fd), bufs, off)
			return werr != unix.EINTR
		}); cerr != nil {
			return cerr
		}
		if werr != nil {
			return werr
		}
		if n == 0 {
			return unix.EIO
		}
		off += int64(n)
		for n > 0 {
			if n < len(bufs[0]) {
				bufs[0] = bufs[0][n:]
				break
			}
			n -= len(bufs[0])
			bufs = bufs[1:]
		}
	}
	return nil
}
