//go:build !linux

package storage

// oDirect is the open flag for direct I/O (0 where there is none).
const oDirect = 0
