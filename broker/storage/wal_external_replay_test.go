package storage

// Replaying external (single-copy) entries: torn tails, the format marker, and the cut the
// replay asks for (ErrCutReplay).

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeMixed appends ordinary (even i) and external (odd i) batches to a fresh WAL in dir
// and closes it (without the clean-shutdown marker, as a crash would).
func writeMixed(t *testing.T, dir string, n int, segBytes int64) ([]*Batch, []Location) {
	t.Helper()
	w, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: segBytes}, nil)
	replayAll(t, w)
	s := &testSyncer{}
	var want []*Batch
	var locs []Location
	for i := range n {
		b := testBatch(i, 300)
		if i%2 == 1 {
			b = extBatch(i, 300, s)
		}
		want = append(want, b)
		locs = append(locs, mustAppend(t, w, b))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return want, locs
}

func checkMixedReplay(t *testing.T, got []replayed, want []*Batch, locs []Location) {
	t.Helper()
	if len(got) != len(locs) {
		t.Fatalf("replayed %d entries, want %d", len(got), len(locs))
	}
	for i := range got {
		if got[i].loc != locs[i] {
			t.Fatalf("entry %d at %+v, want %+v", i, got[i].loc, locs[i])
		}
		if want[i].External != nil {
			checkExternalReplayed(t, &got[i].b, want[i])
		} else if err := sameBatch(&got[i].b, want[i]); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
}

// A torn external entry at the end of the last segment (cut anywhere in its 60 bytes, or with
// a wrong header CRC) is cut as a torn tail; the same damage in a sealed segment is corruption.
func TestWALExternalTornTail(t *testing.T) {
	src := t.TempDir()
	const n = 6 // the last one is external
	want, locs := writeMixed(t, src, n, 0)
	last := locs[n-1]
	start, end := last.Offset-entryHeaderSize, last.Offset+externalCRCSize
	full, err := os.ReadFile(segPath(src, 1))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(full)) < end || !allZero(full[end:]) {
		t.Fatalf("segment is %d bytes, want %d (or zero-padded)", len(full), end)
	}
	full = full[:end]
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "wal"), 0o755)
	damaged := func(name string, data []byte, reason string) {
		t.Helper()
		if err := os.WriteFile(segPath(dir, 1), data, 0o644); err != nil {
			t.Fatal(err)
		}
		w, lb := openTestWAL(t, WALOptions{Dir: dir}, nil)
		defer w.Close()
		checkMixedReplay(t, replayAll(t, w), want[:n-1], locs[:n-1])
		if got := fileSize(t, segPath(dir, 1)); got != start {
			t.Fatalf("%s: file is %d bytes after replay, want %d", name, got, start)
		}
		if !strings.Contains(lb.String(), "truncating torn WAL tail") || !strings.Contains(lb.String(), reason) {
			t.Fatalf("%s: no torn-tail warning with %q: %s", name, reason, lb.String())
		}
	}
	for cut := start + 1; cut < end; cut++ {
		reason := "shorter than an entry header"
		if cut >= last.Offset {
			reason = "external entry runs past the end"
		}
		damaged(fmt.Sprint("cut at ", cut), bytes.Clone(full[:cut]), reason)
	}
	for _, at := range []int64{start + 1, start + 30, last.Offset + 2} { // CRC, partition, header CRC
		d := bytes.Clone(full)
		d[at] ^= 0x20
		damaged(fmt.Sprint("flip at ", at), d, "external entry header CRC mismatch")
	}

	// In a segment followed by others: corruption, named by file and byte.
	dir = t.TempDir()
	_, locs = writeMixed(t, dir, 40, 4096)
	var victim Location
	for i, l := range locs {
		if l.Segment == 1 && i%2 == 1 && i < 5 {
			victim = l // an external entry with intact entries after it
		}
	}
	data, _ := os.ReadFile(segPath(dir, 1))
	data[victim.Offset+1] ^= 1
	os.WriteFile(segPath(dir, 1), data, 0o644)
	w, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096}, nil)
	defer w.Close()
	_, err = tryReplay(w)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Path != segPath(dir, 1) || ce.Offset != victim.Offset-entryHeaderSize || !strings.Contains(err.Error(), "header CRC") {
		t.Fatalf("replay: %v, want a CorruptError for segment 1 at byte %d", err, victim.Offset-entryHeaderSize)
	}
}

// A WAL of format 2 (before external entries) or 3 (before zeros written ahead) is read as
// it is and gets the version-4 marker, whether replayed or appended to first; an unknown
// version is refused.
func TestWALFormatOlderVersionsUpgrade(t *testing.T) {
	format := func(dir string) string { b, _ := os.ReadFile(filepath.Join(dir, "wal", "FORMAT")); return string(b) }
	for _, tc := range []struct {
		old         string
		replayFirst bool
	}{{walFormatLineV2, true}, {walFormatLineV2, false}, {walFormatLineV3, true}, {walFormatLineV3, false}} {
		t.Run(fmt.Sprintf("%q,replayFirst=%v", tc.old, tc.replayFirst), func(t *testing.T) {
			replayFirst := tc.replayFirst
			dir := t.TempDir()
			locs := writeEntries(t, dir, 3, 100, 0)
			os.WriteFile(filepath.Join(dir, "wal", "FORMAT"), []byte(tc.old), 0o644)
			w, _ := openTestWAL(t, WALOptions{Dir: dir}, nil)
			if replayFirst {
				checkReplay(t, replayAll(t, w), locs, 100)
			}
			ext := extBatch(3, 100, &testSyncer{})
			l := mustAppend(t, w, ext)
			w.Close()
			if f := format(dir); f != walFormatLine {
				t.Fatalf("format marker %q after opening a WAL marked %q, want %q", f, tc.old, walFormatLine)
			}
			w, _ = openTestWAL(t, WALOptions{Dir: dir}, nil)
			defer w.Close()
			got := replayAll(t, w)
			checkReplay(t, got[:3], locs, 100)
			if len(got) != 4 || got[3].loc != l {
				t.Fatalf("replayed %d entries, want the external one last at %+v", len(got), l)
			}
			checkExternalReplayed(t, &got[3].b, ext)
		})
	}
	dir := t.TempDir()
	writeEntries(t, dir, 1, 100, 0)
	os.WriteFile(filepath.Join(dir, "wal", "FORMAT"), []byte("klite-wal 5\n"), 0o644)
	w, _ := openTestWAL(t, WALOptions{Dir: dir}, nil)
	defer w.Close()
	if _, err := tryReplay(w); err == nil || !strings.Contains(err.Error(), "cannot read") {
		t.Fatalf("replay of a version-5 WAL: %v, want it refused", err)
	}
}

// replayCutAt replays w, returning ErrCutReplay for the entry at cut, and what was replayed
// before it.
func replayCutAt(w WAL, cut Location) ([]replayed, error) {
	var out []replayed
	err := w.Replay(func(b *Batch, loc Location) error {
		if loc == cut {
			return ErrCutReplay
		}
		c := *b
		c.Data = append([]byte(nil), b.Data...)
		out = append(out, replayed{c, loc})
		return nil
	})
	return out, err
}

// A replay that finds an external entry's bytes missing cuts the WAL before it: in the
// last segment of a WAL not shut down cleanly the entry and everything after it go, for
// good (the next start replays up to there, and appends go on after it); before the last
// segment, or after a clean shutdown, it is corruption.
func TestWALReplayCut(t *testing.T) {
	t.Run("last segment", func(t *testing.T) {
		dir := t.TempDir()
		want, locs := writeMixed(t, dir, 9, 0)
		cut := locs[5] // external
		w, lb := openTestWAL(t, WALOptions{Dir: dir}, nil)
		got, err := replayCutAt(w, cut)
		if err != nil {
			t.Fatal(err)
		}
		checkMixedReplay(t, got, want[:5], locs[:5])
		if !strings.Contains(lb.String(), "cutting the WAL before a batch") {
			t.Fatalf("no warning about the cut: %s", lb.String())
		}
		next := mustAppend(t, w, testBatch(100, 50))
		if next.Offset != cut.Offset {
			t.Fatalf("the next append landed at %d, want the cut's %d", next.Offset, cut.Offset)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w, _ = openTestWAL(t, WALOptions{Dir: dir}, nil)
		defer w.Close()
		again := replayAll(t, w)
		if len(again) != 6 || sameBatch(&again[5].b, testBatch(100, 50)) != nil {
			t.Fatalf("after the cut and one append, replay finds %d entries, want the 5 before the cut and the new one", len(again))
		}
	})
	t.Run("earlier segment", func(t *testing.T) {
		dir := t.TempDir()
		_, locs := writeMixed(t, dir, 40, 4096)
		var cut Location
		for i, l := range locs {
			if l.Segment == 1 && i%2 == 1 {
				cut = l
				break
			}
		}
		w, _ := openTestWAL(t, WALOptions{Dir: dir, SegmentBytes: 4096}, nil)
		defer w.Close()
		_, err := replayCutAt(w, cut)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Offset != cut.Offset-entryHeaderSize || !strings.Contains(err.Error(), "(single-copy); later segments exist") {
			t.Fatalf("replay: %v, want a CorruptError at byte %d of segment 1", err, cut.Offset-entryHeaderSize)
		}
	})
	t.Run("clean shutdown", func(t *testing.T) {
		dir := t.TempDir()
		w, err := OpenWAL(WALOptions{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		replayAll(t, w)
		s := &testSyncer{}
		mustAppend(t, w, testBatch(0, 10))
		cut := mustAppend(t, w, extBatch(1, 10, s))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w, err = OpenWAL(WALOptions{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		_, err = replayCutAt(w, cut)
		var ce *CorruptError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "(single-copy); the WAL was shut down cleanly") {
			t.Fatalf("replay: %v, want a CorruptError naming the clean shutdown", err)
		}
	})
	t.Run("memwal", func(t *testing.T) {
		w := NewMemWAL()
		replayAll(t, w)
		s := &testSyncer{}
		var locs []Location
		for i := range 5 {
			b := testBatch(i, 20)
			if i%2 == 1 {
				b = extBatch(i, 20, s)
			}
			locs = append(locs, mustAppend(t, w, b))
		}
		w = w.Reopen()
		if _, err := replayCutAt(w, locs[3]); err != nil {
			t.Fatal(err)
		}
		w = w.Reopen()
		defer w.Close()
		if got := replayAll(t, w); len(got) != 3 {
			t.Fatalf("after the cut replay finds %d entries, want 3", len(got))
		}
	})
}
