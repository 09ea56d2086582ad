package storage

import (
	"os"
	"strings"
	"sync"
	"testing"
)

// openPrealloc opens a WAL with preallocation in dir, skipping where the file system refuses
// direct I/O (only direct writes prepare ahead).
func openPrealloc(t *testing.T, opts WALOptions) *fileWAL {
	t.Helper()
	w, _ := openTestWAL(t, opts, nil)
	replayAll(t, w)
	mustAppend(t, w, testBatch(0, 100)) // the first write decides direct I/O
	if !w.direct.Load() {
		w.Close()
		t.Skip("direct I/O refused here: the WAL does not preallocate")
	}
	return w
}

// A small commit that grows the segment writes zeros past itself, so the next ones
// overwrite them; a restart cuts the zeros off (the replay reads them as padding, without a
// torn-tail warning) and everything written is read back.
func TestWALPreallocPreparesAhead(t *testing.T) {
	dir := t.TempDir()
	const ahead = 64 << 10
	w := openPrealloc(t, WALOptions{Dir: dir, PreallocBytes: ahead})
	locs := []Location{{Segment: 1, Offset: entryHeaderSize, Size: 100}}
	path := segPath(dir, 1)
	grew := 0
	for i := 1; i < 200; i++ {
		before := fileSize(t, path)
		locs = append(locs, mustAppend(t, w, testBatch(i, 1000+i)))
		end := locs[i].Offset + int64(locs[i].Size)
		size := fileSize(t, path)
		if size != before {
			grew++
			if size < alignUp64(end)+ahead {
				t.Fatalf("entry %d ends at %d and grew the segment to %d: not %d past its block", i, end, size, ahead)
			}
		}
		if size < alignUp64(end) {
			t.Fatalf("entry %d ends at %d past the file's %d bytes", i, end, size)
		}
	}
	// 199 entries of ~1 KiB in 64 KiB steps: the file grew a few times, not at every commit.
	if grew < 2 || grew > 5 {
		t.Fatalf("the segment grew at %d of 199 commits, want 2-5 (one per %d bytes)", grew, ahead)
	}
	end := locs[len(locs)-1].Offset + int64(locs[len(locs)-1].Size)
	w.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !allZero(data[end:]) {
		t.Fatalf("bytes after the last entry (%d of %d) are not all zeros", end, len(data))
	}
	w2, lb := openTestWAL(t, WALOptions{Dir: dir}, nil)
	defer w2.Close()
	got := replayAll(t, w2)
	if len(got) != len(locs) {
		t.Fatalf("replayed %d entries, want %d", len(got), len(locs))
	}
	for i := range got {
		size := 100
		if i > 0 {
			size = 1000 + i
		}
		if got[i].loc != locs[i] {
			t.Fatalf("entry %d at %+v, want %+v", i, got[i].loc, locs[i])
		}
		if err := sameBatch(&got[i].b, testBatch(i, size)); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	if strings.Contains(lb.String(), "truncating") {
		t.Fatalf("the prepared zeros were taken for a torn tail: %s", lb.String())
	}
	if got := fileSize(t, path); got != end {
		t.Fatalf("segment is %d bytes after the restart, want it cut at its last entry (%d)", got, end)
	}
}

// Many writers, small segments and commits under and over a quarter of the step, so segments
// grow both ways and rotate with zeros after their seals: a copy of the files taken without
// closing (a crash) replays every acknowledged entry intact, so no zero ever landed on data.
func TestWALPreallocNeverZeroesData(t *testing.T) {
	dir := t.TempDir()
	w := openPrealloc(t, WALOptions{Dir: dir, SegmentBytes: 512 << 10, PreallocBytes: 16 << 10})
	defer w.Close()
	const writers, each = 4, 150
	var mu sync.Mutex
	acked := map[Location]int{{Segment: 1, Offset: entryHeaderSize, Size: 100}: -1}
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				i := 1 + g*each + k
				loc, err := appendWait(t, w, testBatch(i, 200+(i*7919)%9000))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[loc] = i
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	crash, segs := crashCopy(t, dir)
	if segs < 3 {
		t.Fatalf("%d segments: the test wants rotations", segs)
	}
	w2, lb := openTestWAL(t, WALOptions{Dir: crash}, nil)
	defer w2.Close()
	got := replayAll(t, w2)
	if len(got) != len(acked) {
		t.Fatalf("replayed %d entries, want the %d acknowledged", len(got), len(acked))
	}
	for _, r := range got {
		i, ok := acked[r.loc]
		if !ok {
			t.Fatalf("replayed an entry at %+v that was not acknowledged there", r.loc)
		}
		size := 100
		if i < 0 {
			i = 0
		} else {
			size = 200 + (i*7919)%9000
		}
		if err := sameBatch(&r.b, testBatch(i, size)); err != nil {
			t.Fatalf("entry %d at %+v: %v", i, r.loc, err)
		}
	}
	if strings.Contains(lb.String(), "truncating") {
		t.Fatalf("a crash copy of a preallocated WAL needed a torn-tail cut: %s", lb.String())
	}
}

// A commit of a quarter of PreallocBytes or more writes no zeros past itself: large commits
// already carry their metadata in few fsyncs.
func TestWALPreallocNotForLargeCommits(t *testing.T) {
	dir := t.TempDir()
	const ahead = 64 << 10
	w := openPrealloc(t, WALOptions{Dir: dir, PreallocBytes: ahead})
	defer w.Close()
	path := segPath(dir, 1)
	for i := 1; i < 10; i++ {
		loc := mustAppend(t, w, testBatch(i, ahead/4+i))
		if end, size := loc.Offset+int64(loc.Size), fileSize(t, path); size != max(alignUp64(end), ahead+dioAlign) {
			t.Fatalf("a %d-byte commit ending at %d left the segment %d bytes long", ahead/4+i, end, size)
		}
	}
}
