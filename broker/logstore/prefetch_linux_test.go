package logstore

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident reports, for each page of f's first n bytes, whether it is in the page cache.
func resident(t *testing.T, f *os.File, n int) []bool {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (n+page-1)/page)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	out := make([]bool, len(vec))
	for i, v := range vec {
		out[i] = v&1 != 0
	}
	return out
}

// readAhead has the range it is given in the page cache when it returns, and not what lies
// well before it.
func TestReadAheadReadsTheRange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	const size = 4 << 20
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, size, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	for _, r := range resident(t, f, size) {
		if r {
			t.Skip("this file system keeps the file's pages cached (tmpfs?): nothing to observe")
		}
	}
	const from, n = 1 << 20, 2 << 20
	readAhead(f, from, n)
	page := os.Getpagesize()
	for i, r := range resident(t, f, size) {
		in := i*page >= from && i*page < from+n
		if in && !r {
			t.Fatalf("page %d (byte %d) of the range read ahead is not in the page cache", i, i*page)
		}
		if r && i*page < from-(512<<10) {
			// The kernel's own readahead may read on past the range, not far before it.
			t.Fatalf("page %d (byte %d), before the range read ahead, is in the page cache", i, i*page)
		}
	}
}
