package logstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// prefetch asks the kernel to start reading [off, off+n) of f into the page cache
// (POSIX_FADV_WILLNEED): a catch-up read of a cold segment then reaches the disk as one
// sequential stream, not one small read per batch header followed by the send's own reads.
func prefetch(f *os.File, off, n int64) {
	if n > 0 {
		_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED)
	}
}
