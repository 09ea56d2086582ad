package logstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// prefetchChunk is how much one POSIX_FADV_WILLNEED asks for: the kernel reads at most its
// readahead size per call (read_ahead_kb), so a long range is asked for piece by piece.
const prefetchChunk = 2 << 20

// prefetch asks the kernel to start reading [off, off+n) of f into the page cache
// (POSIX_FADV_WILLNEED, which submits the reads and returns): a catch-up read of a cold
// segment then reaches the disk as one sequential stream queued at once, not one small
// read per batch header followed by the send's own reads.
func prefetch(f *os.File, off, n int64) {
	fd := int(f.Fd())
	for end := off + n; off < end; off += prefetchChunk {
		if unix.Fadvise(fd, off, min(prefetchChunk, end-off), unix.FADV_WILLNEED) != nil {
			return
		}
	}
}
