package logstore

import (
	"os"
	"sync"

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

var (
	devNullOnce sync.Once
	devNull     *os.File
)

// readAhead reads [off, off+n) of f into the page cache and returns once it is there:
// sendfile to /dev/null, which reads the pages through the page cache without copying them
// to user space (the background prefetch, readahead.go). Where /dev/null cannot be opened
// it asks the kernel instead (prefetch).
func readAhead(f *os.File, off, n int64) {
	devNullOnce.Do(func() { devNull, _ = os.OpenFile(os.DevNull, os.O_WRONLY, 0) })
	if devNull == nil {
		prefetch(f, off, n)
		return
	}
	out, in := int(devNull.Fd()), int(f.Fd())
	for n > 0 {
		k, err := unix.Sendfile(out, in, &off, int(min(n, prefetchChunk)))
		if err != nil || k <= 0 {
			return // the file's end, or an error: the reader will read it itself
		}
		n -= int64(k)
	}
}
