package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klite/klite/broker/storage"
)

func smallOpts(c *clock) Options {
	return Options{MaxActiveBytes: 2000, Now: c.now, Logger: slog.New(slog.DiscardHandler)}
}

func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.IndexIntervalBytes = 256
	return cfg
}

// appendRecs appends n batches of 3 keyed records at timestamps from ts0, returning what
// readAll should see.
func appendRecs(t *testing.T, l *Log, n int, ts0 int64) []kv {
	t.Helper()
	var want []kv
	for i := 0; i < n; i++ {
		base := l.NextOffset()
		var recs []rec
		for j := 0; j < 3; j++ {
			k, v := fmt.Sprintf("k%d", (i*3+j)%17), fmt.Sprintf("v%d-%d", base, j)
			recs = append(recs, rec{key: []byte(k), value: []byte(v), ts: ts0 + int64(i)})
			want = append(want, kv{base + int64(j), k, v, false})
		}
		if err := l.Append(mkBatch(t, base, recs, batchOpts{})); err != nil {
			t.Fatalf("Append at %d: %v", base, err)
		}
	}
	return want
}

func checkObjects(t *testing.T, st Store) {
	t.Helper()
	objs, err := st.List("")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if _, _, ok := parseSegName("p/", o.Name); !ok {
			continue
		}
		b, err := st.Get(o.Name, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := decodeSegment(o.Name, b); err != nil {
			t.Errorf("segment does not decode: %v", err)
		}
	}
}

func TestLogAppendReadSealReopen(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{}
			l, err := Open(st, "p/", smallConfig(), smallOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			want := appendRecs(t, l, 120, 1000)
			if got := readAll(t, l); !reflect.DeepEqual(got, want) {
				t.Fatalf("readAll = %d records, want %d", len(got), len(want))
			}
			if n := len(l.Segments()); n < 5 {
				t.Fatalf("%d sealed segments, want several (MaxActiveBytes 2000)", n)
			}
			// Every offset reads back the batch holding it, first.
			for off := int64(0); off < l.NextOffset(); off += 7 {
				b, err := l.Read(off, 1)
				if err != nil {
					t.Fatal(err)
				}
				h, err := parseBatch(b)
				if err != nil || h.Base > off || h.Last < off || h.Size != len(b) {
					t.Fatalf("Read(%d, 1) = batch %d..%d (%d of %d bytes), %v", off, h.Base, h.Last, h.Size, len(b), err)
				}
			}
			if b, err := l.Read(l.NextOffset(), 100); err != nil || len(b) != 0 {
				t.Errorf("Read at the log end = %d bytes, %v", len(b), err)
			}
			checkObjects(t, st)

			durable := l.DurableOffset()
			if durable == l.NextOffset() || durable == 0 {
				t.Fatalf("durable %d, next %d: want a tail in memory", durable, l.NextOffset())
			}
			l2, err := Open(st, "p/", smallConfig(), smallOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			if l2.NextOffset() != durable || l2.DurableOffset() != durable {
				t.Fatalf("after reopen next %d durable %d, want %d", l2.NextOffset(), l2.DurableOffset(), durable)
			}
			// The WAL replays from the durable offset: batches below are ignored.
			for _, b := range batchesOf(t, l, 0) {
				if err := l2.Append(b); err != nil {
					t.Fatal(err)
				}
			}
			if got := readAll(t, l2); !reflect.DeepEqual(got, want) {
				t.Fatalf("after reopen and replay: %d records, want %d", len(got), len(want))
			}
		})
	}
}

// batchesOf returns every batch of l from offset from, one slice each.
func batchesOf(t *testing.T, l *Log, from int64) [][]byte {
	var out [][]byte
	for off := from; off < l.NextOffset(); {
		b, err := l.Read(off, 1)
		if err != nil || len(b) == 0 {
			t.Fatalf("Read(%d): %d bytes, %v", off, len(b), err)
		}
		h, _ := parseBatch(b)
		out = append(out, b[:h.Size])
		off = h.Last + 1
	}
	return out
}

func TestLogAppendRejectsOverlapAndBadBatches(t *testing.T) {
	l, err := Open(NewMemStore(), "p/", smallConfig(), smallOpts(&clock{}))
	if err != nil {
		t.Fatal(err)
	}
	b := mkBatch(t, 0, []rec{{key: []byte("a"), value: []byte("1")}, {key: []byte("b"), value: []byte("2")}}, batchOpts{})
	if err := l.Append(b); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(mkBatch(t, 1, []rec{{key: []byte("a"), value: []byte("1")}, {value: []byte("x")}}, batchOpts{})); err == nil {
		t.Error("a batch straddling the log end was accepted")
	}
	if err := l.Append(mkBatch(t, 3, []rec{{key: []byte("a"), value: []byte("1")}}, batchOpts{})); err == nil {
		t.Error("a batch leaving a gap after the log end was accepted")
	}
	for _, bad := range [][]byte{nil, b[:30], b[:len(b)-1]} {
		if err := l.Append(bad); err == nil {
			t.Errorf("a %d-byte batch was accepted", len(bad))
		}
	}
	if l.NextOffset() != 2 {
		t.Errorf("next = %d, want 2", l.NextOffset())
	}
}

func TestLogSegmentMsRoll(t *testing.T) {
	c := &clock{}
	cfg := smallConfig()
	cfg.SegmentMs = 1000
	st := NewMemStore()
	l, err := Open(st, "p/", cfg, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	appendRecs(t, l, 3, 0) // record timestamps 0, 1, 2
	if n := len(l.Segments()); n != 0 {
		t.Fatalf("%d segments before segment.ms", n)
	}
	// As Kafka (LogSegment.timeWaitedForRoll), segment.ms counts from the first batch's
	// max timestamp to the new batch's: the wall clock moving on rolls nothing ...
	c.advance(5000)
	appendRecs(t, l, 1, 0)
	if n := len(l.Segments()); n != 0 {
		t.Fatalf("%d segments after the clock moved on, records stamped close together", n)
	}
	// ... a batch stamped more than segment.ms after the first does.
	appendRecs(t, l, 1, 1001)
	if s := l.Segments(); len(s) != 1 || s[0].Base != 0 || s[0].Next != 12 {
		t.Fatalf("segments after segment.ms: %+v, want one 0..11", s)
	}
}

func TestLogOffsetForTimestamp(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{}
			l, err := Open(st, "p/", smallConfig(), smallOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			// Timestamps go up and down; record-level lookups must find the first offset
			// with a timestamp at or after the target.
			var all []kv
			var tss []int64
			for i := 0; i < 150; i++ {
				base := l.NextOffset()
				var recs []rec
				for j := 0; j < 2; j++ {
					ts := int64(1000 + (i*37+j*11)%400 + i*3)
					recs = append(recs, rec{key: []byte("k"), value: []byte("v"), ts: ts})
					tss = append(tss, ts)
					all = append(all, kv{off: base + int64(j)})
				}
				if err := l.Append(mkBatch(t, base, recs, batchOpts{codec: int8(i % 2 * 4)})); err != nil {
					t.Fatal(err)
				}
			}
			check := func(l *Log) {
				for target := int64(900); target < 1900; target += 13 {
					wantOff, found := int64(-1), false
					for i, ts := range tss {
						if ts >= target && all[i].off >= l.LogStartOffset() {
							wantOff, found = all[i].off, true
							break
						}
					}
					off, ts, ok, err := l.OffsetForTimestamp(target)
					if err != nil || ok != found || ok && (off != wantOff || ts < target || ts != tss[off]) {
						t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d, %v", target, off, ts, ok, err, wantOff, found)
					}
				}
			}
			check(l)
			// MAX_TIMESTAMP: the first record holding the largest timestamp.
			maxOff, maxTS := int64(-1), int64(-1)
			for i, ts := range tss {
				if ts > maxTS {
					maxOff, maxTS = all[i].off, ts
				}
			}
			if off, ts, ok, err := l.MaxTimestamp(); !ok || err != nil || off != maxOff || ts != maxTS {
				t.Fatalf("MaxTimestamp = %d, %d, %v, %v; want %d, %d", off, ts, ok, err, maxOff, maxTS)
			}
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			l2, err := Open(st, "p/", smallConfig(), smallOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			check(l2)
			if off, ts, ok, err := l2.MaxTimestamp(); !ok || err != nil || off != maxOff || ts != maxTS {
				t.Fatalf("after reopen MaxTimestamp = %d, %d, %v, %v; want %d, %d", off, ts, ok, err, maxOff, maxTS)
			}
		})
	}
}

func TestLogAbortedTxns(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{}
			l, err := Open(st, "p/", smallConfig(), smallOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			r := []rec{{key: []byte("k"), value: make([]byte, 300), ts: 1}}
			app := func(o batchOpts) int64 {
				base := l.NextOffset()
				if err := l.Append(mkBatch(t, base, r, o)); err != nil {
					t.Fatal(err)
				}
				return base
			}
			first7 := app(batchOpts{pid: 7, txn: true})
			first8 := app(batchOpts{pid: 8, txn: true})
			for i := 0; i < 10; i++ { // several segments between start and markers
				app(batchOpts{pid: 7, txn: true})
				app(batchOpts{})
			}
			// Seal with pid 7 and 8 still open, then reopen: the open table is restored.
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			l, err = Open(st, "p/", smallConfig(), smallOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			abort7 := app(batchOpts{pid: 7, txn: true, control: 1})
			commit8 := app(batchOpts{pid: 8, txn: true, control: 2})
			first9 := app(batchOpts{pid: 9, txn: true})
			abort9 := app(batchOpts{pid: 9, txn: true, control: 1})
			_ = commit8
			_ = first8
			want := []AbortedTxn{{7, first7, abort7}, {9, first9, abort9}}
			check := func(l *Log) {
				got, err := l.AbortedTxns(0, l.NextOffset())
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("AbortedTxns = %v, %v; want %v", got, err, want)
				}
				got, _ = l.AbortedTxns(abort7+1, l.NextOffset())
				if !reflect.DeepEqual(got, want[1:]) {
					t.Fatalf("AbortedTxns from %d = %v, want %v", abort7+1, got, want[1:])
				}
				got, _ = l.AbortedTxns(0, first7+1)
				if !reflect.DeepEqual(got, want[:1]) {
					t.Fatalf("AbortedTxns up to %d = %v, want %v", first7+1, got, want[:1])
				}
			}
			check(l)
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			l, err = Open(st, "p/", smallConfig(), smallOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			check(l)
		})
	}
}

// Transactions in later segments, with no transaction open at the end of the first ones,
// are still found for a range that reaches them.
func TestLogAbortedTxnsAcrossClosedSegments(t *testing.T) {
	c := &clock{}
	l, err := Open(NewMemStore(), "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	r := []rec{{key: []byte("k"), value: make([]byte, 300), ts: 1}}
	app := func(o batchOpts) int64 {
		base := l.NextOffset()
		if err := l.Append(mkBatch(t, base, r, o)); err != nil {
			t.Fatal(err)
		}
		return base
	}
	var want []AbortedTxn
	for i := 0; i < 4; i++ {
		first := app(batchOpts{pid: int64(i + 1), txn: true})
		want = append(want, AbortedTxn{int64(i + 1), first, app(batchOpts{pid: int64(i + 1), txn: true, control: 1})})
		for j := 0; j < 8; j++ {
			app(batchOpts{})
		}
	}
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	if n := len(l.Segments()); n < 4 {
		t.Fatalf("%d segments", n)
	}
	got, err := l.AbortedTxns(0, l.NextOffset())
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("AbortedTxns = %v, %v; want %v", got, err, want)
	}
	got, _ = l.AbortedTxns(want[1].LastOffset, want[2].FirstOffset+1)
	if !reflect.DeepEqual(got, want[1:3]) {
		t.Fatalf("AbortedTxns(%d, %d) = %v, want %v", want[1].LastOffset, want[2].FirstOffset+1, got, want[1:3])
	}
}

func TestLogSealFailureKeepsTheTail(t *testing.T) {
	mem := NewMemStore()
	fs := &faultStore{Store: mem, limit: 0}
	l, err := Open(fs, "p/", smallConfig(), smallOpts(&clock{}))
	if err != nil {
		t.Fatal(err)
	}
	want := appendRecs(t, l, 3, 0)
	if err := l.Seal(); !errors.Is(err, errInjected) {
		t.Fatalf("Seal = %v, want the injected error", err)
	}
	want = append(want, appendRecs(t, l, 2, 0)...)
	if got := readAll(t, l); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a failed seal: %v, want %v", got, want)
	}
	fs.limit = 100
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l); !reflect.DeepEqual(got, want) || l.DurableOffset() != l.NextOffset() {
		t.Fatalf("after sealing: %v (durable %d), want %v", got, l.DurableOffset(), want)
	}
}

// Kafka's timestamp lookup scans control batches too (FileRecords.searchForTimestamp): a
// ListOffsets by timestamp later than the last data record but not later than a commit
// marker finds the marker's offset, in the tail and in a sealed segment.
func TestLogOffsetForTimestampFindsControlBatch(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{}
			l, err := Open(st, "p/", smallConfig(), smallOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			data := mkBatch(t, 0, []rec{{key: []byte("k"), value: []byte("v"), ts: 1000}, {key: []byte("k"), value: []byte("w"), ts: 1100}}, batchOpts{pid: 7, txn: true})
			commit := mkBatch(t, 2, []rec{{ts: 2000}}, batchOpts{pid: 7, txn: true, control: 2})
			for _, b := range [][]byte{data, commit} {
				if err := l.Append(b); err != nil {
					t.Fatal(err)
				}
			}
			check := func(where string) {
				for _, c := range []struct {
					target, off, ts int64
					ok              bool
				}{{1050, 1, 1100, true}, {1500, 2, 2000, true}, {2000, 2, 2000, true}, {2001, 0, 0, false}} {
					off, ts, ok, err := l.OffsetForTimestamp(c.target)
					if err != nil || ok != c.ok || ok && (off != c.off || ts != c.ts) {
						t.Fatalf("%s: OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d, %d, %v", where, c.target, off, ts, ok, err, c.off, c.ts, c.ok)
					}
				}
			}
			check("tail")
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			check("sealed")
		})
	}
}

// A read whose maxBytes (plus the index interval) is smaller than the first batch still
// returns that batch whole from a sealed segment, as Kafka returns the first batch of a
// fetch whatever its size (the scan once read only the window and called the batch
// malformed).
func TestLogReadBatchLargerThanWindow(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			l, err := Open(st, "p/", smallConfig(), smallOpts(&clock{}))
			if err != nil {
				t.Fatal(err)
			}
			big := mkBatch(t, 0, []rec{{key: []byte("k"), value: make([]byte, 32<<10), ts: 1}}, batchOpts{})
			if err := l.Append(big); err != nil {
				t.Fatal(err)
			}
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			for _, max := range []int{1, 100, len(big) - 1} {
				b, err := l.Read(0, max)
				if err != nil || !bytes.Equal(b, big) {
					t.Fatalf("Read(0, %d) = %d bytes, %v; want the %d-byte batch", max, len(b), err, len(big))
				}
			}
		})
	}
}

// gatedStore holds every Put of a segment until gate is closed (a slow disk).
type gatedStore struct {
	Store
	gate    chan struct{}
	started chan struct{} // gets a value when a held Put starts
}

func (g *gatedStore) Put(name string, data []byte) error {
	if strings.HasSuffix(name, segSuffix) {
		select {
		case g.started <- struct{}{}:
		default:
		}
		<-g.gate
	}
	return g.Store.Put(name, data)
}

// With AsyncRoll, an append that rolls while the previous seal is still being written does
// not wait for it: the active segment takes batches up to rollSlack x MaxActiveBytes
// meanwhile (appends waiting at every roll for the previous fsync halved throughput). Once
// the seal is done the next append rolls the grown segment, and nothing is lost.
func TestLogAsyncRollDoesNotWaitForRunningSeal(t *testing.T) {
	g := &gatedStore{Store: NewMemStore(), gate: make(chan struct{}), started: make(chan struct{}, 1)}
	opts := smallOpts(&clock{})
	opts.MaxActiveBytes, opts.AsyncRoll = 64<<10, true
	l, err := Open(g, "p/", smallConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 8<<10)
	appendN := func(n int) {
		for i := 0; i < n; i++ {
			if err := l.Append(mkBatch(t, l.NextOffset(), []rec{{key: []byte("k"), value: value, ts: 1}}, batchOpts{})); err != nil {
				t.Error(err)
				return
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		appendN(7) // fills the first segment (64 KiB)
		appendN(1) // rolls: its seal is held by the gate
		<-g.started
		appendN(20) // 160 KiB more, within 4 x 64 KiB: must not wait for the held seal
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(g.gate)
		t.Fatal("appends waited for the running seal below rollSlack x MaxActiveBytes")
	}
	if segs := l.Segments(); len(segs) != 0 {
		t.Fatalf("sealed %+v while the store was held", segs)
	}
	close(g.gate)
	appendN(1) // rolls the grown segment once the first seal is done
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l); len(got) != 29 {
		t.Fatalf("read %d records, want 29", len(got))
	}
	if segs := l.Segments(); len(segs) < 2 || segs[len(segs)-1].Next != 29 {
		t.Fatalf("segments %+v, want at least 2 ending at 29", segs)
	}
}

// A segment whose footer (index sections or trailer) was damaged at rest is refused at Open
// as corruption naming the object, whichever byte of the footer changed: Open used to read
// only the trailer, without its CRC, so a flipped index byte made reads fail later and a
// flipped trailer field (timestamps, offsets) was believed (found by the chaos corrupt fault).
func TestOpenRefusesDamagedFooter(t *testing.T) {
	c := &clock{}
	st := NewMemStore()
	l, err := Open(st, "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	appendRecs(t, l, 40, 1000)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	objs, err := st.List("p/")
	if err != nil {
		t.Fatal(err)
	}
	var seg Object
	for _, o := range objs {
		if strings.HasSuffix(o.Name, ".seg") {
			seg = o
			break
		}
	}
	orig, err := st.Get(seg.Name, 0, -1)
	if err != nil || len(orig) < trailerLen {
		t.Fatal(seg, err)
	}
	s, err := decodeTrailer(orig[len(orig)-trailerLen:], int64(len(orig)))
	if err != nil {
		t.Fatal(err)
	}
	if s.nOff < 2 {
		t.Fatalf("want an index of several entries, got %d", s.nOff)
	}
	// Every footer byte: the first index entries, each trailer field (the CRC included).
	for at := s.dataLen; at < int64(len(orig)); at++ {
		bad := append([]byte(nil), orig...)
		bad[at] ^= 0x10
		if err := st.Put(seg.Name, bad); err != nil {
			t.Fatal(err)
		}
		_, err := Open(st, "p/", smallConfig(), smallOpts(c))
		var ce *storage.CorruptError
		if !errors.As(err, &ce) || ce.Path != seg.Name {
			t.Fatalf("byte %d of %d (footer from %d) flipped: Open = %v, want a CorruptError naming %s", at, len(orig), s.dataLen, err, seg.Name)
		}
	}
	if err := st.Put(seg.Name, orig); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(st, "p/", smallConfig(), smallOpts(c)); err != nil {
		t.Fatalf("restored: %v", err)
	}
}

// A record batch damaged at rest in a sealed segment is never served: a read returns the
// intact batches before it, a read at it fails with a CorruptError naming the segment, and
// reads after it are served (found by the chaos corrupt fault's design: a flipped data byte
// went out as is, and a client rejects the whole fetch over one bad CRC).
func TestReadNeverServesDamagedBatch(t *testing.T) {
	c := &clock{}
	st := NewMemStore()
	l, err := Open(st, "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	appendRecs(t, l, 12, 1000)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	objs, _ := st.List("p/")
	var name string
	for _, o := range objs {
		if strings.HasSuffix(o.Name, ".seg") {
			name = o.Name
		}
	}
	data, err := st.Get(name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	// The 6th batch: flip a byte of its records.
	var bases []int64
	pos, victim := 0, -1
	for i := 0; i < 12; i++ {
		h, err := parseBatch(data[pos:])
		if err != nil {
			t.Fatal(err)
		}
		bases = append(bases, h.Base)
		if i == 5 {
			victim = pos + h.Size - 2
		}
		pos += h.Size
	}
	data[victim] ^= 0x40
	if err := st.Put(name, data); err != nil {
		t.Fatal(err)
	}
	l, err = Open(st, "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err) // the footer is intact: the damage shows only when the batch is read
	}
	got, err := l.Read(0, 1<<20)
	if err != nil {
		t.Fatalf("read from 0: %v", err)
	}
	n := 0
	for p := 0; p < len(got); n++ {
		h, err := parseBatch(got[p:])
		if err != nil || !checkBatchCRC(got[p:], &h) {
			t.Fatalf("batch %d served with a bad CRC or malformed: %v", n, err)
		}
		p += h.Size
	}
	if n != 5 {
		t.Fatalf("read from 0 served %d batches, want the 5 before the damaged one", n)
	}
	_, err = l.Read(bases[5], 1<<20)
	var ce *storage.CorruptError
	if !errors.As(err, &ce) || ce.Path != name {
		t.Fatalf("read at the damaged batch: %v, want a CorruptError naming %s", err, name)
	}
	if got, err := l.Read(bases[6], 1<<20); err != nil || len(got) == 0 {
		t.Fatalf("read after the damaged batch: %d bytes, %v", len(got), err)
	}
}

// countingFailStore fails every Put and counts the attempts (a full disk).
type countingFailStore struct {
	Store
	mu   sync.Mutex
	puts int
	fail bool
}

func (c *countingFailStore) Put(name string, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.puts++
	if c.fail {
		return errInjected
	}
	return c.Store.Put(name, data)
}

// After a failed seal, appends do not roll (and try to write the whole tail again) for
// sealRetryMs: on a full disk each attempt took the space the WAL needed. Past it, or once
// a seal succeeds, rolls resume; nothing appended meanwhile is lost.
func TestLogFailedSealBacksOffRolls(t *testing.T) {
	c := &clock{}
	st := &countingFailStore{Store: NewMemStore(), fail: true}
	opts := smallOpts(c) // MaxActiveBytes 2000, synchronous seals
	l, err := Open(st, "p/", smallConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	add := func() error {
		return l.Append(mkBatch(t, l.NextOffset(), []rec{{key: []byte("k"), value: make([]byte, 300), ts: 1}}, batchOpts{}))
	}
	var failed int
	for i := 0; i < 10 && failed == 0; i++ {
		if err := add(); err != nil {
			failed = st.puts
		}
	}
	if failed != 1 {
		t.Fatalf("first failed roll after %d seal attempts, want 1", failed)
	}
	for i := 0; i < 5; i++ { // within the back-off: no roll, no seal attempt
		if err := add(); err != nil {
			t.Fatalf("append within the back-off: %v", err)
		}
	}
	if st.puts != 1 {
		t.Fatalf("%d seal attempts within the back-off, want 1", st.puts)
	}
	st.mu.Lock()
	st.fail = false
	st.mu.Unlock()
	c.advance(sealRetryMs + 1)
	if err := add(); err != nil || st.puts != 2 {
		t.Fatalf("append after the back-off: %v, %d seal attempts; want a roll (2)", err, st.puts)
	}
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	if got, next := readAll(t, l), l.NextOffset(); int64(len(got)) != next || next == 0 {
		t.Fatalf("read %d records of %d", len(got), next)
	}
}

// With AsyncRoll, a roll Kafka makes (segment.ms passed) keeps its boundary even while the
// previous seal is still being written: the batch waits for that seal and starts a segment
// of its own, rather than joining the active one (which DeleteRecords below it could then
// not delete whole: the delete-records-reclaims scenario).
func TestLogAsyncRollKeepsSegmentMsBoundary(t *testing.T) {
	g := &gatedStore{Store: NewMemStore(), gate: make(chan struct{}), started: make(chan struct{}, 1)}
	opts := smallOpts(&clock{})
	opts.AsyncRoll = true
	cfg := smallConfig()
	cfg.SegmentMs = 1000
	l, err := Open(g, "p/", cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	appendAt := func(ts int64) error {
		return l.Append(mkBatch(t, l.NextOffset(), []rec{{key: []byte("k"), value: []byte("v"), ts: ts}}, batchOpts{}))
	}
	if err := appendAt(0); err != nil {
		t.Fatal(err)
	}
	if err := appendAt(10_000); err != nil { // rolls: the seal of [0, 1) is held by the gate
		t.Fatal(err)
	}
	<-g.started
	done := make(chan error, 1)
	go func() { done <- appendAt(20_000) }() // segment.ms passed again
	select {
	case err := <-done: // the old behaviour: joined the active segment at once
		close(g.gate)
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(300 * time.Millisecond): // waiting for the held seal, as it must
		close(g.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	segs := l.Segments()
	if len(segs) != 3 || segs[1].Base != 1 || segs[1].Next != 2 || segs[2].Base != 2 {
		t.Fatalf("segments %+v, want one per batch ([0,1) [1,2) [2,3))", segs)
	}
}

// noList is a Store that cannot be listed (S3 out of reach, say).
type noList struct{ Store }

func (noList) List(string) ([]Object, error) { return nil, errors.New("listing refused") }

// A new partition's Log opens without listing the Store, takes appends and seals; opening
// it again afterwards finds what it sealed.
func TestOpenNewListsNothing(t *testing.T) {
	mem := NewMemStore()
	c := &clock{}
	if _, err := Open(noList{mem}, "p/", smallConfig(), smallOpts(c)); err == nil {
		t.Fatal("Open listed a Store that refuses listing")
	}
	l := OpenNew(noList{mem}, "p/", smallConfig(), smallOpts(c))
	if l.NextOffset() != 0 || l.LogStartOffset() != 0 || len(l.Segments()) != 0 {
		t.Fatalf("new log: next %d, start %d, %d segments", l.NextOffset(), l.LogStartOffset(), len(l.Segments()))
	}
	want := appendRecs(t, l, 5, 0)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(mem, "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l2); !reflect.DeepEqual(got, want) {
		t.Fatalf("reopened:\n got %v\nwant %v", got, want)
	}
}
