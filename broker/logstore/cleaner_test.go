package logstore

import (
	"fmt"
	"reflect"
	"testing"

	"golang.org/x/time/rate"
)

func compactConfig() Config {
	cfg := smallConfig()
	cfg.Delete, cfg.Compact = false, true
	cfg.DeleteRetentionMs = 1000
	return cfg
}

// latestPerKey is what a full compaction must leave of want (tombstones included).
func latestPerKey(want []kv) []kv {
	last := map[string]int64{}
	for _, r := range want {
		if !r.ctl {
			last[r.key] = r.off
		}
	}
	var out []kv
	for _, r := range want {
		if r.ctl || last[r.key] == r.off {
			out = append(out, r)
		}
	}
	return out
}

// appendKeyed appends n batches of 4 records with keys from 10, mixing codecs.
func appendKeyed(t *testing.T, l *Log, n int, ts int64, tombstone func(i, j int) bool) []kv {
	t.Helper()
	var want []kv
	for i := 0; i < n; i++ {
		base := l.NextOffset()
		var recs []rec
		for j := 0; j < 4; j++ {
			k := fmt.Sprintf("key%d", (i*4+j*3)%10)
			r := rec{key: []byte(k), value: []byte(fmt.Sprintf("v%d", base+int64(j))), ts: ts}
			v := string(r.value)
			if tombstone != nil && tombstone(i, j) {
				r.value, v = nil, "<nil>"
			}
			recs = append(recs, r)
			want = append(want, kv{base + int64(j), k, v, false})
		}
		if err := l.Append(mkBatch(t, base, recs, batchOpts{codec: int8(i % 5)})); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

func TestCleanKeepsLatestPerKeyWithGaps(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{}
			l, err := Open(st, "p/", compactConfig(), smallOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			want := appendKeyed(t, l, 60, 0, nil)
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			active := appendKeyed(t, l, 2, 0, nil) // stays in the active segment, untouched
			next := l.NextOffset()
			st1, err := l.Clean()
			if err != nil || st1.NothingToDo || st1.RecordsRemoved == 0 {
				t.Fatalf("Clean = %+v, %v", st1, err)
			}
			got := readAll(t, l)
			wantAfter := append(latestPerKey(want), active...)
			if !reflect.DeepEqual(got, wantAfter) {
				t.Fatalf("after compaction:\n got %v\nwant %v", got, wantAfter)
			}
			if l.NextOffset() != next || st1.CleanedUpTo != l.DurableOffset() {
				t.Fatalf("next %d (want %d), cleaned up to %d (durable %d)", l.NextOffset(), next, st1.CleanedUpTo, l.DurableOffset())
			}
			checkObjects(t, st)
			// Idempotent, and durable.
			if s, err := l.Clean(); err != nil || !s.NothingToDo {
				t.Fatalf("second Clean = %+v, %v", s, err)
			}
			if err := l.Seal(); err != nil {
				t.Fatal(err)
			}
			l2, err := Open(st, "p/", compactConfig(), smallOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, l2); !reflect.DeepEqual(got, wantAfter) {
				t.Fatalf("after reopen:\n got %v\nwant %v", got, wantAfter)
			}
			objs, _ := st.List("p/")
			if len(objs) != len(l2.Segments())+1 {
				t.Errorf("%d objects for %d segments and a checkpoint: replaced segments left behind", len(objs), len(l2.Segments()))
			}
		})
	}
}

func TestCleanTombstonesAfterDeleteRetention(t *testing.T) {
	c := &clock{}
	c.advance(1_000_000)
	st := NewMemStore()
	l, err := Open(st, "p/", compactConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	want := appendKeyed(t, l, 20, 0, nil)
	// Delete key3 and key7 with tombstones in the last batch.
	want = append(want, appendKeyed(t, l, 1, 0, func(i, j int) bool { return j < 2 })...)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	latest := latestPerKey(want)
	if got := readAll(t, l); !reflect.DeepEqual(got, latest) {
		t.Fatalf("first cleaning must keep tombstones:\n got %v\nwant %v", got, latest)
	}
	c.advance(999)
	if s, _ := l.Clean(); !s.NothingToDo {
		t.Fatalf("cleaned again before delete.retention.ms: %+v", s)
	}
	c.advance(1)
	if s, err := l.Clean(); err != nil || s.NothingToDo {
		t.Fatalf("tombstones due: Clean = %+v, %v", s, err)
	}
	var noTomb []kv
	for _, r := range latest {
		if r.value != "<nil>" {
			noTomb = append(noTomb, r)
		}
	}
	if len(noTomb) == len(latest) {
		t.Fatal("test has no tombstones")
	}
	if got := readAll(t, l); !reflect.DeepEqual(got, noTomb) {
		t.Fatalf("after delete.retention.ms:\n got %v\nwant %v", got, noTomb)
	}
}

func TestCleanDirtyRatioAndCompactionLags(t *testing.T) {
	c := &clock{}
	cfg := compactConfig()
	cfg.MinCompactionLagMs = 5000
	l, err := Open(NewMemStore(), "p/", cfg, smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	appendKeyed(t, l, 40, 0, nil)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	if s, _ := l.Clean(); !s.NothingToDo {
		t.Fatalf("cleaned records younger than min.compaction.lag.ms: %+v", s)
	}
	c.advance(5000)
	if s, err := l.Clean(); err != nil || s.NothingToDo {
		t.Fatalf("Clean after the lag = %+v, %v", s, err)
	}
	// A little dirty data: below min.cleanable.dirty.ratio nothing happens...
	appendKeyed(t, l, 1, c.now(), nil)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	c.advance(5000)
	if s, _ := l.Clean(); !s.NothingToDo {
		t.Fatalf("cleaned below the dirty ratio: %+v", s)
	}
	// ...until max.compaction.lag.ms forces it.
	cfg.MaxCompactionLagMs = 1000
	l.SetConfig(cfg)
	if s, err := l.Clean(); err != nil || s.NothingToDo || s.DirtyRatio >= 0.5 {
		t.Fatalf("max.compaction.lag.ms did not force cleaning: %+v, %v", s, err)
	}
}

func TestCleanTransactions(t *testing.T) {
	c := &clock{}
	st := NewMemStore()
	l, err := Open(st, "p/", compactConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	var want []kv
	app := func(recs []rec, o batchOpts) {
		base := l.NextOffset()
		if err := l.Append(mkBatch(t, base, recs, o)); err != nil {
			t.Fatal(err)
		}
		if o.control == 0 {
			for j, r := range recs {
				want = append(want, kv{base + int64(j), string(r.key), string(r.value), false})
			}
		} else {
			want = append(want, kv{base, "", "", true})
		}
	}
	r := func(k, v string) []rec { return []rec{{key: []byte(k), value: []byte(v)}} }
	app(r("a", "a0"), batchOpts{})
	app(r("a", "aborted"), batchOpts{pid: 7, txn: true})
	app(r("b", "aborted"), batchOpts{pid: 7, txn: true})
	app(r("x", "x"), batchOpts{control: 1, pid: 7, txn: true}) // abort
	app(r("c", "c-txn"), batchOpts{pid: 8, txn: true})
	app(r("x", "x"), batchOpts{control: 2, pid: 8, txn: true}) // commit
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	app(r("d", "open"), batchOpts{pid: 9, txn: true}) // still open: uncleanable
	app(r("a", "a-late"), batchOpts{})
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, l)
	// Below pid 9's open transaction: aborted records gone, both markers kept (within
	// delete.retention.ms), a0 kept (its newer value is beyond the cleanable range).
	wantNow := []kv{want[0], want[3], want[4], want[5], want[6], want[7]}
	for i := range got {
		got[i].key, got[i].value = keyIfData(got[i]), valueIfData(got[i])
	}
	for i := range wantNow {
		wantNow[i].key, wantNow[i].value = keyIfData(wantNow[i]), valueIfData(wantNow[i])
	}
	if !reflect.DeepEqual(got, wantNow) {
		t.Fatalf("after cleaning:\n got %v\nwant %v", got, wantNow)
	}
	if ab, _ := l.AbortedTxns(0, l.NextOffset()); len(ab) != 1 || ab[0].ProducerID != 7 {
		t.Fatalf("aborted transactions after cleaning: %v", ab)
	}
	// Commit pid 9, let delete.retention.ms pass: the empty aborted transaction's marker
	// goes; the committed ones stay while they hold records.
	app(r("x", "x"), batchOpts{control: 2, pid: 9, txn: true})
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	c.advance(2000)
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	c.advance(2000)
	if _, err := l.Clean(); err != nil {
		t.Fatal(err)
	}
	got = readAll(t, l)
	for i := range got {
		got[i].key, got[i].value = keyIfData(got[i]), valueIfData(got[i])
	}
	wantNow = nil
	for _, i := range []int{4, 5, 6, 7, 8} { // c-txn, commit 8, d, a-late, commit 9
		w := want[i]
		w.key, w.value = keyIfData(w), valueIfData(w)
		wantNow = append(wantNow, w)
	}
	if !reflect.DeepEqual(got, wantNow) {
		t.Fatalf("after delete.retention.ms:\n got %v\nwant %v", got, wantNow)
	}
}

func keyIfData(r kv) string {
	if r.ctl {
		return ""
	}
	return r.key
}

func valueIfData(r kv) string {
	if r.ctl {
		return ""
	}
	return r.value
}

// The cleaner draws every byte it reads and writes from Options.CleanerLimit.
func TestCleanIsRateLimited(t *testing.T) {
	c := &clock{}
	opts := smallOpts(c)
	// One byte per second with a huge burst: the tokens taken are what the cleaner asked
	// for, without waiting.
	opts.CleanerLimit = rate.NewLimiter(1, 1<<40)
	l, err := Open(NewMemStore(), "p/", compactConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	appendKeyed(t, l, 40, 0, nil)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	s, err := l.Clean()
	if err != nil || s.NothingToDo {
		t.Fatalf("Clean = %+v, %v", s, err)
	}
	taken := float64(1<<40) - opts.CleanerLimit.Tokens()
	if want := float64(s.BytesRead + s.BytesWritten); taken < want-1 || s.BytesWritten == 0 {
		t.Fatalf("limiter gave %.0f bytes; the cleaner read %d and wrote %d", taken, s.BytesRead, s.BytesWritten)
	}
}
