//go:build !linux

package logstore

import "os"

const oDirect = 0

// startWriteback: the kernel's own writeback only.
func startWriteback(*os.File, int64, int64) {}

// fdatasync: fsync where fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }
