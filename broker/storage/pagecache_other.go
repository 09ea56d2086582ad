//go:build !(linux && (amd64 || arm64))

package storage

import "os"

// dropPageCache is a no-op where posix_fadvise is not wired up.
func dropPageCache(f *os.File, off, n int64) {}
