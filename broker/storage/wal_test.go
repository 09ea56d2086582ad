package storage

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func openTestWAL(t *testing.T, opts WALOptions, fs *testFiles) (*fileWAL, *logBuffer) {
	t.Helper()
	log, lb := newTestLogger()
	opts.Logger = log
	if fs != nil {
		opts.files = fs
	}
	// Tests that damage files between runs stand for crashes: no clean-shutdown marker
	// (tests of the marker open the WAL with OpenWAL).
	opts.noCleanMarker = true
	w, err := OpenWAL(opts)
	if err != nil {
		t.Fatal(err)
	}
	return w.(*fileWAL), lb
}

func segPath(dir string, n uint64) string { return filepath.Join(dir, "wal", segName(n)) }

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// segEnd is where the intact entries of a segment file end: its size without the zero
// padding a direct write leaves after the last entry (or a torn tail).
func segEnd(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var b Batch
	var buf []byte
	sc, err := scanSegment(f, st.Size(), 1, true, &b, &buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sc.good
}

// writeEntries appends n entries of size bytes to a fresh WAL in dir and closes it.
func writeEntries(t *testing.T, dir string, n, size int, segBytes int64) []Location {
	t.Helper()
	w, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: segBytes}, nil)
	replayAll(t, w)
	var locs []Location
	for i := range n {
		locs = append(locs, mustAppend(t, w, testBatch(i, size)))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return locs
}

func checkReplay(t *testing.T, got []replayed, want []Location, size int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("replayed %d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].loc != want[i] {
			t.Fatalf("entry %d at %+v, want %+v", i, got[i].loc, want[i])
		}
		if err := sameBatch(&got[i].b, testBatch(i, size)); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
}

func TestWALTornTailEveryPosition(t *testing.T) {
	src := t.TempDir()
	const n, size = 5, 120
	locs := writeEntries(t, src, n, size, 0)
	full, err := os.ReadFile(segPath(src, 1))
	if err != nil {
		t.Fatal(err)
	}
	lastStart := locs[n-1].Offset - entryHeaderSize
	end := locs[n-1].Offset + size
	if int64(len(full)) != end && int64(len(full)) != alignUp64(end) || !allZero(full[end:]) {
		t.Fatalf("segment is %d bytes, want %d (or zero-padded to %d)", len(full), end, alignUp64(end))
	}
	full = full[:end]
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o755); err != nil {
		t.Fatal(err)
	}
	for cut := lastStart; cut < int64(len(full)); cut++ {
		if err := os.WriteFile(segPath(dir, 1), full[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		w, lb := openTestWAL(t, WALOptions{Dir: dir}, nil)
		checkReplay(t, replayAll(t, w), locs[:n-1], size)
		if got := fileSize(t, segPath(dir, 1)); got != lastStart {
			t.Fatalf("cut %d: file is %d bytes after replay, want %d", cut, got, lastStart)
		}
		warned := strings.Contains(lb.String(), "truncating torn WAL tail")
		if warned != (cut > lastStart) {
			t.Fatalf("cut %d: warning logged=%v, log: %s", cut, warned, lb.String())
		}
		// The entry lost in the tear can be written again and survives a restart.
		if loc := mustAppend(t, w, testBatch(n-1, size)); loc != locs[n-1] {
			t.Fatalf("cut %d: re-append at %+v, want %+v", cut, loc, locs[n-1])
		}
		w.Close()
		w, _ = openTestWAL(t, WALOptions{Dir: dir}, nil)
		checkReplay(t, replayAll(t, w), locs, size)
		w.Close()
	}
}

func TestWALCorruptTail(t *testing.T) {
	const n, size = 6, 300
	cases := []struct {
		name   string
		mutate func(data []byte, last Location) []byte
		reason string
	}{
		{"payload bit flip", func(d []byte, l Location) []byte { d[l.Offset+17] ^= 0x10; return d }, "CRC mismatch"},
		{"header field flip", func(d []byte, l Location) []byte { d[l.Offset-entryHeaderSize+30] ^= 1; return d }, "CRC mismatch"},
		{"crc field flip", func(d []byte, l Location) []byte { d[l.Offset-entryHeaderSize] ^= 0x80; return d }, "CRC mismatch"},
		{"bad magic", func(d []byte, l Location) []byte { d[l.Offset-entryHeaderSize+4] = 0; return d }, "bad entry header"},
		{"length too long", func(d []byte, l Location) []byte { d[l.Offset-entryHeaderSize+10] = 0x7F; return d }, "runs past the end"},
		{"zeroed page, then data", func(d []byte, l Location) []byte {
			for i := l.Offset - entryHeaderSize; i < int64(len(d)); i++ {
				d[i] = 0
			}
			// A zeroed page, as a file system can expose after a crash, with something not
			// zero after it: not padding (zeros to the end of the file are, below).
			d = append(d, make([]byte, dioAlign)...)
			d[len(d)-1] = 1
			return d
		}, "bad entry header"},
		{"zeroed pages to the end", func(d []byte, l Location) []byte {
			for i := l.Offset - entryHeaderSize; i < int64(len(d)); i++ {
				d[i] = 0
			}
			// Zeros from the last entry to the end of the file, longer than a block: a direct
			// write's padding or the region prepared ahead of the commits (wal_prealloc.go),
			// cut without a warning. Unwritten blocks a file system exposes after a crash
			// look the same, and are cut the same way: nothing there was acknowledged.
			d = append(d, make([]byte, 3*dioAlign)...)
			return append(d, make([]byte, alignUp64(int64(len(d)))-int64(len(d)))...)
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			locs := writeEntries(t, dir, n, size, 0)
			data, _ := os.ReadFile(segPath(dir, 1))
			data = tc.mutate(data, locs[n-1])
			os.WriteFile(segPath(dir, 1), data, 0o644)
			w, lb := openTestWAL(t, WALOptions{Dir: dir}, nil)
			defer w.Close()
			checkReplay(t, replayAll(t, w), locs[:n-1], size)
			if got, want := fileSize(t, segPath(dir, 1)), locs[n-1].Offset-entryHeaderSize; got != want {
				t.Fatalf("file %d bytes after replay, want %d", got, want)
			}
			if tc.reason == "" {
				if strings.Contains(lb.String(), "truncating torn WAL tail") {
					t.Fatalf("zeros to the end of the file taken for a torn tail: %s", lb.String())
				}
			} else if !strings.Contains(lb.String(), "truncating torn WAL tail") || !strings.Contains(lb.String(), tc.reason) {
				t.Fatalf("log lacks the warning with %q: %s", tc.reason, lb.String())
			}
		})
	}
	t.Run("garbage appended", func(t *testing.T) {
		dir := t.TempDir()
		locs := writeEntries(t, dir, n, size, 0)
		f, _ := os.OpenFile(segPath(dir, 1), os.O_WRONLY|os.O_APPEND, 0)
		f.Write(bytes.Repeat([]byte("garbage!"), 1000))
		f.Close()
		w, _ := openTestWAL(t, WALOptions{Dir: dir}, nil)
		defer w.Close()
		checkReplay(t, replayAll(t, w), locs, size)
		if got, want := fileSize(t, segPath(dir, 1)), locs[n-1].Offset+size; got != want {
			t.Fatalf("file %d bytes after replay, want %d", got, want)
		}
	})
}

func TestWALCorruptEarlierSegment(t *testing.T) {
	dir := t.TempDir()
	const size = 500
	locs := writeEntries(t, dir, 30, size, 4096)
	var victim Location
	for _, l := range locs {
		if l.Segment == 2 {
			victim = l // the last entry of segment 2: its tail position must not matter
		}
	}
	if victim.Segment != 2 || locs[len(locs)-1].Segment < 4 {
		t.Fatalf("unexpected layout: %+v", locs)
	}
	data, _ := os.ReadFile(segPath(dir, 2))
	data[victim.Offset+3] ^= 0xFF
	os.WriteFile(segPath(dir, 2), data, 0o644)
	sizes := map[uint64]int64{}
	for n := uint64(1); n <= locs[len(locs)-1].Segment; n++ {
		sizes[n] = fileSize(t, segPath(dir, n))
	}
	w, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096}, nil)
	defer w.Close()
	got, err := tryReplay(w)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "segment 2") || !strings.Contains(err.Error(), fmt.Sprintf("at byte %d", victim.Offset-entryHeaderSize)) {
		t.Fatalf("replay error %v, want ErrCorrupt naming segment 2 and the byte position", err)
	}
	for i, r := range got {
		if r.loc != locs[i] || r.loc.Segment > 2 || r.loc == victim {
			t.Fatalf("replayed %+v past the corruption", r.loc)
		}
	}
	for n, s := range sizes {
		if fileSize(t, segPath(dir, n)) != s {
			t.Fatalf("segment %d changed size after a refused replay", n)
		}
	}
	// The WAL refuses to write after the failed recovery instead of appending after garbage.
	if _, err := appendWait(t, w, testBatch(1, 1)); err == nil {
		t.Fatal("append succeeded on a WAL whose replay failed")
	}
}

func TestWALCorruptLastSegmentFarFromEnd(t *testing.T) {
	// More than one commit group of intact entries after a bad one is not a torn tail.
	dir := t.TempDir()
	const size = 256 << 10
	locs := writeEntries(t, dir, 144, size, 0) // 36 MiB in segment 1
	data, _ := os.ReadFile(segPath(dir, 1))
	data[locs[1].Offset+100] ^= 1
	os.WriteFile(segPath(dir, 1), data, 0o644)
	w, _ := openTestWAL(t, WALOptions{Dir: dir}, nil)
	_, err := tryReplay(w)
	w.Close()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not a torn tail") {
		t.Fatalf("replay error %v, want ErrCorrupt", err)
	}
	if fileSize(t, segPath(dir, 1)) != int64(len(data)) {
		t.Fatal("segment truncated despite the error")
	}

	// A long tail with no intact entry at all (e.g. a huge torn entry, or zeros) is truncated.
	dir = t.TempDir()
	locs = writeEntries(t, dir, 2, 100, 0)
	f, _ := os.OpenFile(segPath(dir, 1), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(make([]byte, 33<<20))
	f.Close()
	w, _ = openTestWAL(t, WALOptions{Dir: dir}, nil)
	defer w.Close()
	checkReplay(t, replayAll(t, w), locs, 100)
	if fileSize(t, segPath(dir, 1)) != locs[1].Offset+100 {
		t.Fatal("zero tail not truncated")
	}
}

// crashCopy copies the files of dir's WAL, open and written to (as after SIGKILL), into a
// new directory and returns it with the number of segments copied.
func crashCopy(t *testing.T, dir string) (string, int) {
	t.Helper()
	crash := t.TempDir()
	if err := os.MkdirAll(filepath.Join(crash, "wal"), 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	segs := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".wal") {
			segs++
		}
		data, err := os.ReadFile(filepath.Join(dir, "wal", e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(crash, "wal", e.Name()), data, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return crash, segs
}

func TestWALCrashKeepsAcknowledged(t *testing.T) {
	// Copy the files of a WAL that was never closed (as after SIGKILL): everything whose
	// callback reported success must be there.
	dir := t.TempDir()
	w, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 64 << 10}, nil)
	defer w.Close()
	replayAll(t, w)
	const n = 300
	locs := make([]Location, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		w.Append(testBatch(i, 700), func(loc Location, err error) {
			if err != nil {
				t.Error(err)
			}
			locs[i] = loc
			wg.Done()
		})
	}
	wg.Wait()
	crash, _ := crashCopy(t, dir)
	w2, lb := openTestWAL(t, WALOptions{Dir: crash}, nil)
	defer w2.Close()
	checkReplay(t, replayAll(t, w2), locs, 700)
	if strings.Contains(lb.String(), "truncating") {
		t.Fatalf("clean crash copy needed truncation: %s", lb.String())
	}
}

func TestWALSegmentFilesAndRemoval(t *testing.T) {
	dir := t.TempDir()
	fs := &testFiles{}
	w, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096}, fs)
	defer w.Close()
	replayAll(t, w)
	dirSyncs := fs.dirSyncs.Load()
	var locs []Location
	for i := range 40 {
		locs = append(locs, mustAppend(t, w, testBatch(i, 900)))
	}
	last := locs[len(locs)-1].Segment
	names := func() []string {
		ents, _ := os.ReadDir(filepath.Join(dir, "wal"))
		var out []string
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".wal") { // not the FORMAT marker
				out = append(out, e.Name())
			}
		}
		return out
	}
	if got := names(); len(got) != int(last) || got[0] != "00000000000000000001.wal" {
		t.Fatalf("files %v, want %d segments", got, last)
	}
	for n := uint64(1); n < last; n++ {
		if s := fileSize(t, segPath(dir, n)); s > 4096 || s < 4096-(entryHeaderSize+900) {
			t.Fatalf("segment %d has %d bytes", n, s)
		}
	}
	if got := fs.dirSyncs.Load() - dirSyncs; got != int64(last-1) {
		t.Fatalf("%d directory fsyncs for %d new segments", got, last-1)
	}
	if err := w.RemoveSegmentsBefore(5); err != nil {
		t.Fatal(err)
	}
	if got := names(); len(got) != int(last)-4 || got[0] != segName(5) {
		t.Fatalf("after removal: %v", got)
	}
	if _, err := w.ReadAt(locs[0], nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadAt removed: %v", err)
	}
}

func TestWALReadDuringRemove(t *testing.T) {
	dir := t.TempDir()
	w, locs := filledWAL(t, dir, 8192, 100, 1000)
	defer w.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads, notFound atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for round := 0; round < 200 && !stop.Load(); round++ {
				for i, l := range locs {
					b, err := w.ReadAt(l, buf)
					reads.Add(1)
					if errors.Is(err, ErrNotFound) {
						notFound.Add(1)
						continue
					}
					if err != nil || !bytes.Equal(b, testBatch(i, 1000).Data) {
						t.Errorf("ReadAt %+v: %v", l, err)
						return
					}
					buf = b
				}
			}
		}()
	}
	for s := uint64(2); s <= locs[len(locs)-1].Segment; s++ {
		if err := w.RemoveSegmentsBefore(s); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Microsecond) // let readers interleave with removals
	}
	stop.Store(true)
	wg.Wait()
	if notFound.Load() == 0 || reads.Load() == notFound.Load() {
		t.Logf("reads %d, not found %d", reads.Load(), notFound.Load())
	}
}

func TestWALGroupCommitSharesFsyncs(t *testing.T) {
	for _, segBytes := range []int64{0, 64 << 10} {
		t.Run(fmt.Sprint("segBytes=", segBytes), func(t *testing.T) {
			dir := t.TempDir()
			fs := &testFiles{}
			release := make(chan struct{})
			var once sync.Once
			fs.syncHook = func() { once.Do(func() { <-release }) }
			w, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: segBytes}, fs)
			defer w.Close()
			replayAll(t, w)
			before := fs.syncs.Load()
			const writers, per = 8, 100
			var wg sync.WaitGroup
			locs := make([]Location, 1+writers*per)
			wg.Add(len(locs))
			cb := func(i int) func(Location, error) {
				return func(loc Location, err error) {
					if err != nil {
						t.Error(err)
					}
					locs[i] = loc
					wg.Done()
				}
			}
			w.Append(testBatch(0, 1024), cb(0)) // its fsync blocks until release
			waitFor(t, "first fsync", func() bool { return fs.syncs.Load() > before || w.pendingGroups() == 0 })
			var appenders sync.WaitGroup
			for g := range writers {
				appenders.Add(1)
				go func() {
					defer appenders.Done()
					for i := range per {
						id := 1 + g*per + i
						w.Append(testBatch(id, 1024), cb(id))
					}
				}()
			}
			appenders.Wait()
			close(release)
			wg.Wait()
			syncs := fs.syncs.Load() - before
			var segs uint64
			for _, l := range locs {
				segs = max(segs, l.Segment)
			}
			// The first fsync (blocked) covers the first entry. Meanwhile the writer keeps
			// writing groups into segment 1 (one later fsync covers them all), until a group
			// needs a new segment: it then waits for the blocked fsync, so everything else
			// queues up behind it in one more group. The last two groups are fsynced once per
			// segment they touch and share at most one segment; and every finished segment
			// gets one for its seal: at most 2*segs+3 fsyncs.
			if max := 2*int64(segs) + 3; syncs > max {
				t.Fatalf("%d fsyncs for %d appends (allowed %d)", syncs, len(locs), max)
			}
			t.Logf("%d appends, %d fsyncs, %d segments", len(locs), syncs, segs)
			w.Close()
			w2, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: segBytes}, nil)
			defer w2.Close()
			got := replayAll(t, w2)
			if len(got) != len(locs) {
				t.Fatalf("replayed %d of %d", len(got), len(locs))
			}
			seen := map[Location]bool{}
			for _, r := range got {
				seen[r.loc] = true
				if segBytes > 0 && r.loc.Offset+int64(r.loc.Size) > segBytes {
					t.Fatalf("entry %+v crosses the segment size", r.loc)
				}
			}
			for _, l := range locs {
				if !seen[l] {
					t.Fatalf("acknowledged %+v not replayed", l)
				}
			}
		})
	}
}

// pendingGroups is for tests: how many groups wait for the writer.
func (w *fileWAL) pendingGroups() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

func TestWALBackPressureAndReentrantAppend(t *testing.T) {
	dir := t.TempDir()
	w, _ := openTestWAL(t, WALOptions{Dir: dir, MaxGroupBytes: 8 << 10, MaxPendingBytes: 16 << 10}, nil)
	defer w.Close()
	replayAll(t, w)
	// Each callback appends the next entry: Append called from the callback goroutine while the
	// pending limit is hit must not deadlock.
	const n = 200
	done := make(chan struct{})
	var next func(i int) func(Location, error)
	next = func(i int) func(Location, error) {
		return func(_ Location, err error) {
			if err != nil {
				t.Error(err)
			}
			if i+1 == n {
				close(done)
				return
			}
			w.Append(testBatch(i+1, 3000), next(i+1))
		}
	}
	// Flood from other goroutines at the same time to keep the pending limit hit.
	var wg sync.WaitGroup
	var floodDone atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				w.Append(testBatch(7, 5000), func(_ Location, err error) {
					if err != nil {
						t.Error(err)
					}
					floodDone.Add(1)
				})
			}
		}()
	}
	w.Append(testBatch(0, 3000), next(0))
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("chained appends did not finish")
	}
	wg.Wait()
	waitFor(t, "flood callbacks", func() bool { return floodDone.Load() == 400 })
}

func TestWALWriteErrors(t *testing.T) {
	cases := []struct {
		name string
		set  func(fs *testFiles)
	}{
		{"ENOSPC on write", func(fs *testFiles) { fs.writeErr = syscall.ENOSPC }},
		{"EIO on fsync", func(fs *testFiles) { fs.syncErr = syscall.EIO }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fs := &testFiles{}
			w, _ := openTestWAL(t, WALOptions{Dir: dir}, fs)
			replayAll(t, w)
			a := mustAppend(t, w, testBatch(0, 5000))
			b := mustAppend(t, w, testBatch(1, 5000))
			good := segEnd(t, segPath(dir, 1))
			fs.set(tc.set)
			// Several appends fail together (they may share a group or not).
			var wg sync.WaitGroup
			for i := range 5 {
				wg.Add(1)
				w.Append(testBatch(100+i, 7000), func(_ Location, err error) {
					defer wg.Done()
					if err == nil || !(errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EIO)) {
						t.Errorf("failing append %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			if got := segEnd(t, segPath(dir, 1)); got != good {
				t.Fatalf("segment is %d bytes after failed writes, want %d", got, good)
			}
			for i, l := range []Location{a, b} {
				if d, err := w.ReadAt(l, nil); err != nil || !bytes.Equal(d, testBatch(i, 5000).Data) {
					t.Fatalf("acknowledged entry %d unreadable after failure: %v", i, err)
				}
			}
			fs.set(func(fs *testFiles) { fs.writeErr, fs.syncErr = nil, nil })
			waitFor(t, "failure reported", func() bool { return !w.isPoisoned() })
			c := mustAppend(t, w, testBatch(2, 5000))
			if c.Offset != good+entryHeaderSize {
				t.Fatalf("append after recovery at %+v, want offset %d", c, good+entryHeaderSize)
			}
			w.Close()
			w, lb := openTestWAL(t, WALOptions{Dir: dir}, nil)
			defer w.Close()
			checkReplay(t, replayAll(t, w), []Location{a, b, c}, 5000)
			if strings.Contains(lb.String(), "truncating") {
				t.Fatalf("reopen needed truncation: %s", lb.String())
			}
		})
	}

	t.Run("failed truncation stops writes", func(t *testing.T) {
		dir := t.TempDir()
		fs := &testFiles{}
		w, lb := openTestWAL(t, WALOptions{Dir: dir}, fs)
		replayAll(t, w)
		a := mustAppend(t, w, testBatch(0, 5000))
		fs.set(func(fs *testFiles) { fs.writeErr, fs.truncErr = syscall.EIO, syscall.EIO })
		if _, err := appendWait(t, w, testBatch(1, 5000)); !errors.Is(err, syscall.EIO) {
			t.Fatalf("append: %v", err)
		}
		fs.set(func(fs *testFiles) { fs.writeErr, fs.truncErr = nil, nil })
		if _, err := appendWait(t, w, testBatch(1, 5000)); err == nil || !strings.Contains(err.Error(), "truncating back failed") {
			t.Fatalf("append after failed truncation: %v, want the sticky error", err)
		}
		if !strings.Contains(lb.String(), "stopped accepting writes") {
			t.Fatalf("no error logged: %s", lb.String())
		}
		w.Close()
		// The half-written entry is a torn tail on reopen; the acknowledged entry survives.
		w, lb = openTestWAL(t, WALOptions{Dir: dir}, nil)
		defer w.Close()
		checkReplay(t, replayAll(t, w), []Location{a}, 5000)
		if !strings.Contains(lb.String(), "truncating torn WAL tail") {
			t.Fatalf("expected torn-tail truncation: %s", lb.String())
		}
	})
}

func TestWALAppendBeforeReplay(t *testing.T) {
	dir := t.TempDir()
	locs := writeEntries(t, dir, 3, 100, 0)
	f, _ := os.OpenFile(segPath(dir, 1), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("torn"))
	f.Close()
	w, _ := openTestWAL(t, WALOptions{Dir: dir}, nil)
	l := mustAppend(t, w, testBatch(3, 100))
	if l.Offset != locs[2].Offset+100+entryHeaderSize {
		t.Fatalf("append before replay at %+v, not after the intact entries", l)
	}
	if _, err := tryReplay(w); err == nil {
		t.Fatal("Replay after Append succeeded")
	}
	w.Close()
	w, _ = openTestWAL(t, WALOptions{Dir: dir}, nil)
	defer w.Close()
	checkReplay(t, replayAll(t, w), append(locs, l), 100)
}

func FuzzWALReplay(f *testing.F) {
	var valid []byte
	for i := range 3 {
		b := testBatch(i, 40)
		var h [entryHeaderSize]byte
		putEntryHeader(h[:], b, 0)
		valid = append(append(valid, h[:]...), b.Data...)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(append(append([]byte(nil), valid...), valid[:60]...))
	f.Add([]byte{})
	f.Add(make([]byte, 100))
	f.Add(append(append([]byte(nil), valid...), make([]byte, dioAlign-len(valid))...)) // padded
	f.Add(make([]byte, dioAlign))
	// A bad first entry with more than the torn-tail window of intact entries after it.
	var long []byte
	for i := range 40 {
		b := testBatch(i, 500)
		var h [entryHeaderSize]byte
		putEntryHeader(h[:], b, 0)
		long = append(append(long, h[:]...), b.Data...)
	}
	long[70] ^= 1
	f.Add(long)
	sealed := append(append([]byte(nil), valid...), sealEntry(int64(len(valid)))...)
	f.Add(sealed)
	// External entries (header and header CRC only) between ordinary ones, sealed, torn.
	var mixed []byte
	for i := range 6 {
		b := testBatch(i, 40+i)
		if i%2 == 1 {
			b.External = &testSyncer{}
		}
		e := make([]byte, entryLen(b))
		putEntry(e, b)
		mixed = append(mixed, e...)
	}
	f.Add(mixed)
	f.Add(mixed[:len(mixed)-2])
	f.Add(append(append([]byte(nil), mixed...), sealEntry(int64(len(mixed)))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The decoder on its own (fast, no files): every entry it yields checks.
		var b Batch
		var buf []byte
		end := int64(0)
		sc, err := scanSegment(bytes.NewReader(data), int64(len(data)), 1, true, &b, &buf, func(b *Batch, loc Location) error {
			end = checkFuzzEntry(t, data, b, loc, end)
			return nil
		})
		good, bad := sc.good, sc.bad
		if sc.sealed {
			end += entryHeaderSize // the seal is no batch
		}
		// A clean end is the end of the data, or zeros from there to the end of a file of
		// whole blocks (a direct write's padding, or the region prepared ahead).
		n := int64(len(data))
		cleanEnd := good == n || n%dioAlign == 0 && allZero(data[good:])
		if err != nil || good != end || (bad == nil) != cleanEnd {
			t.Fatalf("scan: good %d, last entry end %d, len %d, bad %v, err %v", good, end, len(data), bad, err)
		}
		// The recovery rules, decided without files: a bad entry in the last segment is cut
		// only within the in-flight window or with nothing intact after it; never after a
		// clean shutdown; in an earlier segment never.
		const group = 4096
		jw := &fileWAL{opts: (&WALOptions{Dir: "x", MaxGroupBytes: group}).withDefaults(), dir: "x"}
		window := int64(group) + max(int64(group), sc.badLen+entryHeaderSize) + dioAlign
		intactAfter, _ := hasIntactEntry(bytes.NewReader(data), good+1, n)
		jerr := jw.judgeSegment(bytes.NewReader(data), 1, n, true, sc, false, cleanMarker{})
		if wantCorrupt := bad != nil && n-good > window && intactAfter; (jerr != nil) != wantCorrupt {
			t.Fatalf("last segment: bad %v at %d of %d, intact after %v: judged %v", bad, good, n, intactAfter, jerr)
		}
		if jerr := jw.judgeSegment(bytes.NewReader(data), 1, n, true, sc, true, cleanMarker{Seg: 1, Size: good}); (jerr != nil) != (bad != nil) {
			t.Fatalf("after a clean shutdown: bad %v, judged %v", bad, jerr)
		}
		sc2, _ := scanSegment(bytes.NewReader(data), n, 1, false, &b, &buf, nil)
		if jerr := jw.judgeSegment(bytes.NewReader(data), 1, n, false, sc2, false, cleanMarker{}); (jerr != nil) != (sc2.bad != nil || !sc2.sealed) {
			t.Fatalf("earlier segment: bad %v sealed %v, judged %v", sc2.bad, sc2.sealed, jerr)
		}
		if fuzzing() {
			return // the file path below crawls under the fuzzer; the seeds run it in go test
		}
		// The whole WAL over the bytes as its only segment: same entries, tail truncated.
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "wal"), 0o755)
		path := segPath(dir, 1)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		// Small commit groups: the torn-tail window is 12 KiB (more for a large torn entry).
		w, _ := openTestWAL(t, WALOptions{Dir: dir, MaxGroupBytes: group}, nil)
		defer w.Close()
		end2 := int64(0)
		err = w.Replay(func(b *Batch, loc Location) error {
			end2 = checkFuzzEntry(t, data, b, loc, end2)
			return nil
		})
		if sc.sealed {
			end2 += entryHeaderSize
		}
		// The rule: bytes after a bad entry are cut only if they fit in the window or hold
		// no intact entry; otherwise replay refuses and changes nothing.
		if bad != nil && n-good > window && intactAfter {
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("at byte %d", good)) {
				t.Fatalf("replay of corruption %d bytes before the end: %v, want ErrCorrupt at byte %d", n-good, err, good)
			}
			if fileSize(t, path) != n {
				t.Fatal("segment changed after a refused replay")
			}
			return
		}
		if err != nil {
			t.Fatalf("replay of a small single segment failed: %v", err)
		}
		if got := fileSize(t, path); got != end || end2 != end {
			t.Fatalf("segment %d bytes after replay, replay ended at %d, scan at %d", got, end2, end)
		}
	})
}

// fuzzing reports whether the test binary runs with -test.fuzz (file-backed checks are kept
// to plain go test runs of the seed corpus: under the coverage-instrumented fuzzer they run at
// a few executions per second).
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// checkFuzzEntry checks an entry replay yielded from data, right after prevEnd, and returns
// where it ends.
func checkFuzzEntry(t *testing.T, data []byte, b *Batch, loc Location, prevEnd int64) int64 {
	t.Helper()
	start, end := loc.Offset-entryHeaderSize, loc.Offset+int64(loc.Size)
	if b.ExternalLen > 0 {
		end = loc.Offset + externalCRCSize // the batch bytes are elsewhere
	}
	if start != prevEnd || end > int64(len(data)) {
		t.Fatalf("entry at %+v, previous ended at %d, input %d bytes", loc, prevEnd, len(data))
	}
	h := data[start:loc.Offset]
	p := data[loc.Offset:end]
	if !checkEntry(h, p) {
		t.Fatalf("yielded an entry whose CRC does not check at %+v", loc)
	}
	if ext := h[7] == entryFlagExternal; ext != (b.ExternalLen > 0) || ext && (b.Data != nil || int(loc.Size) != b.ExternalLen) || !ext && !bytes.Equal(b.Data, p) {
		t.Fatalf("yielded entry at %+v differs from the input (external %v, ExternalLen %d)", loc, ext, b.ExternalLen)
	}
	var m Batch
	decodeEntryHeader(h, &m)
	m.Data = b.Data
	if sameBatch(&m, b) != nil || m.ExternalLen != b.ExternalLen || m.extCRC != b.extCRC {
		t.Fatal("yielded metadata differs from the header")
	}
	return end
}

func TestWALFsyncErrorFailsEverythingUnsynced(t *testing.T) {
	// While a failing fsync is in flight the writer writes more groups; all of them fail and
	// the segment is cut back to the last good fsync.
	dir := t.TempDir()
	fs := &testFiles{}
	w, _ := openTestWAL(t, WALOptions{Dir: dir}, fs)
	replayAll(t, w)
	a := mustAppend(t, w, testBatch(0, 3000))
	good := segEnd(t, segPath(dir, 1))
	release := make(chan struct{})
	var once sync.Once
	fs.set(func(fs *testFiles) {
		fs.syncErr = syscall.EIO
		fs.syncHook = func() { once.Do(func() { <-release }) }
	})
	results := make(chan error, 10)
	w.Append(testBatch(11, 3000), func(_ Location, err error) { results <- err })
	// Wait until the first group is written (its fsync is blocked), then queue more.
	waitFor(t, "first group written", func() bool { return segEnd(t, segPath(dir, 1)) > good })
	for i := 12; i < 16; i++ {
		w.Append(testBatch(i, 3000), func(_ Location, err error) { results <- err })
	}
	waitFor(t, "later groups written", func() bool { return segEnd(t, segPath(dir, 1)) >= good+5*(entryHeaderSize+3000) })
	fs.set(func(fs *testFiles) { fs.syncHook = nil })
	close(release)
	for i := 1; i < 6; i++ {
		select {
		case err := <-results:
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("append %d: %v, want EIO", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("callbacks missing")
		}
	}
	if got := segEnd(t, segPath(dir, 1)); got != good {
		t.Fatalf("segment %d bytes after failed fsync, want %d", got, good)
	}
	fs.set(func(fs *testFiles) { fs.syncErr = nil })
	b := mustAppend(t, w, testBatch(1, 3000))
	c := mustAppend(t, w, testBatch(7, 2000))
	// Written where failed entries were: reads must see the new entries, not the failed
	// ones (direct mode keeps written groups in memory for reads).
	for _, e := range []struct {
		loc  Location
		want []byte
	}{{b, testBatch(1, 3000).Data}, {c, testBatch(7, 2000).Data}} {
		if got, err := w.ReadAt(e.loc, nil); err != nil || !bytes.Equal(got, e.want) {
			t.Fatalf("entry written after the failure at %+v reads back wrong: %v", e.loc, err)
		}
	}
	w.Close()
	w, _ = openTestWAL(t, WALOptions{Dir: dir}, nil)
	defer w.Close()
	got := replayAll(t, w)
	if len(got) != 3 || got[2].loc != c {
		t.Fatalf("replayed %d entries, want 3 ending at %+v", len(got), c)
	}
	checkReplay(t, got[:2], []Location{a, b}, 3000)
}

// A segment older than SegmentMaxAge is rotated when the next entry arrives (a 1 ns age:
// every entry after the first of a segment starts a new one), so drained segments can be
// deleted under a slow load; replay reads every entry back across the rotations.
func TestWALRotatesByAge(t *testing.T) {
	dir := t.TempDir()
	w, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentMaxAge: time.Nanosecond}, nil)
	replayAll(t, w)
	var locs []Location
	for i := range 3 {
		locs = append(locs, mustAppend(t, w, testBatch(i, 100)))
	}
	for i, l := range locs {
		if l.Segment != uint64(i+1) {
			t.Fatalf("entry %d in segment %d, want %d (one segment per entry)", i, l.Segment, i+1)
		}
	}
	if err := w.RemoveSegmentsBefore(3); err != nil {
		t.Fatal(err)
	}
	for n := uint64(1); n <= 3; n++ {
		_, err := os.Stat(segPath(dir, n))
		if exists := err == nil; exists != (n == 3) {
			t.Fatalf("segment %d exists=%v after RemoveSegmentsBefore(3)", n, exists)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentMaxAge: time.Hour}, nil)
	got := replayAll(t, w2)
	if len(got) != 1 || got[0].loc != locs[2] {
		t.Fatalf("replayed %+v, want only the entry at %+v", got, locs[2])
	}
	// Within the age, entries share the segment.
	l := mustAppend(t, w2, testBatch(3, 100))
	if l.Segment != 3 {
		t.Fatalf("entry within the age went to segment %d, want 3", l.Segment)
	}
	w2.Close()
}
