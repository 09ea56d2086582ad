package logstore

import (
	"errors"
	"reflect"
	"testing"
)

// Crash tests: a faultStore lets the first k mutations (Put, Delete) through and fails
// the rest, which is what the Store looks like after the process stops at that point.
// For every k up to the number of mutations the job makes, the log is reopened on what
// the store holds and must have lost nothing.

func (m *MemStore) clone() *MemStore {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMemStore()
	for k, v := range m.objs {
		c.objs[k] = v
	}
	return c
}

// mutations counts the Puts and Deletes job makes on a copy of base.
func mutations(t *testing.T, base *MemStore, cfg Config, opts Options, job func(*Log) error) int {
	fs := &faultStore{Store: base.clone(), limit: 1 << 30}
	l, err := Open(fs, "p/", cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := job(l); err != nil {
		t.Fatal(err)
	}
	return fs.done
}

// TestCrashDuringRoll: appends with rolls, stopped after each step; replaying the WAL
// (every batch) on the reopened log gives back everything.
func TestCrashDuringRoll(t *testing.T) {
	c := &clock{}
	var batches [][]byte
	var want []kv
	{
		l, _ := Open(NewMemStore(), "p/", smallConfig(), smallOpts(c))
		want = appendRecs(t, l, 120, 0)
		batches = batchesOf(t, l, 0)
	}
	for k := 0; k < 1000; k++ {
		mem := NewMemStore()
		fs := &faultStore{Store: mem, limit: k}
		l, err := Open(fs, "p/", smallConfig(), smallOpts(c))
		if err != nil {
			t.Fatal(err)
		}
		var acked int // batches appended before the "crash"
		for _, b := range batches {
			if err := l.Append(b); err != nil {
				if !errors.Is(err, errInjected) {
					t.Fatal(err)
				}
				break
			}
			acked++
		}
		crashed := acked < len(batches)
		l2, err := Open(mem, "p/", smallConfig(), smallOpts(c))
		if err != nil {
			t.Fatalf("k=%d: reopen: %v", k, err)
		}
		checkObjects(t, mem)
		durable := l2.DurableOffset()
		if got := readAll(t, l2); len(got) > 0 && !reflect.DeepEqual(got, want[:len(got)]) || int64(len(got)) != durable {
			t.Fatalf("k=%d: reopened log holds %d records (durable %d), not a prefix", k, len(got), durable)
		}
		for _, b := range batches {
			if err := l2.Append(b); err != nil {
				t.Fatalf("k=%d: replay: %v", k, err)
			}
		}
		if got := readAll(t, l2); !reflect.DeepEqual(got, want) {
			t.Fatalf("k=%d: after replay %d records, want %d", k, len(got), len(want))
		}
		if !crashed {
			if k < 5 {
				t.Fatalf("only %d rolls", k)
			}
			return
		}
	}
	t.Fatal("no run without a crash")
}

// TestCrashDuringCompaction: the reopened log holds either the old or the new version of
// every group, never both and never neither; cleaning again gives the reference result.
func TestCrashDuringCompaction(t *testing.T) {
	c := &clock{}
	c.advance(1_000_000)
	cfg := compactConfig()
	base := NewMemStore()
	var original []kv
	{
		l, _ := Open(base, "p/", cfg, smallOpts(c))
		original = appendKeyed(t, l, 60, 0, func(i, j int) bool { return i%7 == 3 && j == 0 })
		if err := l.Seal(); err != nil {
			t.Fatal(err)
		}
	}
	clean := func(l *Log) error { _, err := l.Clean(); return err }
	n := mutations(t, base, cfg, smallOpts(c), clean)
	if n < 4 {
		t.Fatalf("compaction made %d mutations, want several groups", n)
	}
	reference := latestPerKey(original)
	origSet := map[kv]bool{}
	for _, r := range original {
		origSet[r] = true
	}
	for k := 0; k < n; k++ {
		mem := base.clone()
		l, err := Open(&faultStore{Store: mem, limit: k}, "p/", cfg, smallOpts(c))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Clean(); !errors.Is(err, errInjected) {
			t.Fatalf("k=%d: Clean = %v, want the injected failure", k, err)
		}
		l2, err := Open(mem, "p/", cfg, smallOpts(c))
		if err != nil {
			t.Fatalf("k=%d: reopen: %v", k, err)
		}
		checkObjects(t, mem)
		got := readAll(t, l2)
		// Nothing invented, nothing duplicated, nothing the compaction keeps is missing.
		gotSet := map[kv]bool{}
		for i, r := range got {
			if !origSet[r] || i > 0 && r.off <= got[i-1].off {
				t.Fatalf("k=%d: unexpected or out-of-order record %v", k, r)
			}
			gotSet[r] = true
		}
		for _, r := range reference {
			if !gotSet[r] {
				t.Fatalf("k=%d: lost %v", k, r)
			}
		}
		if _, err := l2.Clean(); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, l2); !reflect.DeepEqual(got, reference) {
			t.Fatalf("k=%d: cleaning after the crash:\n got %v\nwant %v", k, got, reference)
		}
	}
}

// TestCrashDuringRetention: after a crash at any step the log start offset is where it
// was or where retention moves it, every kept record is readable, and no segment below
// the log start survives a reopen.
func TestCrashDuringRetention(t *testing.T) {
	c := &clock{}
	c.advance(100_000)
	cfg := smallConfig()
	cfg.RetentionMs = 1000
	base := NewMemStore()
	var original []kv
	{
		l, _ := Open(base, "p/", cfg, smallOpts(c))
		original = appendRecs(t, l, 50, 0)
		original = append(original, appendRecs(t, l, 50, 100_000)...)
		if err := l.Seal(); err != nil {
			t.Fatal(err)
		}
	}
	retain := func(l *Log) error { _, err := l.EnforceRetention(); return err }
	n := mutations(t, base, cfg, smallOpts(c), retain)
	if n < 3 {
		t.Fatalf("retention made %d mutations", n)
	}
	var refStart int64
	{
		l, _ := Open(base.clone(), "p/", cfg, smallOpts(c))
		if _, err := l.EnforceRetention(); err != nil {
			t.Fatal(err)
		}
		refStart = l.LogStartOffset()
	}
	for k := 0; k < n; k++ {
		mem := base.clone()
		l, err := Open(&faultStore{Store: mem, limit: k}, "p/", cfg, smallOpts(c))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.EnforceRetention(); !errors.Is(err, errInjected) {
			t.Fatalf("k=%d: EnforceRetention = %v", k, err)
		}
		l2, err := Open(mem, "p/", cfg, smallOpts(c))
		if err != nil {
			t.Fatalf("k=%d: reopen: %v", k, err)
		}
		start := l2.LogStartOffset()
		if start != 0 && start != refStart {
			t.Fatalf("k=%d: log start %d, want 0 or %d", k, start, refStart)
		}
		if got := readAll(t, l2); !reflect.DeepEqual(got, offsetsFrom(original, start)) {
			t.Fatalf("k=%d: %d records from %d, want %d", k, len(got), start, len(offsetsFrom(original, start)))
		}
		for _, s := range l2.Segments() {
			if s.Next <= start {
				t.Fatalf("k=%d: segment %s below the log start survived", k, s.Name)
			}
		}
		objs, _ := mem.List("p/")
		if _, err := mem.Get("p/checkpoint", 0, -1); err == nil {
			objs = objs[1:]
		}
		if len(objs) != len(l2.Segments()) {
			t.Fatalf("k=%d: %d objects for %d segments", k, len(objs), len(l2.Segments()))
		}
	}
}
