package logstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// openUnder returns the descriptors of this process open on files under dir, and how many
// of them are on deleted files, once d's background prefetches are done.
func openUnder(t *testing.T, d *DirStore, dir string) (n, deleted int) {
	t.Helper()
	d.files.bg.Wait()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	for _, e := range es {
		p, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		// The active segment's object being written (objwriter.go) is not a reader's.
		if err != nil || !strings.HasPrefix(p, dir+string(filepath.Separator)) || strings.Contains(p, tmpSuffix) {
			continue
		}
		n++
		if strings.HasSuffix(p, " (deleted)") {
			deleted++
		}
	}
	return n, deleted
}

func cachedLog(t *testing.T, cacheSize, batches int) (*DirStore, *Log, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := OpenDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	d.files = newFileCache(cacheSize)
	l, err := Open(d, "p/", smallConfig(), smallOpts(&clock{}))
	if err != nil {
		t.Fatal(err)
	}
	appendMixed(t, l, batches)
	return d, l, dir
}

// A reader catching up (each read from the offset after the last one's) gets, read after
// read and across segment boundaries, exactly what the copy path returns: the position
// hints the shared files keep for such reads never skip or repeat a batch.
func TestReadSpanCatchUpMatchesReadAppend(t *testing.T) {
	_, l, _ := cachedLog(t, fileCacheSize, 150)
	durable := l.DurableOffset()
	for _, maxBytes := range []int{1, 150, 700, 2500, 9000} {
		for pass := range 2 { // the second pass reads with the hints the first one left
			var got, want []byte
			for off := int64(0); off < durable; {
				sp, ok, err := l.ReadSpan(off, maxBytes, durable, true)
				if err != nil || !ok || sp.Len == 0 {
					t.Fatalf("max %d pass %d offset %d: ok %v len %d, %v", maxBytes, pass, off, ok, sp.Len, err)
				}
				b := spanBytes(t, sp)
				sp.Close()
				raw, err := l.ReadAppend(nil, off, maxBytes)
				if err != nil {
					t.Fatal(err)
				}
				w, last, _ := cutRead(t, raw, durable, maxBytes, true)
				if !bytes.Equal(b, w) || sp.Last != last {
					t.Fatalf("max %d pass %d offset %d: span %d bytes to %d, copy path %d bytes to %d", maxBytes, pass, off, len(b), sp.Last, len(w), last)
				}
				got, want = append(got, b...), append(want, w...)
				off = sp.Last + 1
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("max %d: catch-up read %d bytes, copy path %d", maxBytes, len(got), len(want))
			}
		}
	}
}

// The cache keeps at most its size of descriptors between reads; reads in flight hold
// theirs beyond that until released, and none is leaked.
func TestFileCacheBoundsDescriptors(t *testing.T) {
	d, l, dir := cachedLog(t, 3, 150)
	segs := l.Segments()
	if len(segs) < 6 {
		t.Fatalf("%d segments, want more than the cache holds", len(segs))
	}
	var held []Span
	for _, s := range segs {
		sp, ok, err := l.ReadSpan(s.Base, 1<<20, l.NextOffset(), true)
		if err != nil || !ok || sp.Len == 0 {
			t.Fatalf("segment %s: ok %v len %d, %v", s.Name, ok, sp.Len, err)
		}
		held = append(held, sp)
	}
	if n, _ := openUnder(t, d, dir); n < len(segs) {
		t.Fatalf("%d descriptors open with %d reads in flight, want one each", n, len(segs))
	}
	for i := range held {
		held[i].Close()
		held[i].Close() // twice: a no-op
	}
	if got := d.files.open(); got != 3 {
		t.Fatalf("the cache holds %d files, want 3", got)
	}
	if n, _ := openUnder(t, d, dir); n != 3 {
		t.Fatalf("%d descriptors open after the reads, want the cache's 3", n)
	}
	// Reading them all again, one at a time, never holds more.
	for _, s := range segs {
		sp, ok, err := l.ReadSpan(s.Base, 1<<20, l.NextOffset(), true)
		if err != nil || !ok {
			t.Fatalf("segment %s: ok %v, %v", s.Name, ok, err)
		}
		sp.Close()
		if n, _ := openUnder(t, d, dir); n > 3 {
			t.Fatalf("%d descriptors open between reads, want at most 3", n)
		}
	}
}

// Deleting a segment whose file is cached closes it at once; a read in flight keeps its
// bytes (never another object's) and closes it when released: no descriptor is left on a
// deleted file.
func TestFileCacheSegmentDeletedWhileCached(t *testing.T) {
	d, l, dir := cachedLog(t, fileCacheSize, 150)
	segs := l.Segments()
	if len(segs) < 4 {
		t.Fatalf("%d segments, want 4 or more", len(segs))
	}
	// Segment 0 cached, not in flight; segment 1 cached and in flight.
	for _, s := range segs[:2] {
		sp, ok, err := l.ReadSpan(s.Base, 1<<20, l.NextOffset(), true)
		if err != nil || !ok {
			t.Fatalf("segment %s: ok %v, %v", s.Name, ok, err)
		}
		sp.Close()
	}
	want, err := l.ReadAppend(nil, segs[1].Base, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	sp, ok, err := l.ReadSpan(segs[1].Base, 1<<20, l.NextOffset(), true)
	if err != nil || !ok || sp.Len == 0 {
		t.Fatalf("ReadSpan: ok %v len %d, %v", ok, sp.Len, err)
	}
	want, _, _ = cutRead(t, want, l.NextOffset(), 1<<20, true)
	if err := l.DeleteRecordsBefore(segs[2].Base); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(segs[1].Name, 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("segment %s still there: %v", segs[1].Name, err)
	}
	if _, del := openUnder(t, d, dir); del != 1 {
		t.Fatalf("%d descriptors on deleted files with one read in flight, want 1", del)
	}
	if got := spanBytes(t, sp); !bytes.Equal(got, want) {
		t.Fatalf("span of a deleted segment: %d bytes differ from the %d read before", len(got), len(want))
	}
	sp.Close()
	if n, del := openUnder(t, d, dir); del != 0 || n != d.files.open() {
		t.Fatalf("%d descriptors (%d on deleted files), the cache holds %d", n, del, d.files.open())
	}
	// Deleting every segment leaves none open.
	if err := l.DeleteRecordsBefore(l.DurableOffset()); err != nil {
		t.Fatal(err)
	}
	if n, _ := openUnder(t, d, dir); n != 0 || d.files.open() != 0 {
		t.Fatalf("%d descriptors open (cache %d) after every segment was deleted", n, d.files.open())
	}
}

// Replacing a cached object (Put) drops its descriptor: the next read sees the new bytes.
func TestFileCacheObjectReplaced(t *testing.T) {
	d, l, _ := cachedLog(t, fileCacheSize, 60)
	s := l.Segments()[0]
	sp, ok, err := l.ReadSpan(s.Base, 1<<20, l.NextOffset(), true)
	if err != nil || !ok {
		t.Fatalf("ReadSpan: ok %v, %v", ok, err)
	}
	sp.Close()
	corruptFirstBatchLength(t, d, s.Name)
	if _, _, err := l.ReadSpan(s.Base, 1<<20, l.NextOffset(), true); !errors.Is(err, errBadBatch) {
		t.Fatalf("ReadSpan after the segment was replaced: %v (the old file served?)", err)
	}
}

// CloseFiles (the broker closing) closes the cached files at once and a file in flight once
// released; reads after it still work and keep nothing open.
func TestFileCacheCloseFiles(t *testing.T) {
	d, l, dir := cachedLog(t, fileCacheSize, 60)
	segs := l.Segments()
	var held Span
	for i, s := range segs {
		sp, ok, err := l.ReadSpan(s.Base, 1<<20, l.NextOffset(), true)
		if err != nil || !ok || sp.Len == 0 {
			t.Fatalf("segment %s: ok %v len %d, %v", s.Name, ok, sp.Len, err)
		}
		if i == 0 {
			held = sp
		} else {
			sp.Close()
		}
	}
	if n, _ := openUnder(t, d, dir); n != len(segs) {
		t.Fatalf("%d descriptors open, want one per segment (%d)", n, len(segs))
	}
	d.CloseFiles()
	if n, _ := openUnder(t, d, dir); n != 1 {
		t.Fatalf("%d descriptors open after CloseFiles with one read in flight, want 1", n)
	}
	want, err := l.ReadAppend(nil, segs[0].Base, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ = cutRead(t, want, l.NextOffset(), 1<<20, true)
	if got := spanBytes(t, held); !bytes.Equal(got, want) {
		t.Fatalf("the read in flight: %d bytes, want %d", len(got), len(want))
	}
	held.Close()
	sp, ok, err := l.ReadSpan(segs[1].Base, 1<<20, l.NextOffset(), true)
	if err != nil || !ok || sp.Len == 0 {
		t.Fatalf("ReadSpan after CloseFiles: ok %v len %d, %v", ok, sp.Len, err)
	}
	sp.Close()
	if n, _ := openUnder(t, d, dir); n != 0 || d.files.open() != 0 {
		t.Fatalf("%d descriptors open (cache %d) after CloseFiles and the reads' release", n, d.files.open())
	}
}
