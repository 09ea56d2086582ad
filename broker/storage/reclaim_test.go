package storage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestRemovedSegmentsAreReclaimed: RemoveSegmentsBefore takes the segments out of the WAL at
// once (renamed, so neither this WAL nor the next OpenWAL sees them) and their files are gone
// once the background reclaim finished, including a file larger than one reclaim step.
func TestRemovedSegmentsAreReclaimed(t *testing.T) {
	dir := t.TempDir()
	w, locs := filledWAL(t, dir, 4096, 20, 900)
	defer w.Close()
	last := locs[len(locs)-1].Segment
	if last < 4 {
		t.Fatalf("only %d segments", last)
	}
	// Segment 1 grows past a reclaim step (its data read back no more) to exercise the steps.
	if err := os.Truncate(segPath(dir, 1), 3*reclaimStep+123); err != nil {
		t.Fatal(err)
	}
	if err := w.RemoveSegmentsBefore(last); err != nil {
		t.Fatal(err)
	}
	for n := uint64(1); n < last; n++ {
		if _, err := os.Stat(segPath(dir, n)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("segment %d still listed after removal: %v", n, err)
		}
	}
	waitReclaimed()
	left, _ := filepath.Glob(filepath.Join(dir, "wal", "*"+reclaimSuffix))
	if len(left) != 0 {
		t.Fatalf("files left after reclaiming: %v", left)
	}
	if _, err := w.ReadAt(locs[len(locs)-1], nil); err != nil {
		t.Fatalf("the current segment: %v", err)
	}
}

// TestOpenWALReclaimsLeftovers: a removed segment whose reclaim a crash interrupted is not
// replayed (its number is not a gap either) and is deleted by the next OpenWAL.
func TestOpenWALReclaimsLeftovers(t *testing.T) {
	dir := t.TempDir()
	w, locs := filledWAL(t, dir, 4096, 12, 900)
	w.Close()
	// Segment 1 "removed" before the crash: renamed, partly truncated.
	p := segPath(dir, 1)
	if err := os.Rename(p, p+reclaimSuffix); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p+reclaimSuffix, 100); err != nil {
		t.Fatal(err)
	}
	w2, lb := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096}, nil)
	defer w2.Close()
	got := replayAll(t, w2)
	var want []Location
	for _, l := range locs {
		if l.Segment > 1 {
			want = append(want, l)
		}
	}
	if len(got) != len(want) || got[0].loc != want[0] {
		t.Fatalf("replayed %d batches from %+v, want %d from %+v (log: %s)", len(got), got[0].loc, len(want), want[0], lb.String())
	}
	waitReclaimed()
	if _, err := os.Stat(p + reclaimSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("leftover not reclaimed: %v", err)
	}
}

// TestRemoveStopsAtAFailedRename: a segment that cannot be taken away stops the removal
// there, so the WAL left is still a suffix (readable, and replayed after a restart without a
// gap), and the error is reported.
func TestRemoveStopsAtAFailedRename(t *testing.T) {
	dir := t.TempDir()
	w, locs := filledWAL(t, dir, 4096, 20, 900)
	last := locs[len(locs)-1].Segment
	if last < 5 {
		t.Fatalf("only %d segments", last)
	}
	// A non-empty directory where segment 2's removed name goes: the rename fails.
	block := segPath(dir, 2) + reclaimSuffix
	if err := os.MkdirAll(filepath.Join(block, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.RemoveSegmentsBefore(5); err == nil {
		t.Fatal("removal past a segment that could not be renamed reported no error")
	}
	if _, err := os.Stat(segPath(dir, 1)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("segment 1: %v", err)
	}
	for _, l := range locs {
		if l.Segment < 2 {
			continue
		}
		if _, err := w.ReadAt(l, nil); err != nil {
			t.Fatalf("%+v after the failed removal: %v", l, err)
		}
	}
	w.Close()
	waitReclaimed()
	if err := os.RemoveAll(block); err != nil {
		t.Fatal(err)
	}
	w2, lb := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096}, nil)
	defer w2.Close()
	got := replayAll(t, w2)
	if len(got) == 0 || got[0].loc.Segment != 2 {
		t.Fatalf("replayed %d batches, first %+v; want from segment 2 (log: %s)", len(got), got, lb.String())
	}
}

// filledWAL opens a WAL in dir with segBytes segments and appends n batches of size bytes.
func filledWAL(t *testing.T, dir string, segBytes int64, n, size int) (*fileWAL, []Location) {
	t.Helper()
	w, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: segBytes}, nil)
	replayAll(t, w)
	locs := make([]Location, 0, n)
	for i := range n {
		locs = append(locs, mustAppend(t, w, testBatch(i, size)))
	}
	return w, locs
}
