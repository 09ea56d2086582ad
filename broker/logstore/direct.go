package logstore

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
)

// Large segment objects are written with direct I/O where the file system allows it: a
// sealed segment is not read back soon (the tail in memory serves recent reads), and the
// copy into the page cache would cost the broker as much CPU as the WAL saved by writing
// direct. The buffer is written rounded up to the block size (the builder leaves room)
// and the file truncated to the object's size before the fsync.

const (
	dioAlign    = 4096
	dioMinBytes = 1 << 20
)

// dioAligned reports whether p's memory starts on a block boundary (direct I/O needs it).
func dioAligned(p []byte) bool { return uintptr(unsafe.Pointer(unsafe.SliceData(p)))%dioAlign == 0 }

// alignedBytes returns an empty, block-aligned buffer of capacity n.
func alignedBytes(n int) []byte {
	b := make([]byte, n+dioAlign)
	skip := int((dioAlign - uintptr(unsafe.Pointer(unsafe.SliceData(b)))%dioAlign) % dioAlign)
	return b[skip : skip : skip+n]
}

// writeDirect writes data to a new file at path with O_DIRECT and fsyncs it; ok is false
// when direct I/O does not apply (no O_DIRECT, small or unaligned buffer, refused by the
// file system) and nothing was written.
func writeDirect(path string, data []byte) (ok bool, err error) {
	n := (len(data) + dioAlign - 1) &^ (dioAlign - 1)
	if oDirect == 0 || len(data) < dioMinBytes || cap(data) < n || !dioAligned(data) {
		return false, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|oDirect, 0o644)
	if err != nil {
		return false, nil
	}
	if _, err = f.Write(data[:n]); err != nil {
		f.Close()
		os.Remove(path)
		if errors.Is(err, syscall.EINVAL) {
			return false, nil // this file system wants another alignment: write buffered
		}
		return true, err
	}
	err = f.Truncate(int64(len(data)))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return true, err
}
