package logstore

import (
	"errors"
	"reflect"
	"testing"
)

// offsetsFrom returns the records of want at or after off.
func offsetsFrom(want []kv, off int64) []kv {
	for i, r := range want {
		if r.off >= off {
			return want[i:]
		}
	}
	return nil
}

func TestRetentionMs(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{}
			cfg := smallConfig()
			cfg.RetentionMs = 1000
			l, err := Open(st, "p/", cfg, smallOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			c.advance(10_000)
			want := appendRecs(t, l, 40, 1000)                   // old timestamps
			want = append(want, appendRecs(t, l, 40, 10_000)...) // recent
			segs := l.Segments()
			n, err := l.EnforceRetention()
			if err != nil {
				t.Fatal(err)
			}
			// Exactly the prefix of segments whose largest timestamp is older than 1000 ms.
			wantN := 0
			for _, s := range segs {
				if s.Next > 120 {
					break
				}
				wantN++
			}
			// The segment holding offsets on both sides of 120 has a recent max timestamp.
			if n != wantN || n == 0 {
				t.Fatalf("deleted %d segments, want %d", n, wantN)
			}
			start := segs[n-1].Next
			if l.LogStartOffset() != start {
				t.Fatalf("log start %d, want %d", l.LogStartOffset(), start)
			}
			if _, err := l.Read(start-1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Errorf("Read below the log start: %v", err)
			}
			if got := readAll(t, l); !reflect.DeepEqual(got, offsetsFrom(want, start)) {
				t.Fatalf("after retention: %d records, want %d", len(got), len(offsetsFrom(want, start)))
			}
			// Durable: reopening keeps the log start and finds no deleted segment.
			l2, err := Open(st, "p/", cfg, smallOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			if l2.LogStartOffset() != start || len(l2.Segments()) != len(segs)-n {
				t.Fatalf("reopened: start %d, %d segments; want %d, %d", l2.LogStartOffset(), len(l2.Segments()), start, len(segs)-n)
			}
			// Everything expires, but the active segment stays.
			c.advance(100_000)
			if _, err := l.EnforceRetention(); err != nil {
				t.Fatal(err)
			}
			if len(l.Segments()) != 0 || l.LogStartOffset() != l.DurableOffset() {
				t.Fatalf("after all expired: %d segments, start %d", len(l.Segments()), l.LogStartOffset())
			}
			if got := readAll(t, l); len(got) == 0 || got[len(got)-1] != want[len(want)-1] {
				t.Fatalf("the active segment was not kept: %v", got)
			}
		})
	}
}

func TestRetentionBytes(t *testing.T) {
	c := &clock{}
	cfg := smallConfig()
	cfg.RetentionMs = -1
	cfg.RetentionBytes = 5000
	st := NewMemStore()
	l, err := Open(st, "p/", cfg, smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	appendRecs(t, l, 100, 0)
	before := l.Size()
	if _, err := l.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	after := l.Size()
	segs := l.Segments()
	// Kafka: delete the oldest while what remains is still >= retention.bytes.
	if after < cfg.RetentionBytes || after >= cfg.RetentionBytes+segs[0].Size || after >= before {
		t.Fatalf("size %d -> %d with retention.bytes %d (oldest kept %d bytes)", before, after, cfg.RetentionBytes, segs[0].Size)
	}
	// cleanup.policy=compact alone ignores retention.
	cfg.Delete, cfg.Compact = false, true
	cfg.RetentionBytes = 0
	l.SetConfig(cfg)
	if n, _ := l.EnforceRetention(); n != 0 {
		t.Fatalf("compact-only topic lost %d segments to retention", n)
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := &clock{}
			l, err := Open(st, "p/", smallConfig(), smallOpts(c))
			if err != nil {
				t.Fatal(err)
			}
			want := appendRecs(t, l, 60, 0)
			segs := l.Segments()
			cut := segs[2].Base + 1 // inside the third segment
			if err := l.DeleteRecordsBefore(cut); err != nil {
				t.Fatal(err)
			}
			if got := l.Segments(); len(got) != len(segs)-2 || got[0] != segs[2] {
				t.Fatalf("segments after DeleteRecords: %v", got)
			}
			if got := readAll(t, l); !reflect.DeepEqual(got, offsetsFrom(want, cut)) {
				t.Fatalf("readAll after DeleteRecords(%d) starts at %v", cut, got[0])
			}
			if err := l.DeleteRecordsBefore(l.NextOffset() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Errorf("DeleteRecords past the end: %v", err)
			}
			l2, err := Open(st, "p/", smallConfig(), smallOpts(c))
			if err != nil || l2.LogStartOffset() != cut {
				t.Fatalf("reopened: start %d, %v; want %d", l2.LogStartOffset(), err, cut)
			}
		})
	}
}

// DeleteRecords into a batch of the unsealed tail, then a crash: the WAL replays that whole
// batch into a log that starts inside it.
func TestDeleteRecordsInsideTheTailThenReplay(t *testing.T) {
	c := &clock{}
	st := NewMemStore()
	l, err := Open(st, "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	want := appendRecs(t, l, 60, 0)
	batches := batchesOf(t, l, 0)
	cut := l.NextOffset() - 2 // inside the last batch of 3 records
	if err := l.DeleteRecordsBefore(cut); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(st, "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := l2.Append(b); err != nil {
			t.Fatalf("replay: %v", err)
		}
	}
	if got := readAll(t, l2); !reflect.DeepEqual(got, offsetsFrom(want, cut)) {
		t.Fatalf("after replay: %v, want %v", got, offsetsFrom(want, cut))
	}
	if err := l2.Seal(); err != nil {
		t.Fatal(err)
	}
	checkObjects(t, st)
}
