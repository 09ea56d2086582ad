package storage

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// walStore makes one backing store and returns a function that opens a WAL over it. Each call
// of open follows Close of the WAL it returned before (a restart).
type walStore func(t *testing.T, segBytes int64) (open func() WAL)

func memWALOpener(t *testing.T, segBytes int64) func() WAL {
	var prev *MemWAL
	return func() WAL {
		if prev == nil {
			prev = NewMemWALWithOptions(WALOptions{SegmentBytes: segBytes})
		} else {
			prev = prev.Reopen()
		}
		return prev
	}
}

func fileWALOpener(t *testing.T, segBytes int64) func() WAL {
	return fileWALOpenerWith(t, WALOptions{SegmentBytes: segBytes})
}

func bufferedFileWALOpener(t *testing.T, segBytes int64) func() WAL {
	return fileWALOpenerWith(t, WALOptions{SegmentBytes: segBytes, BufferedIO: true})
}

func fileWALOpenerWith(t *testing.T, o WALOptions) func() WAL {
	o.Dir = t.TempDir()
	return func() WAL {
		w, err := OpenWAL(o)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
}

func TestWALConformance(t *testing.T) {
	t.Run("mem", func(t *testing.T) { testWAL(t, memWALOpener) })
	t.Run("file", func(t *testing.T) { testWAL(t, fileWALOpener) })
	t.Run("file-buffered", func(t *testing.T) { testWAL(t, bufferedFileWALOpener) })
}

func TestMetaLogConformance(t *testing.T) {
	t.Run("mem", func(t *testing.T) {
		testMetaLog(t, func(t *testing.T) func() MetaLog {
			var prev *MemMetaLog
			return func() MetaLog {
				if prev == nil {
					prev = NewMemMetaLog()
				} else {
					prev = prev.Reopen()
				}
				return prev
			}
		})
	})
	t.Run("file", func(t *testing.T) {
		testMetaLog(t, func(t *testing.T) func() MetaLog {
			path := filepath.Join(t.TempDir(), "meta", "meta.log")
			return func() MetaLog {
				m, err := OpenMetaLog(path)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
		})
	})
}

// testWAL is the conformance suite every WAL implementation passes.
func testWAL(t *testing.T, store walStore) {
	t.Run("AppendReadReplay", func(t *testing.T) {
		open := store(t, 0)
		w := open()
		if got := replayAll(t, w); len(got) != 0 {
			t.Fatalf("fresh WAL replayed %d entries", len(got))
		}
		var want []*Batch
		var locs []Location
		for i := range 20 {
			b := testBatch(i, 100+i*37)
			data := append([]byte(nil), b.Data...)
			loc := mustAppend(t, w, b)
			for j := range b.Data { // Append must have copied the bytes
				b.Data[j] = 0xEE
			}
			b.Data = data
			if loc.Size != int32(len(data)) {
				t.Fatalf("entry %d: loc size %d, want %d", i, loc.Size, len(data))
			}
			want = append(want, b)
			locs = append(locs, loc)
		}
		if _, err := tryReplay(w); err == nil {
			t.Fatal("Replay after Append succeeded")
		}
		for i, loc := range locs {
			if i > 0 && !locLess(locs[i-1], loc) {
				t.Fatalf("locations not increasing: %+v then %+v", locs[i-1], loc)
			}
			got, err := w.ReadAt(loc, make([]byte, 3))
			if err != nil {
				t.Fatalf("ReadAt %d: %v", i, err)
			}
			if !bytes.Equal(got, want[i].Data) {
				t.Fatalf("ReadAt %d returned other bytes", i)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w = open()
		defer w.Close()
		got := replayAll(t, w)
		if len(got) != len(want) {
			t.Fatalf("replayed %d entries, want %d", len(got), len(want))
		}
		for i := range got {
			if err := sameBatch(&got[i].b, want[i]); err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
			if got[i].loc != locs[i] {
				t.Fatalf("entry %d: replay loc %+v, append loc %+v", i, got[i].loc, locs[i])
			}
		}
		// Appends continue after the replayed data.
		loc := mustAppend(t, w, testBatch(99, 10))
		if !locLess(locs[len(locs)-1], loc) {
			t.Fatalf("append after reopen at %+v, not after %+v", loc, locs[len(locs)-1])
		}
		if b, err := w.ReadAt(loc, nil); err != nil || !bytes.Equal(b, testBatch(99, 10).Data) {
			t.Fatalf("ReadAt after reopen: %v", err)
		}
	})

	t.Run("External", func(t *testing.T) { testWALExternal(t, store) })

	t.Run("CallbacksAsyncAndInOrder", func(t *testing.T) {
		w := store(t, 0)()
		defer w.Close()
		replayAll(t, w)
		// done takes mu, which is held while calling Append: a callback called inside Append
		// would deadlock, and this test would time out.
		var mu sync.Mutex
		var order []int
		const n = 500
		all := make(chan struct{})
		mu.Lock()
		for i := range n {
			w.Append(testBatch(i, 64), func(loc Location, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("append %d: %v", i, err)
				}
				order = append(order, i)
				if len(order) == n {
					close(all)
				}
			})
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			t.Fatal("callbacks not all called")
		}
		for i, v := range order {
			if v != i {
				t.Fatalf("callback %d came at position %d", v, i)
			}
		}
	})

	t.Run("ConcurrentAppendersAndReaders", func(t *testing.T) {
		w := store(t, 64<<10)()
		defer w.Close()
		replayAll(t, w)
		const writers, per = 8, 100
		var wg sync.WaitGroup
		locs := make([][]Location, writers)
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mu sync.Mutex
				var got []int
				done := make(chan struct{})
				for i := range per {
					id := g*per + i
					w.Append(testBatch(id, 200+id%300), func(loc Location, err error) {
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							t.Errorf("append %d: %v", id, err)
						}
						got = append(got, i)
						locs[g] = append(locs[g], loc)
						if len(got) == per {
							close(done)
						}
					})
				}
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Errorf("writer %d: callbacks missing", g)
					return
				}
				for k, v := range got {
					if v != k {
						t.Errorf("writer %d: callback for append %d came %dth", g, v, k)
						return
					}
				}
				// Read back everything this writer appended while others still append.
				var buf []byte
				for i, loc := range locs[g] {
					id := g*per + i
					b, err := w.ReadAt(loc, buf)
					if err != nil || !bytes.Equal(b, testBatch(id, 200+id%300).Data) {
						t.Errorf("writer %d: ReadAt %d: %v", g, i, err)
						return
					}
					buf = b
				}
			}()
		}
		wg.Wait()
		seen := map[Location]bool{}
		for _, ls := range locs {
			for _, l := range ls {
				if seen[l] {
					t.Fatalf("location %+v handed out twice", l)
				}
				seen[l] = true
			}
		}
		if len(seen) != writers*per {
			t.Fatalf("%d locations, want %d", len(seen), writers*per)
		}
	})

	t.Run("RotationAndRemoveSegments", func(t *testing.T) {
		open := store(t, 4096)
		w := open()
		replayAll(t, w)
		var locs []Location
		for i := range 60 {
			locs = append(locs, mustAppend(t, w, testBatch(i, 500)))
		}
		segs := map[uint64]int{}
		for _, l := range locs {
			segs[l.Segment]++
			if l.Offset+int64(l.Size) > 4096 {
				t.Fatalf("entry %+v crosses the segment size 4096", l)
			}
		}
		last := locs[len(locs)-1].Segment
		if len(segs) < 5 {
			t.Fatalf("60 entries of ~556 bytes in 4 KiB segments used only %d segments", len(segs))
		}
		cut := locs[0].Segment + 3
		if err := w.RemoveSegmentsBefore(cut); err != nil {
			t.Fatal(err)
		}
		for i, l := range locs {
			b, err := w.ReadAt(l, nil)
			if l.Segment < cut {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("ReadAt of removed %+v: %v, want ErrNotFound", l, err)
				}
			} else if err != nil || !bytes.Equal(b, testBatch(i, 500).Data) {
				t.Fatalf("ReadAt of kept %+v: %v", l, err)
			}
		}
		// The active segment is never removed; appends go on.
		if err := w.RemoveSegmentsBefore(last + 100); err != nil {
			t.Fatal(err)
		}
		if _, err := w.ReadAt(locs[len(locs)-1], nil); err != nil {
			t.Fatalf("active segment was removed: %v", err)
		}
		more := mustAppend(t, w, testBatch(1000, 500))
		w.Close()
		w = open()
		defer w.Close()
		got := replayAll(t, w)
		var want []Location
		for _, l := range locs {
			if l.Segment == last {
				want = append(want, l)
			}
		}
		want = append(want, more)
		if len(got) != len(want) {
			t.Fatalf("replayed %d entries after removal, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i].loc != want[i] {
				t.Fatalf("replay %d at %+v, want %+v", i, got[i].loc, want[i])
			}
		}
	})

	t.Run("EmptyAndLargeBatches", func(t *testing.T) {
		open := store(t, 1<<20)
		w := open()
		replayAll(t, w)
		l0 := mustAppend(t, w, &Batch{BaseOffset: 7, LastOffset: 7})
		big := testBatch(3, 3<<20) // larger than a segment
		l1 := mustAppend(t, w, big)
		l2 := mustAppend(t, w, testBatch(4, 10))
		if b, err := w.ReadAt(l0, nil); err != nil || len(b) != 0 {
			t.Fatalf("empty batch: %v %d", err, len(b))
		}
		if b, err := w.ReadAt(l1, nil); err != nil || !bytes.Equal(b, big.Data) {
			t.Fatalf("big batch: %v", err)
		}
		w.Close()
		w = open()
		defer w.Close()
		got := replayAll(t, w)
		if len(got) != 3 || got[0].loc != l0 || got[1].loc != l1 || got[2].loc != l2 {
			t.Fatalf("replay: %d entries", len(got))
		}
		if err := sameBatch(&got[1].b, big); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Close", func(t *testing.T) {
		open := store(t, 0)
		w := open()
		replayAll(t, w)
		var mu sync.Mutex
		called := 0
		const n = 200
		for i := range n {
			w.Append(testBatch(i, 1000), func(loc Location, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("pending append %d failed at Close: %v", i, err)
				}
				called++
			})
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if called != n {
			t.Fatalf("Close returned with %d of %d callbacks called", called, n)
		}
		mu.Unlock()
		if _, err := appendWait(t, w, testBatch(1, 1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Append after Close: %v, want ErrClosed", err)
		}
		if _, err := w.ReadAt(Location{Segment: 1, Offset: entryHeaderSize, Size: 1}, nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("ReadAt after Close: %v, want ErrClosed", err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		w = open()
		defer w.Close()
		if got := replayAll(t, w); len(got) != n {
			t.Fatalf("replayed %d of %d entries completed by Close", len(got), n)
		}
	})
}

func locLess(a, b Location) bool {
	return a.Segment < b.Segment || a.Segment == b.Segment && a.Offset < b.Offset
}

// testMetaLog is the conformance suite every MetaLog implementation passes.
func testMetaLog(t *testing.T, store func(t *testing.T) func() MetaLog) {
	replay := func(t *testing.T, m MetaLog) []string {
		t.Helper()
		var out []string
		if err := m.Replay(func(rec []byte) error { out = append(out, string(rec)); return nil }); err != nil {
			t.Fatalf("replay: %v", err)
		}
		return out
	}
	equal := func(t *testing.T, got, want []string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) || len(got) != len(want) {
			t.Fatalf("records %q, want %q", got, want)
		}
	}

	t.Run("AppendReplayCompact", func(t *testing.T) {
		open := store(t)
		m := open()
		equal(t, replay(t, m), nil)
		if m.Size() != 0 {
			t.Fatalf("empty log size %d", m.Size())
		}
		var want []string
		for i := range 10 {
			r := fmt.Sprintf("rec-%d", i)
			if err := m.Append([]byte(r)); err != nil {
				t.Fatal(err)
			}
			want = append(want, r)
		}
		if err := m.AppendBatch([][]byte{[]byte("a"), {}, []byte("c")}); err != nil {
			t.Fatal(err)
		}
		if err := m.AppendBatch(nil); err != nil {
			t.Fatal(err)
		}
		want = append(want, "a", "", "c")
		wantSize := int64(0)
		for _, r := range want {
			wantSize += int64(metaEntryOverhead + len(r))
		}
		if m.Size() != wantSize {
			t.Fatalf("size %d, want %d", m.Size(), wantSize)
		}
		if err := m.Replay(func([]byte) error { return nil }); err == nil {
			t.Fatal("Replay after Append succeeded")
		}
		m.Close()
		if err := m.Append([]byte("x")); !errors.Is(err, ErrClosed) {
			t.Fatalf("Append after Close: %v", err)
		}
		m = open()
		equal(t, replay(t, m), want)
		if err := m.Compact([][]byte{[]byte("snap1"), []byte("snap2")}); err != nil {
			t.Fatal(err)
		}
		if m.Size() != int64(2*metaEntryOverhead+10) {
			t.Fatalf("size after compact %d", m.Size())
		}
		if err := m.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		m.Close()
		m = open()
		defer m.Close()
		equal(t, replay(t, m), []string{"snap1", "snap2", "after"})
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		open := store(t)
		m := open()
		replay(t, m)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					if err := m.Append(fmt.Appendf(nil, "%d/%03d", g, i)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		m.Close()
		m = open()
		defer m.Close()
		got := replay(t, m)
		if len(got) != 400 {
			t.Fatalf("%d records, want 400", len(got))
		}
		next := map[string]int{}
		for _, r := range got {
			var g, i int
			fmt.Sscanf(r, "%d/%d", &g, &i)
			key := fmt.Sprint(g)
			if next[key] != i {
				t.Fatalf("writer %d: record %d came when %d was expected", g, i, next[key])
			}
			next[key]++
		}
	})
}
