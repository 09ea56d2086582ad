//go:build !(linux && (amd64 || arm64))

package main

import "os"

func dropPageCache(f *os.File, off, n int64) {}

// oDirect is the open flag for direct I/O (none here: the O_DIRECT probe is skipped).
const oDirect = 0
