//go:build !linux

package logstore

import "os"

const oDirect = 0

// startWriteback: the kernel's own writeback only.
func startWriteback(*os.File, int64, int64) {}

// fdatasync: fsync where fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }

// pwritev writes bufs one after the other at off.
func pwritev(f *os.File, bufs [][]byte, off int64) error {
	for _, b := range bufs {
		if _, err := f.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}
