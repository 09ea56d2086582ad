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
