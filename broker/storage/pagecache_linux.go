//go:build linux && (amd64 || arm64)

package storage

import (
	"os"
	"syscall"
)

const fadvDontNeed = 4 // POSIX_FADV_DONTNEED

// dropPageCache asks the kernel to drop the cached pages of f in [off, off+n) (n 0: to the
// end of the file). Only a hint: errors are ignored. Dirty pages are not dropped by it (they
// would be written back first), so callers pass fsynced ranges.
func dropPageCache(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		syscall.Syscall6(syscall.SYS_FADVISE64, fd, uintptr(off), uintptr(n), fadvDontNeed, 0, 0)
	})
}
