package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klite/klite/broker/storage"
)

// heldStore holds its writers' Writes while gate is locked: a test sees the active
// segment with chunks cut but not yet written.
type heldStore struct {
	Store
	gate    sync.RWMutex
	reads   sync.RWMutex  // held: ReadAt waits
	reading chan struct{} // ReadAt was entered
}

func (g *heldStore) Create(name string) (ObjectWriter, error) {
	w, err := g.Store.(Creator).Create(name)
	if err != nil {
		return nil, err
	}
	return &heldWriter{w, g}, nil
}

type heldWriter struct {
	ObjectWriter
	g *heldStore
}

// ReadAt waits while g.reads is locked, after telling g.reading (when set).
func (w *heldWriter) ReadAt(p []byte, off int64) (int, error) {
	if w.g.reading != nil {
		select {
		case w.g.reading <- struct{}{}:
		default:
		}
	}
	w.g.reads.RLock()
	defer w.g.reads.RUnlock()
	return w.ObjectWriter.ReadAt(p, off)
}

func (w *heldWriter) Write(p []byte) error {
	w.g.gate.RLock()
	defer w.g.gate.RUnlock()
	return w.ObjectWriter.Write(p)
}

// tailLog opens a Log whose active segment does not roll by size.
func tailLog(t *testing.T, st Store) *Log {
	t.Helper()
	cfg := DefaultConfig()
	cfg.IndexIntervalBytes = 4096
	opts := smallOpts(&clock{})
	opts.MaxActiveBytes = 64 << 20
	l, err := Open(st, "p/", cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// fill appends batches of 1 to 3 records with values of 100 B to 40 KiB until the log
// holds until data bytes, one timestamp per batch (1000 + its index), and returns them.
func fill(t *testing.T, l *Log, rng *rand.Rand, batches [][]byte, until int64) [][]byte {
	t.Helper()
	for l.Size() < until {
		n := 1 + rng.Intn(3)
		var recs []rec
		for j := 0; j < n; j++ {
			v := make([]byte, 100+rng.Intn(40<<10))
			rng.Read(v)
			recs = append(recs, rec{key: []byte{byte(j)}, value: v, ts: 1000 + int64(len(batches))})
		}
		b := mkBatch(t, l.NextOffset(), recs, batchOpts{})
		if err := l.Append(b); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
	}
	return batches
}

// checkReads reads the log at every offset of batches (which it holds from offset 0 on)
// and compares with the batches: one batch, a run of batches up to 300 KiB, the offset
// for each batch's timestamp, and the byte estimate.
func checkReads(t *testing.T, l *Log, batches [][]byte) {
	t.Helper()
	for i, b := range batches {
		h, err := parseBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		for o := h.Base; o <= h.Last; o++ {
			got, err := l.Read(o, 1)
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("Read(%d, 1) = %d bytes, %v; want batch %d (%d bytes)", o, len(got), err, i, len(b))
			}
		}
		var want []byte
		for _, nb := range batches[i:] {
			if len(want) > 0 && len(want)+len(nb) > 300<<10 {
				break
			}
			want = append(want, nb...)
		}
		got, err := l.Read(h.Base, 300<<10)
		// A read stops at a segment's end: with several sealed, a prefix of whole batches.
		if len(l.Segments()) > 1 && err == nil && len(got) >= len(b) && bytes.HasPrefix(want, got) {
			want = got
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Read(%d, 300 KiB) = %d bytes, %v; want %d", h.Base, len(got), err, len(want))
		}
		off, ts, ok, err := l.OffsetForTimestamp(1000 + int64(i))
		if err != nil || !ok || off != h.Base || ts != 1000+int64(i) {
			t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d", 1000+i, off, ts, ok, err, h.Base)
		}
		var rest int64
		for _, nb := range batches[i:] {
			rest += int64(len(nb))
		}
		// The part of the active segment in its object is estimated from the index (a
		// sealed segment's by its share of the offsets: not checked).
		if n := l.BytesFrom(h.Base, 1<<40); len(l.Segments()) == 0 && (n < rest || n > rest+4096+40<<10*3+200) {
			t.Fatalf("BytesFrom(%d) = %d, want %d (plus an index interval and a batch at most)", h.Base, n, rest)
		}
	}
	if _, _, ok, err := l.OffsetForTimestamp(1000 + int64(len(batches))); ok || err != nil {
		t.Fatalf("OffsetForTimestamp past the last batch: %v, %v", ok, err)
	}
}

// tailState returns the active segment's written, pending and in-memory bytes.
func tailState(l *Log) (written int64, pend int, mem int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.active
	return a.written, len(a.pend), len(a.data)
}

// The active segment's data in three places (in its object, in chunks being written, in
// the buffer filling): every read crosses those boundaries and returns what was appended,
// before and after the writes finish and once sealed; the sealed object is byte for byte
// what a builder keeping everything in memory makes.
func TestActiveSegmentReadsAcrossWrittenBoundary(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			g := &heldStore{Store: st}
			l := tailLog(t, g)
			rng := rand.New(rand.NewSource(1))
			batches := fill(t, l, rng, nil, chunkBytes+chunkBytes/2)
			waitFlushed(l)
			g.gate.Lock()
			batches = fill(t, l, rng, batches, 3*chunkBytes+chunkBytes/2)
			if w, p, m := tailState(l); w != chunkBytes || p != 2 || m == 0 {
				g.gate.Unlock()
				t.Fatalf("written %d, %d chunks pending, %d in memory; want a chunk, 2 and some", w, p, m)
			}
			checkReads(t, l, batches)
			g.gate.Unlock()
			waitFlushed(l)
			if w, p, _ := tailState(l); w != 3*chunkBytes || p != 0 {
				t.Fatalf("written %d, %d chunks pending; want 3 chunks and none", w, p)
			}
			checkReads(t, l, batches)
			if l.Size() != totalLen(batches) {
				t.Fatalf("Size = %d, want %d", l.Size(), totalLen(batches))
			}
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			checkReads(t, l, batches)
			segs := l.Segments()
			if len(segs) != 1 {
				t.Fatalf("%d segments", len(segs))
			}
			got, err := st.Get(segs[0].Name, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			whole := newSegBuilder(0, 4096, false, 0)
			for _, b := range batches {
				h, _ := parseBatch(b)
				whole.add(b, &h)
			}
			if want := whole.finish(whole.next, 0, nil); !bytes.Equal(got, want) {
				t.Fatalf("sealed object: %d bytes, differs from the in-memory builder's %d", len(got), len(want))
			}
			checkObjects(t, st)
		})
	}
}

func totalLen(batches [][]byte) int64 {
	var n int64
	for _, b := range batches {
		n += int64(len(b))
	}
	return n
}

// A full disk while the active segment is written and while it is sealed: nothing
// appended is lost (the chunks stay in memory, the failed seal's batches go back in front
// of those appended meanwhile, read back from their own object), and once the disk has
// room the seal writes it all.
func TestActiveSegmentDiskFullLosesNothing(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	faults := &storage.Faults{}
	d.SetFaults(faults)
	l := tailLog(t, d)
	rng := rand.New(rand.NewSource(2))
	batches := fill(t, l, rng, nil, chunkBytes+chunkBytes/2)
	waitFlushed(l)
	faults.SetWriteErr(errDiskFull)
	batches = fill(t, l, rng, batches, 2*chunkBytes+chunkBytes/2)
	waitFlushed(l)
	if w, p, _ := tailState(l); w != chunkBytes || p != 1 {
		t.Fatalf("written %d, %d chunks pending; want the first chunk and the failed one", w, p)
	}
	checkReads(t, l, batches)
	// The seal fails while a new active segment took batches, written to its own object.
	l.sealMu.Lock()
	a, f := l.startSeal()
	faults.SetWriteErr(nil)
	batches = fill(t, l, rng, batches, 4*chunkBytes)
	waitFlushed(l)
	faults.SetWriteErr(errDiskFull)
	if err := l.completeSeal(a, f); !errors.Is(err, errDiskFull) {
		l.sealMu.Unlock()
		t.Fatalf("seal on a full disk: %v", err)
	}
	l.sealMu.Unlock()
	if l.DurableOffset() != 0 {
		t.Fatalf("durable offset %d after a failed seal", l.DurableOffset())
	}
	checkReads(t, l, batches)
	faults.SetWriteErr(nil)
	faults.SetSyncErr(errDiskFull)
	if err := l.Seal(); !errors.Is(err, errDiskFull) {
		t.Fatalf("seal with failing fsyncs: %v", err)
	}
	faults.SetSyncErr(nil)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	if l.DurableOffset() != l.NextOffset() || len(l.Segments()) != 1 {
		t.Fatalf("durable %d of %d, %d segments", l.DurableOffset(), l.NextOffset(), len(l.Segments()))
	}
	checkReads(t, l, batches)
	checkObjects(t, d)
	if tmps := tmpFiles(t, dir); len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
}

func tmpFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, tmpSuffix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// A crash with the active segment partly written leaves only its temporary object:
// reopening the directory removes it, the log is as sealed (empty), and the WAL's replay
// (the same batches appended again) restores it.
func TestActiveSegmentCrashLeavesOnlyTemporaryObject(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	l := tailLog(t, d)
	batches := fill(t, l, rand.New(rand.NewSource(3)), nil, 2*chunkBytes+chunkBytes/2)
	waitFlushed(l)
	tmps := tmpFiles(t, dir)
	if len(tmps) != 1 {
		t.Fatalf("temporary files %v, want the active segment's", tmps)
	}
	if st, err := os.Stat(tmps[0]); err != nil || st.Size() != 2*chunkBytes {
		t.Fatalf("active segment's object: %v, %v; want 2 chunks", st, err)
	}
	// The process dies here: nothing more is written.
	d2, err := OpenDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tmps := tmpFiles(t, dir); len(tmps) != 0 {
		t.Fatalf("temporary files after reopening: %v", tmps)
	}
	l2 := tailLog(t, d2)
	if l2.NextOffset() != 0 || len(l2.Segments()) != 0 {
		t.Fatalf("reopened log: next %d, %d segments", l2.NextOffset(), len(l2.Segments()))
	}
	for _, b := range batches {
		if err := l2.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	waitFlushed(l2)
	checkReads(t, l2, batches)
	if err := l2.Seal(); err != nil {
		t.Fatal(err)
	}
	checkReads(t, l2, batches)
	checkObjects(t, d2)
}

// DeleteRecords into the active segment moves the log start (reads below it fail, the rest
// reads and seals), and removing the log (DeleteTopics) removes the active segment's
// temporary object with everything else.
func TestActiveSegmentDeleteRecordsAndRemove(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			l := tailLog(t, st)
			rng := rand.New(rand.NewSource(4))
			batches := fill(t, l, rng, nil, 2*chunkBytes+chunkBytes/2)
			waitFlushed(l)
			cut := len(batches) / 2
			h, _ := parseBatch(batches[cut])
			if err := l.DeleteRecordsBefore(h.Base); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Read(h.Base-1, 1); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("Read below the log start: %v", err)
			}
			if got, err := l.Read(h.Base, 1); err != nil || !bytes.Equal(got, batches[cut]) {
				t.Fatalf("Read at the log start: %d bytes, %v", len(got), err)
			}
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			batches = fill(t, l, rng, batches, 5*chunkBytes)
			waitFlushed(l)
			want := readAll(t, l)
			if len(want) == 0 || want[0].off != h.Base {
				t.Fatalf("readAll starts at %v, want offset %d", want[:min(len(want), 1)], h.Base)
			}
			if d, ok := st.(*DirStore); ok && len(tmpFiles(t, d.dir)) != 1 {
				t.Fatalf("temporary files %v, want the active segment's", tmpFiles(t, d.dir))
			}
			if err := l.Remove(); err != nil {
				t.Fatal(err)
			}
			if objs, err := st.List(""); err != nil || len(objs) != 0 {
				t.Fatalf("objects after Remove: %v, %v", objs, err)
			}
			if d, ok := st.(*DirStore); ok {
				if tmps := tmpFiles(t, d.dir); len(tmps) != 0 {
					t.Fatalf("temporary files after Remove: %v", tmps)
				}
			}
		})
	}
}

// Without a Creator (a Store that only puts whole objects) the active segment stays in
// memory until the seal, as before, and reads the same.
func TestActiveSegmentWithoutCreator(t *testing.T) {
	st := &faultStore{Store: NewMemStore(), limit: 1 << 30}
	l := tailLog(t, st)
	batches := fill(t, l, rand.New(rand.NewSource(5)), nil, 2*chunkBytes)
	if w, p, m := tailState(l); w != 0 || p != 0 || int64(m) != totalLen(batches) {
		t.Fatalf("written %d, %d pending, %d in memory; want all in memory", w, p, m)
	}
	checkReads(t, l, batches)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	checkReads(t, l, batches)
}

// Readers of the tail while it is appended to, written chunk by chunk (buffers recycled)
// and sealed: every read returns exactly the batches appended (a reused buffer a reader
// still held would show other bytes; -race sees the unsynchronized reuse).
func TestActiveSegmentConcurrentReads(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			l := tailLog(t, st)
			var mu sync.Mutex
			var batches [][]byte // appended (model updated after Append returns)
			done := make(chan struct{})
			errs := make(chan error, 4)
			var wg sync.WaitGroup
			for r := 0; r < 3; r++ {
				wg.Add(1)
				go func(r int) {
					defer wg.Done()
					rng := rand.New(rand.NewSource(int64(r)))
					for i := 0; i < 100000; i++ {
						select {
						case <-done:
							return
						default:
						}
						mu.Lock()
						n := len(batches)
						if n == 0 {
							mu.Unlock()
							continue
						}
						// Mostly the newest batches: in the chunks being written.
						k := n - 1 - rng.Intn(min(n, 60))
						want := batches[k]
						first := len(want)
						for _, b := range batches[k+1 : min(n, k+20)] {
							want = append(want[:len(want):len(want)], b...)
						}
						mu.Unlock()
						h, _ := parseBatch(want)
						// A read stops at the end of a segment (sealed, sealing, active).
						got, err := l.Read(h.Base, len(want))
						if err != nil || len(got) < first || !bytes.HasPrefix(want, got) {
							errs <- fmt.Errorf("reader %d: Read(%d) = %d bytes, %v; want batch %d (%d bytes)", r, h.Base, len(got), err, k, len(want))
							return
						}
					}
				}(r)
			}
			rng := rand.New(rand.NewSource(9))
			for l.Size() < 6*chunkBytes && len(errs) == 0 {
				v := make([]byte, 100+rng.Intn(40<<10))
				rng.Read(v)
				b := mkBatch(t, l.NextOffset(), []rec{{key: []byte("k"), value: v, ts: int64(len(batches))}}, batchOpts{})
				if err := l.Append(b); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				batches = append(batches, b)
				mu.Unlock()
				if len(batches)%100 == 0 {
					if err := l.Seal(); err != nil {
						t.Fatal(err)
					}
				}
			}
			close(done)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

// A reader holding a view of a chunk still being written (it waits in the read of the part
// before it) when the chunk is written and the tail fills on: the chunk's buffer is not
// reused under it, and the read returns the appended bytes.
func TestActiveSegmentChunkNotReusedUnderReader(t *testing.T) {
	g := &heldStore{Store: NewMemStore(), reading: make(chan struct{}, 1)}
	l := tailLog(t, g)
	rng := rand.New(rand.NewSource(6))
	batches := fill(t, l, rng, nil, chunkBytes+chunkBytes/2)
	waitFlushed(l)
	g.gate.Lock()
	batches = fill(t, l, rng, batches, 2*chunkBytes+chunkBytes/2)
	if w, p, _ := tailState(l); w != chunkBytes || p != 1 {
		g.gate.Unlock()
		t.Fatalf("written %d, %d pending; want a chunk and one", w, p)
	}
	g.reads.Lock()
	var want []byte
	for _, b := range batches {
		want = append(want, b...)
	}
	type result struct {
		b   []byte
		err error
	}
	res := make(chan result, 1)
	go func() {
		b, err := l.Read(0, len(want))
		res <- result{b, err}
	}()
	<-g.reading // the reader holds its view, waiting in the written part
	g.gate.Unlock()
	waitFlushed(l)
	fill(t, l, rng, batches, 5*chunkBytes) // fills (and cuts) new chunk buffers
	waitFlushed(l)
	g.reads.Unlock()
	r := <-res
	if r.err != nil || !bytes.Equal(r.b, want) {
		t.Fatalf("the read returned %d bytes (%v), want the %d appended when it began", len(r.b), r.err, len(want))
	}
}

// A tail that never fills a chunk (a trickle, an idle partition) opens no file: it is
// sealed with one Put, as before; the first chunk creates the active segment's object.
func TestActiveSegmentFileCreatedByFirstChunk(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	l := tailLog(t, d)
	rng := rand.New(rand.NewSource(7))
	batches := fill(t, l, rng, nil, chunkBytes/2)
	waitFlushed(l)
	if tmps := tmpFiles(t, dir); len(tmps) != 0 {
		t.Fatalf("temporary files %v for half a chunk", tmps)
	}
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	batches = fill(t, l, rng, batches, l.Size()+chunkBytes+chunkBytes/2)
	waitFlushed(l)
	if tmps := tmpFiles(t, dir); len(tmps) != 1 {
		t.Fatalf("temporary files %v, want the active segment's once a chunk is full", tmps)
	}
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	checkReads(t, l, batches)
	checkObjects(t, d)
}

// read_committed over the active segment's written part: an aborted transaction whose data
// and marker lie past the first chunk is reported (and its batches read) before and after
// the chunks are written and once sealed.
func TestActiveSegmentAbortedTxnAcrossChunks(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			l := tailLog(t, st)
			rng := rand.New(rand.NewSource(8))
			fill(t, l, rng, nil, 2*chunkBytes-150<<10)
			first := l.NextOffset()
			big := make([]byte, 200<<10)
			rng.Read(big)
			data := mkBatch(t, first, []rec{{key: []byte("t"), value: big, ts: 5}}, batchOpts{pid: 7, txn: true})
			if pos := l.Size(); pos >= 2*chunkBytes || pos+int64(len(data)) <= 2*chunkBytes {
				t.Fatalf("the transaction's batch at %d..%d does not straddle the chunk boundary", pos, pos+int64(len(data)))
			}
			marker := mkBatch(t, first+1, []rec{{ts: 6}}, batchOpts{pid: 7, txn: true, control: 1})
			for _, b := range [][]byte{data, marker} {
				if err := l.Append(b); err != nil {
					t.Fatal(err)
				}
			}
			fill(t, l, rng, nil, 3*chunkBytes)
			want := []AbortedTxn{{ProducerID: 7, FirstOffset: first, LastOffset: first + 1}}
			check := func(when string) {
				t.Helper()
				got, err := l.AbortedTxns(0, l.NextOffset())
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: AbortedTxns = %v, %v; want %v", when, got, err, want)
				}
				if b, err := l.Read(first, 1); err != nil || !bytes.Equal(b, data) {
					t.Fatalf("%s: Read(%d) = %d bytes, %v; want the transaction's batch", when, first, len(b), err)
				}
				if b, err := l.Read(first+1, 1); err != nil || !bytes.Equal(b, marker) {
					t.Fatalf("%s: Read(%d) = %d bytes, %v; want the abort marker", when, first+1, len(b), err)
				}
			}
			check("appended")
			waitFlushed(l)
			check("written")
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			check("sealed")
		})
	}
}

// Over the tail budget the data is written in small chunks (cut when the buffer fills,
// mid-batch, at multiples of dioAlign): reads, timestamps and byte estimates cross every one.
func TestActiveSegmentSmallChunksOverBudget(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.IndexIntervalBytes = 4096
			opts := smallOpts(&clock{})
			opts.MaxActiveBytes = 64 << 20
			opts.TailBudget, opts.Tails = 1, new(atomic.Int64) // always over
			l, err := Open(st, "p/", cfg, opts)
			if err != nil {
				t.Fatal(err)
			}
			batches := fill(t, l, rand.New(rand.NewSource(10)), nil, chunkBytes)
			l.mu.Lock()
			held, pend := l.active.memBytes(), len(l.active.pend)
			l.mu.Unlock()
			if held > 2*chunkBytes/4 || pend == 0 && tailWritten(l) == 0 {
				t.Fatalf("%d bytes held, %d chunks pending, want small chunks written", held, pend)
			}
			checkReads(t, l, batches)
			waitFlushed(l)
			if held := tailHeld(l); held > 2*budgetChunkBytes+40<<10*3 {
				t.Fatalf("%d bytes held once written, want at most a small buffer", held)
			}
			checkReads(t, l, batches)
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			checkReads(t, l, batches)
			checkObjects(t, st)
		})
	}
}

// Over the budget a tail fills and writes one firstDataCap buffer after another: once
// written, each goes back to the pool and the next is taken from it, not allocated; the
// free buffers go once the pool is idle.
func TestSmallChunkBuffersReused(t *testing.T) {
	d, err := OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	opts := smallOpts(&clock{})
	opts.MaxActiveBytes = 64 << 20
	opts.TailBudget, opts.Tails = 1, new(atomic.Int64) // always over
	l, err := Open(d, "p/", cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]byte, 3000)
	var batches [][]byte
	appendN := func(n int) {
		for range n {
			b := mkBatch(t, l.NextOffset(), []rec{{value: v, ts: 1000 + int64(len(batches))}}, batchOpts{})
			if err := l.Append(b); err != nil {
				t.Fatal(err)
			}
			batches = append(batches, b)
			waitFlushed(l) // as a disk that keeps up: each chunk written before the next
		}
	}
	appendN(100)
	before := smallAllocs.Load()
	appendN(1000) // about a hundred 32 KiB chunks
	if n := smallAllocs.Load() - before; n > 1 {
		t.Fatalf("%d buffers allocated for about a hundred chunks, want them taken from the pool", n)
	}
	if _, small := poolFree(); small == 0 {
		t.Fatalf("no small buffer kept free")
	}
	checkReads(t, l, batches)
	deadline := time.Now().Add(10 * time.Second)
	for {
		chunks, small := poolFree()
		if chunks == 0 && small == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle pool keeps %d chunk and %d small buffers", chunks, small)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tailWritten(l *Log) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active.written
}

func tailHeld(l *Log) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active.memBytes()
}
