package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A missing middle segment (finding 3 of issue 18) is corruption, not a quiet gap.
func TestWALMissingMiddleSegment(t *testing.T) {
	dir := t.TempDir()
	locs := writeEntries(t, dir, 30, 500, 4096)
	if locs[len(locs)-1].Segment < 4 {
		t.Fatalf("unexpected layout: %+v", locs)
	}
	os.Remove(segPath(dir, 2))
	w, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096}, nil)
	defer w.Close()
	_, err := tryReplay(w)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != segPath(dir, 2) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("replay: %v, want a CorruptError naming the missing segment 2", err)
	}
}

// Zeros at the end of a rotated segment (finding 5 of issue 18) are not padding: a rotated
// segment must end with its seal, so a zeroed last batch (with or without the seal) is
// corruption, reported at the first zero byte; with RecoverDamaged the range is moved aside.
func TestWALZeroRunInRotatedSegment(t *testing.T) {
	for _, keepSeal := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepSeal=%v", keepSeal), func(t *testing.T) {
			dir := t.TempDir()
			const size = 300
			locs := writeEntries(t, dir, 30, size, 4096)
			var victim Location
			for _, l := range locs {
				if l.Segment == 1 {
					victim = l // segment 1's last batch
				}
			}
			data, _ := os.ReadFile(segPath(dir, 1))
			from := victim.Offset - entryHeaderSize
			to := int64(len(data))
			if keepSeal {
				to = victim.Offset + size
			}
			clear(data[from:to])
			if to-from >= dioAlign || int64(len(data))%dioAlign != 0 && !keepSeal {
				t.Logf("segment 1 is %d bytes; zeroed [%d, %d)", len(data), from, to)
			}
			os.WriteFile(segPath(dir, 1), data, 0o644)
			w, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096}, nil)
			_, err := tryReplay(w)
			w.Close()
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != segPath(dir, 1) || ce.Offset != from {
				t.Fatalf("replay: %v, want a CorruptError for segment 1 at byte %d", err, from)
			}

			w2, lb := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096, RecoverDamaged: true}, nil)
			got := replayAll(t, w2)
			if len(got) != len(locs)-1 {
				t.Fatalf("recovered %d batches, want %d (all but the zeroed one)", len(got), len(locs)-1)
			}
			l, err := appendWait(t, w2, testBatch(99, 10))
			if err != nil {
				t.Fatal(err)
			}
			w2.Close()
			if !strings.Contains(lb.String(), "level=ERROR") || !strings.Contains(lb.String(), fmt.Sprintf("from_byte=%d", from)) {
				t.Fatalf("recovery not logged at ERROR: %s", lb.String())
			}
			moved, _ := filepath.Glob(filepath.Join(dir, DamagedDirName, "wal", "*.damaged"))
			if len(moved) != 1 {
				t.Fatalf("moved aside: %v", moved)
			}
			if m, _ := os.ReadFile(moved[0]); !bytes.Equal(m, data[from:]) {
				t.Fatal("moved bytes differ from the damaged range")
			}
			// Recovery left a consistent WAL: the next start needs no flag.
			w3, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096}, nil)
			defer w3.Close()
			if got := replayAll(t, w3); len(got) != len(locs) || got[len(got)-1].loc != l {
				t.Fatalf("after recovery: %d batches, last %+v, want %d ending at %+v", len(got), got[len(got)-1].loc, len(locs), l)
			}
		})
	}
}

// After a clean shutdown the WAL ends exactly where its marker says (finding 4 of issue 18:
// a bad entry in the last segment used to be cut as torn even though the broker had been
// stopped cleanly and everything was fsynced).
func TestWALCleanShutdownMarker(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWAL(WALOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	fw := w.(*fileWAL)
	replayAll(t, fw)
	var locs []Location
	for i := range 5 {
		locs = append(locs, mustAppend(t, fw, testBatch(i, 200)))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "wal", "clean")); err != nil {
		t.Fatalf("no clean-shutdown marker: %v", err)
	}
	data, _ := os.ReadFile(segPath(dir, 1))
	last := locs[4]
	data[last.Offset+3] ^= 0xFF // the last batch: a torn tail after a crash
	os.WriteFile(segPath(dir, 1), data, 0o644)
	w, _ = OpenWAL(WALOptions{Dir: dir})
	_, err = tryReplay(w.(*fileWAL))
	w.Close()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("at byte %d", last.Offset-entryHeaderSize)) {
		t.Fatalf("replay after a clean shutdown: %v, want ErrCorrupt at byte %d", err, last.Offset-entryHeaderSize)
	}
	if got, _ := os.ReadFile(segPath(dir, 1)); !bytes.Equal(got, data) {
		t.Fatal("segment changed although replay refused")
	}
	// The same damage without the marker (a crash) is a torn tail.
	os.Remove(filepath.Join(dir, "wal", "clean"))
	w, _ = OpenWAL(WALOptions{Dir: dir})
	defer w.Close()
	if got := replayAll(t, w.(*fileWAL)); len(got) != 4 {
		t.Fatalf("replayed %d, want 4", len(got))
	}
}

// The torn-tail window is what the writer can have in flight (two commit groups), not 32 MiB
// (finding 4 of issue 18).
func TestWALTornWindowIsTwoGroups(t *testing.T) {
	dir := t.TempDir()
	const size = 1000
	w, _ := openTestWAL(t, WALOptions{Dir: dir, MaxGroupBytes: 16 << 10}, nil)
	replayAll(t, w)
	var locs []Location
	for i := range 100 { // ~100 KB: more than two 16 KiB groups
		locs = append(locs, mustAppend(t, w, testBatch(i, size)))
	}
	w.Close()
	data, _ := os.ReadFile(segPath(dir, 1))
	data[locs[50].Offset+5] ^= 1 // ~50 KB before the end
	os.WriteFile(segPath(dir, 1), data, 0o644)
	w, _ = openTestWAL(t, WALOptions{Dir: dir, MaxGroupBytes: 16 << 10}, nil)
	defer w.Close()
	if _, err := tryReplay(w); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not a torn tail") {
		t.Fatalf("replay: %v, want ErrCorrupt", err)
	}
}

func (w *fileWAL) isPoisoned() bool {
	w.fileMu.Lock()
	defer w.fileMu.Unlock()
	return w.poisoned
}

// An entry appended after a failed one, before that failure was reported, fails too (so a
// partition can give the offsets back without leaving a hole); once every failure callback
// has been called, appends succeed again.
func TestWALAppendBehindUnreportedFailureFails(t *testing.T) {
	dir := t.TempDir()
	fs := &testFiles{}
	w, _ := openTestWAL(t, WALOptions{Dir: dir}, fs)
	defer w.Close()
	replayAll(t, w)
	a := mustAppend(t, w, testBatch(0, 100))
	fs.set(func(fs *testFiles) { fs.writeErr = syscall.ENOSPC })
	inCallback, release := make(chan error, 1), make(chan struct{})
	w.Append(testBatch(1, 100), func(_ Location, err error) {
		inCallback <- err
		<-release
	})
	if err := <-inCallback; !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("first append: %v, want ENOSPC", err)
	}
	// Space is back, but the failure is still being reported: this one fails as well.
	fs.set(func(fs *testFiles) { fs.writeErr = nil })
	behind := make(chan error, 1)
	w.Append(testBatch(2, 100), func(_ Location, err error) { behind <- err })
	// The writer fails it while the first failure is still being reported (which extends
	// the failure: a second generation).
	waitFor(t, "the append behind to be handled", func() bool {
		w.fileMu.Lock()
		defer w.fileMu.Unlock()
		return w.failGen >= 2
	})
	close(release)
	if err := <-behind; !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append behind an unreported failure: %v, want it failed (ENOSPC)", err)
	}
	waitFor(t, "failure reported", func() bool { return !w.isPoisoned() })
	c := mustAppend(t, w, testBatch(3, 100))
	if c.Offset != a.Offset+100+entryHeaderSize {
		t.Fatalf("append after the failure at %+v, want right after %+v", c, a)
	}
}

// writeLegacyWAL writes entries and turns the WAL into one written before segments were
// sealed: no format marker, and every rotated segment ends after its last entry (odd
// segments) or in the zero padding of a direct write (even ones) instead of its seal.
func writeLegacyWAL(t *testing.T, dir string, n, size int) []Location {
	t.Helper()
	locs := writeEntries(t, dir, n, size, 4096)
	if err := os.Remove(filepath.Join(dir, "wal", "FORMAT")); err != nil {
		t.Fatalf("the WAL has no format marker: %v", err)
	}
	last := locs[len(locs)-1].Segment
	for seg := uint64(1); seg < last; seg++ {
		var end int64
		for _, l := range locs {
			if l.Segment == seg {
				end = l.Offset + int64(size)
			}
		}
		os.Truncate(segPath(dir, seg), end) // the seal goes
		if seg%2 == 0 && end%dioAlign != 0 {
			os.Truncate(segPath(dir, seg), alignUp64(end)) // zeros up to the block
		}
	}
	return locs
}

// A WAL written before segments were sealed (no format marker) is upgraded without a flag:
// its rotated segments, intact but unsealed, are sealed with a WARN each and every batch
// replays; the marker is written, so the next start refuses an unsealed rotated segment.
func TestWALUnsealedOldSegmentsUpgrade(t *testing.T) {
	dir := t.TempDir()
	const size = 300
	locs := writeLegacyWAL(t, dir, 30, size)
	last := locs[len(locs)-1].Segment
	w, lb := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096}, nil)
	checkReplay(t, replayAll(t, w), locs, size)
	l, err := appendWait(t, w, testBatch(len(locs), size))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	logs := lb.String()
	if strings.Contains(logs, "level=ERROR") || strings.Count(logs, "level=WARN msg=\"storage: upgrading a WAL segment") != int(last-1) {
		t.Fatalf("want one WARN per upgraded segment (%d) and no ERROR:\n%s", last-1, logs)
	}
	if !strings.Contains(logs, "padding_bytes=") || !strings.Contains(logs, "path="+segPath(dir, 1)) {
		t.Fatalf("upgrade not logged with path and padding: %s", logs)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "wal", "FORMAT")); err != nil || string(b) != walFormatLine {
		t.Fatalf("format marker after the upgrade: %q, %v", b, err)
	}
	if moved, _ := filepath.Glob(filepath.Join(dir, DamagedDirName, "*", "*")); len(moved) != 0 {
		t.Fatalf("an upgrade moved files aside: %v", moved)
	}
	w, _ = openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096}, nil)
	checkReplay(t, replayAll(t, w), append(locs, l), size)
	w.Close()

	// From now on the strict rules apply: an unsealed rotated segment is corruption.
	var end1 int64
	for _, l := range locs {
		if l.Segment == 1 {
			end1 = l.Offset + size
		}
	}
	os.Truncate(segPath(dir, 1), end1)
	w, _ = openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096}, nil)
	defer w.Close()
	_, err = tryReplay(w)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != segPath(dir, 1) || !strings.Contains(err.Error(), "without its seal") {
		t.Fatalf("replay of an unsealed segment after the upgrade: %v, want a CorruptError for segment 1", err)
	}
}

// Only intact unsealed segments are upgraded: a bad entry in a rotated segment of a legacy
// WAL is refused as before, and the WAL stays legacy (no marker) for the next attempt.
func TestWALLegacyDamagedSegmentRefused(t *testing.T) {
	dir := t.TempDir()
	const size = 300
	locs := writeLegacyWAL(t, dir, 30, size)
	var victim Location // segment 2's first batch: intact entries follow it
	for _, l := range locs {
		if l.Segment == 2 {
			victim = l
			break
		}
	}
	data, _ := os.ReadFile(segPath(dir, 2))
	data[victim.Offset+size/2] ^= 0xff
	os.WriteFile(segPath(dir, 2), data, 0o644)
	seg1, _ := os.ReadFile(segPath(dir, 1))
	w, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096}, nil)
	_, err := tryReplay(w)
	w.Close()
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != segPath(dir, 2) || ce.Offset != victim.Offset-entryHeaderSize || !strings.Contains(err.Error(), "CRC mismatch") {
		t.Fatalf("replay: %v, want a CorruptError for segment 2 at byte %d", err, victim.Offset-entryHeaderSize)
	}
	if _, err := os.Stat(filepath.Join(dir, "wal", "FORMAT")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused legacy WAL got the format marker: %v", err)
	}
	// A refused start changes nothing: not the damaged segment, nor the intact one before it.
	if after, _ := os.ReadFile(segPath(dir, 2)); !bytes.Equal(after, data) {
		t.Fatal("the refused segment was changed")
	}
	if after, _ := os.ReadFile(segPath(dir, 1)); !bytes.Equal(after, seg1) {
		t.Fatal("segment 1 was sealed although the start was refused")
	}
}

// The clean-shutdown marker is read from disk: anything but an intact marker is "no marker",
// and an accepted one is exactly what encoding it gives.
func FuzzCleanMarker(f *testing.F) {
	f.Add(encodeCleanMarker(cleanMarker{Seg: 3, Size: 4096}))
	f.Add([]byte("KLCS"))
	f.Add(make([]byte, cleanMarkerSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := decodeCleanMarker(b)
		if ok && !bytes.Equal(encodeCleanMarker(m), b) {
			t.Fatalf("accepted %x, which encodes as %x", b, encodeCleanMarker(m))
		}
	})
}
