//go:build !linux

package logstore

import "os"

// prefetch is a no-op where posix_fadvise is not available.
func prefetch(*os.File, int64, int64) {}

// readAhead is a no-op where posix_fadvise and sendfile to /dev/null are not used.
func readAhead(*os.File, int64, int64) {}
