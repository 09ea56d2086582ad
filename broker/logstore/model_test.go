package logstore

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"
)

// TestLogRandomOperations runs random sequences of appends (plain, compressed, with
// tombstones and transactions), seals, retention, DeleteRecords, compaction, config
// changes, reopens, and crashes (a store failing after a random number of mutations,
// followed by a reopen that replays every batch, as the WAL would) and checks after each
// step against a model:
//   - records come back in offset order, each exactly as appended, none twice;
//   - without compaction, everything at or after the log start is there;
//   - with compaction, the latest record of every key (committed or not transactional) at
//     or after the log start is there;
//   - AbortedTxns lists every aborted transaction with records at or after the log start.
//
// 1000 seeds of 300 steps passed when this was written; the unit run keeps 25 of 120.
func TestLogRandomOperations(t *testing.T) {
	for seed := int64(1); seed <= 25; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed) })
	}
}

func runModel(t *testing.T, seed int64) {
	rng := rand.New(rand.NewSource(seed))
	c := &clock{}
	c.advance(1_000_000)
	mem := NewMemStore()
	fs := &faultStore{Store: mem, limit: 1 << 30}
	cfg := smallConfig()
	cfg.Compact = rng.Intn(2) == 0
	cfg.Delete = !cfg.Compact || rng.Intn(2) == 0
	cfg.RetentionMs = -1
	cfg.DeleteRetentionMs = 500
	opts := smallOpts(c)
	opts.MaxActiveBytes = int64(500 + rng.Intn(3000))
	l, err := Open(fs, "p/", cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	var batches [][]byte // every batch appended, the WAL
	all := map[kv]bool{} // every record appended
	latest := map[string]kv{}
	pending := map[int64]bool{} // offsets of records in the open transaction
	txnFirst := int64(-1)       // first offset of the open transaction
	var abortedTxns []AbortedTxn
	openTxn := false
	next := int64(0)
	var ops []string
	var crash func()
	reopened := false
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d after %v: %s", seed, ops[max(0, len(ops)-8):], fmt.Sprintf(format, args...))
	}
	check := func() {
		got := readAll(t, l)
		start := l.LogStartOffset()
		seen := map[int64]bool{}
		for i, r := range got {
			if !all[r] && !r.ctl {
				fail("record %v was never appended", r)
			}
			if seen[r.off] || i > 0 && r.off <= got[i-1].off {
				fail("record %v out of order or twice", r)
			}
			seen[r.off] = true
		}
		var wantAb []AbortedTxn
		for _, a := range abortedTxns {
			// A marker at the log start ends a transaction with no record left to filter:
			// after a reopen the log may not know it (nor need to).
			if a.LastOffset > start || a.LastOffset == start && !reopened {
				wantAb = append(wantAb, a)
			}
		}
		gotAb, err := l.AbortedTxns(start, next)
		if len(gotAb) == len(wantAb)+1 && gotAb[0].LastOffset == start {
			gotAb = gotAb[1:]
		}
		if err != nil || len(gotAb) != len(wantAb) {
			fail("AbortedTxns(%d, %d) = %v, %v; want %v", start, next, gotAb, err, wantAb)
		}
		for i, a := range wantAb {
			// A transaction that began below the log start may be reported from a later
			// offset, never later than the log start: no record it covers is served.
			g := gotAb[i]
			if g.ProducerID != a.ProducerID || g.LastOffset != a.LastOffset || g.FirstOffset < a.FirstOffset ||
				g.FirstOffset > max(a.FirstOffset, start) {
				fail("AbortedTxns(%d, %d) = %v, want %v", start, next, gotAb, wantAb)
			}
		}
		if !cfg.Compact {
			n := 0
			for r := range all {
				if r.off >= start {
					n++
					if !seen[r.off] {
						fail("record %v at or after the log start %d is missing", r, start)
					}
				}
			}
			data := 0
			for _, r := range got {
				if !r.ctl {
					data++
				}
			}
			if n != data {
				fail("%d records, model has %d", data, n)
			}
			return
		}
		for _, r := range latest {
			if r.off >= start && !seen[r.off] && r.value != "<nil>" {
				fail("latest record %v of its key is missing (log start %d); log has %v", r, start, got)
			}
		}
	}
	appendBatch := func() {
		n := 1 + rng.Intn(4)
		var recs []rec
		var kvs []kv
		txn := rng.Intn(5) == 0
		if openTxn {
			txn = true
		}
		for j := 0; j < n; j++ {
			k := fmt.Sprintf("k%d", rng.Intn(12))
			v := fmt.Sprintf("v%d", next+int64(j))
			r := rec{key: []byte(k), value: []byte(v), ts: c.now()}
			if rng.Intn(8) == 0 {
				r.value, v = nil, "<nil>"
			}
			recs = append(recs, r)
			kvs = append(kvs, kv{next + int64(j), k, v, false})
		}
		o := batchOpts{codec: []int8{0, 1, 2, 4}[rng.Intn(4)]} // lz4 (3) allocates 4 MiB per batch under -race; the cleaner tests cover it
		if txn {
			o.pid, o.txn = 42, true
		}
		b := mkBatch(t, next, recs, o)
		if err := l.Append(b); err != nil {
			if errors.Is(err, errInjected) {
				crash()
				return
			}
			fail("Append: %v", err)
		}
		batches = append(batches, b)
		if txn && !openTxn {
			txnFirst, openTxn = next, true
		}
		for _, r := range kvs {
			all[r] = true
			if txn {
				pending[r.off] = true // until the transaction ends
			} else {
				latest[r.key] = r
			}
		}
		next += int64(n)
	}
	endTxn := func(commit bool) {
		if !openTxn {
			return
		}
		ctl := 1
		if commit {
			ctl = 2
		}
		b := mkBatch(t, next, []rec{{ts: c.now()}}, batchOpts{pid: 42, txn: true, control: ctl})
		if err := l.Append(b); err != nil {
			if errors.Is(err, errInjected) {
				crash()
				return
			}
			fail("Append marker: %v", err)
		}
		batches = append(batches, b)
		if !commit {
			abortedTxns = append(abortedTxns, AbortedTxn{42, txnFirst, next})
		}
		next++
		openTxn = false
		// Committed transactional records become candidates for "latest"; aborted ones
		// never do.
		for r := range all {
			if pending[r.off] {
				delete(pending, r.off)
				if cur, ok := latest[r.key]; commit && (!ok || cur.off < r.off) {
					latest[r.key] = r
				}
			}
		}
	}
	crash = func() {
		// Reopen on what the store holds and replay the whole WAL.
		ops = append(ops, "crash")
		reopened = true
		fs.limit = 1 << 30
		var err error
		if l, err = Open(fs, "p/", cfg, opts); err != nil {
			fail("reopen: %v", err)
		}
		for _, b := range batches {
			if err := l.Append(b); err != nil {
				fail("replay: %v", err)
			}
		}
	}
	for step := 0; step < 120; step++ {
		switch op := rng.Intn(20); {
		case op < 9:
			ops = append(ops, "append")
			appendBatch()
		case op == 9:
			ops = append(ops, "commit")
			endTxn(true)
		case op == 10:
			ops = append(ops, "abort")
			endTxn(false)
		case op == 11:
			ops = append(ops, "seal")
			if err := l.Seal(); err != nil && !errors.Is(err, errInjected) {
				fail("Seal: %v", err)
			} else if err != nil {
				crash()
			}
		case op == 12:
			ops = append(ops, "retention")
			cfg.RetentionBytes = int64(rng.Intn(6000))
			if rng.Intn(2) == 0 {
				cfg.RetentionBytes = -1
			}
			l.SetConfig(cfg)
			if _, err := l.EnforceRetention(); err != nil {
				if !errors.Is(err, errInjected) {
					fail("EnforceRetention: %v", err)
				}
				crash()
			}
		case op == 13:
			ops = append(ops, "delete-records")
			to := l.LogStartOffset() + int64(rng.Intn(int(next-l.LogStartOffset())+1))
			if err := l.DeleteRecordsBefore(to); err != nil {
				if !errors.Is(err, errInjected) {
					fail("DeleteRecordsBefore(%d): %v", to, err)
				}
				crash()
			}
		case op == 14 || op == 15:
			ops = append(ops, "clean")
			if _, err := l.Clean(); err != nil {
				if !errors.Is(err, errInjected) {
					fail("Clean: %v", err)
				}
				crash()
			}
		case op == 16:
			ops = append(ops, "tick")
			c.advance(int64(rng.Intn(1000)))
		case op == 17:
			ops = append(ops, "reopen")
			crash()
		default:
			ops = append(ops, "fault")
			fs.mu.Lock()
			fs.limit = fs.done + rng.Intn(4)
			fs.mu.Unlock()
		}
		check()
	}
}
