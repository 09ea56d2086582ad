package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"testing"

	"github.com/klite/klite/broker/storage"
)

// scOpen opens a single-copy Log over st with a fixed clock, already hot (Stage takes
// batches from the first).
func scOpen(t *testing.T, st Store, maxActive int64) (*Log, *clock) {
	t.Helper()
	c := &clock{}
	c.advance(1 << 20)
	l, err := Open(st, "p/", DefaultConfig(), Options{MaxActiveBytes: maxActive, Now: c.now,
		Logger: slog.New(slog.DiscardHandler), SingleCopy: true})
	if err != nil {
		t.Fatal(err)
	}
	scHot(l, c)
	return l, c
}

// scHot makes l count as hot at c's time.
func scHot(l *Log, c *clock) {
	l.mu.Lock()
	l.rate = appendRate{start: c.now(), prev: DefaultSingleCopyBytesPerSec}
	l.mu.Unlock()
}

// scBatch returns a batch of one record at base with a value of n random bytes.
func scBatch(t *testing.T, rng *rand.Rand, base int64, n int) []byte {
	t.Helper()
	v := make([]byte, n)
	rng.Read(v)
	return mkBatch(t, base, []rec{{key: []byte(fmt.Sprint("k", base)), value: v, ts: 1000 + base}}, batchOpts{})
}

func mustStage(t *testing.T, l *Log, b []byte, want bool) {
	t.Helper()
	got, err := l.Stage(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Stage = %v, want %v", got, want)
	}
}

// mustSync writes and syncs the staged batches as the WAL does for a commit.
func mustSync(t *testing.T, l *Log) {
	t.Helper()
	if err := writeSync(l); err != nil {
		t.Fatal(err)
	}
}

func writeSync(l *Log) error {
	if err := l.WriteExternal(); err != nil {
		return err
	}
	return l.SyncExternal()
}

func mustAppend(t *testing.T, l *Log, b []byte) {
	t.Helper()
	if err := l.Append(b); err != nil {
		t.Fatal(err)
	}
}

// wantValues checks that the log reads back exactly the batches' records, in order.
func wantValues(t *testing.T, l *Log, batches [][]byte) {
	t.Helper()
	got := readAll(t, l)
	if len(got) != len(batches) {
		t.Fatalf("read %d records, want %d", len(got), len(batches))
	}
	for i, b := range batches {
		h, _ := parseBatch(b)
		recs, _ := records(b, &h)
		want := string(recordValue(t, recs[0].raw))
		if got[i].off != h.Base || got[i].value != want {
			t.Fatalf("record %d: offset %d, value %d bytes; want offset %d and the batch's value", i, got[i].off, len(got[i].value), h.Base)
		}
	}
}

// holds reports whether a leftover's bytes begin with want: past what was written last the
// file may hold the padding of a direct write's last block, or bytes written before an
// Unstage (Commit cuts them; a replay reads only the batches the WAL names).
func holds(left, want []byte) bool { return bytes.HasPrefix(left, want) }

// leftoverBytes returns the durable bytes of p/'s single-copy segments in the making.
func leftoverBytes(t *testing.T, st Store) map[string][]byte {
	t.Helper()
	dc := st.(DurableCreator)
	objs, err := dc.Leftovers("p/")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, o := range objs {
		b, err := dc.ReadLeftover(o.Name, 0, o.Size)
		if err != nil {
			t.Fatal(err)
		}
		out[o.Name] = b
	}
	return out
}

// A staged batch is not readable until it commits; SyncExternal makes the staged bytes
// durable in the segment being written (the only copy); the seal turns it into an ordinary
// segment.
func TestStagedBatchesAreDurableBeforeCommit(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			l, _ := scOpen(t, st, 16<<20)
			rng := rand.New(rand.NewSource(1))
			var batches [][]byte
			for i, n := range []int{5000, 333, 9000, 4096 - 61, 70000} {
				b := scBatch(t, rng, int64(i), n)
				mustStage(t, l, b, true)
				if l.NextOffset() != int64(i) {
					t.Fatalf("NextOffset %d after staging batch %d, want %d", l.NextOffset(), i, i)
				}
				wantValues(t, l, batches) // the staged batch is not read
				mustSync(t, l)
				batches = append(batches, b)
				left := leftoverBytes(t, st)[segName("p/", 0, 0)]
				if want := bytes.Join(batches, nil); !holds(left, want) {
					t.Fatalf("after %d syncs the durable object holds %d bytes, want the %d of the batches", i+1, len(left), len(want))
				}
				mustAppend(t, l, b)
				wantValues(t, l, batches)
			}
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			if left := leftoverBytes(t, st); len(left) != 0 {
				t.Fatalf("leftovers after the seal: %v", len(left))
			}
			if segs := l.Segments(); len(segs) != 1 || segs[0].Next != 5 {
				t.Fatalf("segments %+v, want one ending at 5", segs)
			}
			wantValues(t, l, batches)
		})
	}
}

// A batch staged while an earlier one travels the ordinary path starts the next segment,
// which becomes active when its first batch commits, after the earlier one.
func TestStagingBehindAnOrdinaryBatchStartsTheNextSegment(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			l, _ := scOpen(t, st, 16<<20)
			rng := rand.New(rand.NewSource(2))
			b0, b1, b2, b3 := scBatch(t, rng, 0, 100), scBatch(t, rng, 1, 200), scBatch(t, rng, 2, 300), scBatch(t, rng, 3, 400)
			mustAppend(t, l, b0) // ordinary, acknowledged
			// b1 is in the WAL, not yet acknowledged; b2 and b3 are staged meanwhile.
			mustStage(t, l, b2, true)
			mustStage(t, l, b3, true)
			mustSync(t, l)
			mustAppend(t, l, b1)
			wantValues(t, l, [][]byte{b0, b1})
			mustAppend(t, l, b2)
			if segs := l.Segments(); len(segs) != 1 || segs[0].Base != 0 || segs[0].Next != 2 {
				t.Fatalf("segments %+v, want the ordinary one 0..2 sealed", segs)
			}
			mustAppend(t, l, b3)
			wantValues(t, l, [][]byte{b0, b1, b2, b3})
			if left := leftoverBytes(t, st)[segName("p/", 2, 0)]; !holds(left, append(append([]byte(nil), b2...), b3...)) {
				t.Fatalf("the staged segment holds %d bytes, want b2 and b3", len(left))
			}
		})
	}
}

// A failed WAL append unstages its batch and the later ones; the offsets are staged again
// with other data, which is what the durable object and the log then hold.
func TestUnstageDropsTheFailedBatches(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			l, _ := scOpen(t, st, 16<<20)
			rng := rand.New(rand.NewSource(3))
			b0, b1, b2 := scBatch(t, rng, 0, 3000), scBatch(t, rng, 1, 5000), scBatch(t, rng, 2, 7000)
			mustStage(t, l, b0, true)
			mustStage(t, l, b1, true)
			mustStage(t, l, b2, true)
			mustSync(t, l)
			l.Unstage(1)
			mustAppend(t, l, b0)
			b1b, b2b := scBatch(t, rng, 1, 100), scBatch(t, rng, 2, 200)
			mustStage(t, l, b1b, true)
			mustStage(t, l, b2b, true)
			mustSync(t, l)
			mustAppend(t, l, b1b)
			mustAppend(t, l, b2b)
			want := [][]byte{b0, b1b, b2b}
			wantValues(t, l, want)
			if left := leftoverBytes(t, st)[segName("p/", 0, 0)]; !holds(left, bytes.Join(want, nil)) {
				t.Fatalf("the durable object holds %d bytes, want the %d of the batches now staged", len(left), len(bytes.Join(want, nil)))
			}
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			wantValues(t, l, want)

			// Batches straddling the builder's chunks (chunkBytes): unstaged back into the
			// first chunk, staged again across the boundary.
			big := [][]byte{scBatch(t, rng, 3, 600<<10), scBatch(t, rng, 4, 700<<10), scBatch(t, rng, 5, 900<<10)}
			for _, b := range big {
				mustStage(t, l, b, true)
			}
			mustSync(t, l)
			l.Unstage(4)
			mustAppend(t, l, big[0])
			big[1], big[2] = scBatch(t, rng, 4, 900<<10), scBatch(t, rng, 5, 1500<<10)
			mustStage(t, l, big[1], true)
			mustStage(t, l, big[2], true)
			mustSync(t, l)
			mustAppend(t, l, big[1])
			mustAppend(t, l, big[2])
			want = append(want, big...)
			wantValues(t, l, want)
			if left := leftoverBytes(t, st)[segName("p/", 3, 0)]; !holds(left, bytes.Join(big, nil)) {
				t.Fatalf("the durable object holds %d bytes, want the %d of the batches now staged", len(left), len(bytes.Join(big, nil)))
			}
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			wantValues(t, l, want)

			// A staging segment whose batches all fail goes with its object.
			b3, b4 := scBatch(t, rng, 6, 10), scBatch(t, rng, 7, 10)
			mustStage(t, l, b4, true) // b3 in flight the ordinary way: b4 starts staging
			mustSync(t, l)
			l.Unstage(7)
			if left := leftoverBytes(t, st); len(left) != 0 {
				t.Fatalf("leftovers after unstaging the whole staging segment: %d", len(left))
			}
			mustAppend(t, l, b3)
			wantValues(t, l, append(want, b3))
		})
	}
}

// After a crash the replay finds the staged batches in the leftover segment, appends them
// again and FinishRecovery seals them and drops the leftover.
func TestReplayReadsLeftoverSegments(t *testing.T) {
	for _, name := range []string{"mem", "dir"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var st Store = NewMemStore()
			reopen := func() Store { return st }
			if name == "dir" {
				open := func() Store {
					d, err := OpenDirStore(dir)
					if err != nil {
						t.Fatal(err)
					}
					return d
				}
				st, reopen = open(), open
			}
			l, _ := scOpen(t, st, 16<<20)
			rng := rand.New(rand.NewSource(4))
			var batches [][]byte
			for i := range 4 {
				b := scBatch(t, rng, int64(i), 1000*(i+1))
				mustStage(t, l, b, true)
				batches = append(batches, b)
			}
			mustSync(t, l)
			for _, b := range batches[:3] {
				mustAppend(t, l, b) // the fourth was not acknowledged
			}

			// The crash: a new Log over the store as a restart opens it.
			l2, err := Open(reopen(), "p/", DefaultConfig(), Options{MaxActiveBytes: 16 << 20, Logger: slog.New(slog.DiscardHandler), SingleCopy: true})
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range batches[:3] {
				got, err := l2.ReplayData(int64(i), len(b))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, b) {
					t.Fatalf("ReplayData(%d) returned other bytes", i)
				}
				mustAppend(t, l2, got)
			}
			if _, err := l2.ReplayData(0, len(batches[0])); err != nil {
				t.Fatalf("ReplayData of a batch the log holds: %v", err)
			}
			if _, err := l2.ReplayData(5, 100); err == nil {
				t.Fatal("ReplayData of an offset no segment holds succeeded")
			}
			if _, err := l2.ReplayData(3, len(batches[3])+1); err == nil {
				t.Fatal("ReplayData with the wrong length succeeded")
			}
			if err := l2.FinishRecovery(); err != nil {
				t.Fatal(err)
			}
			if left := leftoverBytes(t, l2.st); len(left) != 0 {
				t.Fatalf("leftovers after FinishRecovery: %d", len(left))
			}
			if segs := l2.Segments(); len(segs) != 1 || segs[0].Next != 3 {
				t.Fatalf("segments %+v, want one ending at 3", segs)
			}
			wantValues(t, l2, batches[:3])
		})
	}
}

// A clean shutdown keeps the single-copy segment in the making (its batches have no other
// copy); a DirStore reopened keeps it too, where it removes ordinary temporary files.
func TestCloseKeepsSingleCopySegments(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := scOpen(t, d, 16<<20)
	rng := rand.New(rand.NewSource(5))
	b := scBatch(t, rng, 0, 20000)
	mustStage(t, l, b, true)
	mustSync(t, l)
	mustAppend(t, l, b)
	if err := l.abortTail(); err != nil {
		t.Fatal(err)
	}
	d2, err := OpenDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if left := leftoverBytes(t, d2)[segName("p/", 0, 0)]; !holds(left, b) {
		t.Fatalf("after close and reopen the leftover holds %d bytes, want the batch's %d", len(left), len(b))
	}
	if objs, _ := d2.List("p/"); len(objs) != 0 {
		t.Fatalf("List shows %v", objs)
	}
}

// Past the roll size the next batch is staged into a new segment, which becomes active
// (the full one sealed) when that batch commits.
func TestStagedSegmentsRollAtTheirSize(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			l, _ := scOpen(t, st, 64<<10)
			rng := rand.New(rand.NewSource(6))
			var batches [][]byte
			for i := range 12 {
				b := scBatch(t, rng, int64(i), 15000)
				mustStage(t, l, b, true)
				mustSync(t, l)
				mustAppend(t, l, b)
				batches = append(batches, b)
			}
			segs := l.Segments()
			if len(segs) < 2 {
				t.Fatalf("segments %+v, want rolls every 4 batches", segs)
			}
			for _, s := range segs {
				if s.Size > 64<<10+4096 {
					t.Fatalf("segment %+v larger than the roll size", s)
				}
			}
			wantValues(t, l, batches)
		})
	}
}

// A Log that is not hot, or whose store cannot make objects durable, stages nothing.
func TestStageOnlyHotAndDurable(t *testing.T) {
	c := &clock{}
	c.advance(1 << 20)
	l, err := Open(NewMemStore(), "p/", DefaultConfig(), Options{Now: c.now, Logger: slog.New(slog.DiscardHandler), SingleCopy: true})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(7))
	mustStage(t, l, scBatch(t, rng, 0, 100), false) // 100 bytes a second
	l.mu.Lock()
	l.rate = appendRate{start: c.now(), prev: DefaultSingleCopyBytesPerSec - 1000}
	l.mu.Unlock()
	mustStage(t, l, scBatch(t, rng, 1, 100), false) // a hot partition, not hot enough
	nd := &noDurable{NewMemStore()}
	l2, err := Open(nd, "p/", DefaultConfig(), Options{Now: c.now, Logger: slog.New(slog.DiscardHandler), SingleCopy: true})
	if err != nil {
		t.Fatal(err)
	}
	scHot(l2, c)
	mustStage(t, l2, scBatch(t, rng, 0, 100), false)
}

// noDurable is a Store without DurableCreator.
type noDurable struct{ Store }

// Staging, syncing and committing run on three goroutines as in the broker (the produce
// path, the WAL's syncer, its callbacks), with readers reading meanwhile, rolls in the
// background and every fiftieth batch taking the ordinary path: every committed batch
// reads back in order.
func TestStagingConcurrentWithSyncsAndReads(t *testing.T) {
	for _, sz := range []struct {
		name        string
		active      int64
		n, batchMax int
	}{{"small", 200 << 10, 400, 20000}, {"chunks", 6 << 20, 150, 200000}} {
		t.Run(sz.name, func(t *testing.T) { testStagingConcurrent(t, sz.active, sz.n, sz.batchMax) })
	}
}

func testStagingConcurrent(t *testing.T, active int64, n, batchMax int) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{}
			c.advance(1 << 20)
			l, err := Open(st, "p/", DefaultConfig(), Options{MaxActiveBytes: active, Now: c.now,
				Logger: slog.New(slog.DiscardHandler), SingleCopy: true, AsyncRoll: true})
			if err != nil {
				t.Fatal(err)
			}
			scHot(l, c)
			rng := rand.New(rand.NewSource(8))
			batches := make([][]byte, n)
			for i := range batches {
				batches[i] = scBatch(t, rng, int64(i), 100+rng.Intn(batchMax))
			}
			type item struct {
				b      []byte
				staged bool
			}
			toWrite := make(chan item, 8) // 32 batches in flight in all, as in two 16-deep stages
			toSync := make(chan item, 8)
			toCommit := make(chan item, 16)
			errs := make(chan error, 4)
			go func() { // the produce path
				defer close(toWrite)
				for i, b := range batches {
					staged := false
					if i%50 != 3 {
						var err error
						if staged, err = l.Stage(b); err != nil {
							errs <- err
							return
						}
					}
					toWrite <- item{b, staged}
				}
			}()
			// A stage of the WAL's pipeline: f for each item, then on to the next stage.
			stage := func(in <-chan item, out chan<- item, f func() error) {
				defer close(out)
				for it := range in {
					if err := f(); err != nil {
						errs <- err
						return
					}
					out <- it
				}
			}
			go stage(toWrite, toSync, l.WriteExternal) // the WAL's writer
			go stage(toSync, toCommit, l.SyncExternal) // its syncer (while the writer writes what follows)
			done := make(chan struct{})
			go func() { // readers
				defer close(done)
				for i := 0; i < 200; i++ {
					off := int64(rng.Intn(n))
					b, err := l.Read(off, 64<<10)
					if err != nil && err != ErrOffsetOutOfRange {
						errs <- err
						return
					}
					for len(b) > 0 {
						h, err := parseBatch(b)
						if err != nil || !checkBatchCRC(b, &h) {
							errs <- fmt.Errorf("read at %d: a bad batch", off)
							return
						}
						b = b[h.Size:]
					}
				}
			}()
			staged := 0
			for it := range toCommit { // the WAL's callbacks
				if it.staged {
					staged++
				}
				if err := l.Append(it.b); err != nil {
					t.Fatal(err)
				}
			}
			<-done
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			if staged < n/2 {
				t.Fatalf("%d of %d batches staged", staged, n)
			}
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			wantValues(t, l, batches)
			if left := leftoverBytes(t, st); len(left) != 0 {
				t.Fatalf("%d leftovers after the last seal", len(left))
			}
		})
	}
}

// A full disk under a single-copy segment: the sync fails (the WAL then fails the batches
// and the broker unstages them), nothing committed changes, and once the disk has room the
// same offsets are staged and synced again; a failing fdatasync is the same.
func TestStagedSyncOnAFullDisk(t *testing.T) {
	d, err := OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &storage.Faults{}
	d.SetFaults(f)
	l, _ := scOpen(t, d, 16<<20)
	rng := rand.New(rand.NewSource(9))
	b0 := scBatch(t, rng, 0, 9000)
	mustStage(t, l, b0, true)
	mustSync(t, l)
	mustAppend(t, l, b0)
	for _, fail := range []func(error){f.SetWriteErr, f.SetSyncErr} {
		b1 := scBatch(t, rng, 1, 7000)
		mustStage(t, l, b1, true)
		fail(errDiskFull)
		if err := writeSync(l); !errors.Is(err, errDiskFull) {
			t.Fatalf("WriteExternal and SyncExternal on a full disk: %v", err)
		}
		l.Unstage(1)
		wantValues(t, l, [][]byte{b0})
		fail(nil)
	}
	b1 := scBatch(t, rng, 1, 5000)
	mustStage(t, l, b1, true)
	mustSync(t, l)
	mustAppend(t, l, b1)
	wantValues(t, l, [][]byte{b0, b1})
	if left := leftoverBytes(t, d)[segName("p/", 0, 0)]; !holds(left, append(append([]byte(nil), b0...), b1...)) {
		t.Fatalf("the durable object holds %d bytes, want b0 and b1", len(left))
	}
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	wantValues(t, l, [][]byte{b0, b1})
}
