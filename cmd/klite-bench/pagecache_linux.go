//go:build linux && (amd64 || arm64)

package main

import (
	"os"
	"syscall"
)

// dropPageCache drops f's cached pages in [off, off+n) (POSIX_FADV_DONTNEED), as klite's
// WAL does for fsynced data.
func dropPageCache(f *os.File, off, n int64) {
	syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), uintptr(off), uintptr(n), 4, 0, 0)
}

// oDirect is the open flag for direct I/O.
const oDirect = syscall.O_DIRECT
