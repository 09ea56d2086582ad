package logstore

import (
	"errors"
	"reflect"
	"testing"
)

// A partition log kept directly in S3 (moto): appends seal into S3 objects, compaction swaps
// them, retention and DeleteRecords delete them, and a reopen from the bucket alone finds
// the same records, so the segment format and the Log's crash rules need nothing of a
// local file system.
func TestLogOnS3(t *testing.T) {
	st := newMotoStore(t, S3Options{Prefix: "cluster/logs"})

	t.Run("compaction", func(t *testing.T) {
		c := &clock{}
		l, err := Open(st, "c/", compactConfig(), smallOpts(c))
		if err != nil {
			t.Fatal(err)
		}
		want := appendKeyed(t, l, 40, 0, nil)
		if err := l.Seal(); err != nil {
			t.Fatal(err)
		}
		stats, err := l.Clean()
		if err != nil || stats.NothingToDo || stats.RecordsRemoved == 0 {
			t.Fatalf("Clean = %+v, %v", stats, err)
		}
		wantAfter := latestPerKey(want)
		if got := readAll(t, l); !reflect.DeepEqual(got, wantAfter) {
			t.Fatalf("after compaction:\n got %v\nwant %v", got, wantAfter)
		}
		l2, err := Open(st, "c/", compactConfig(), smallOpts(c))
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, l2); !reflect.DeepEqual(got, wantAfter) {
			t.Fatalf("reopened from S3:\n got %v\nwant %v", got, wantAfter)
		}
		objs, _ := st.List("c/")
		if len(objs) != len(l2.Segments())+1 {
			t.Errorf("%d objects for %d segments and a checkpoint: replaced segments left in S3", len(objs), len(l2.Segments()))
		}
	})

	t.Run("retention and timestamps", func(t *testing.T) {
		c := &clock{}
		cfg := smallConfig()
		cfg.RetentionMs = 1000
		l, err := Open(st, "r/", cfg, smallOpts(c))
		if err != nil {
			t.Fatal(err)
		}
		c.advance(10_000)
		want := appendRecs(t, l, 30, 1000)
		want = append(want, appendRecs(t, l, 30, 10_000)...)
		if err := l.Seal(); err != nil {
			t.Fatal(err)
		}
		before := len(l.Segments())
		n, err := l.EnforceRetention()
		if err != nil || n == 0 || n == before {
			t.Fatalf("retention deleted %d of %d segments, %v; want the old ones only", n, before, err)
		}
		start := l.LogStartOffset()
		if _, err := l.Read(start-1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Errorf("Read below the log start: %v", err)
		}
		if err := l.DeleteRecordsBefore(start + 2); err != nil {
			t.Fatal(err)
		}
		off, ts, ok, err := l.OffsetForTimestamp(10_005)
		if err != nil || !ok || ts != 10_005 || off != want[len(want)-30*3+5*3].off {
			t.Fatalf("OffsetForTimestamp(10005) = %d, %d, %v, %v", off, ts, ok, err)
		}
		l2, err := Open(st, "r/", cfg, smallOpts(c))
		if err != nil {
			t.Fatal(err)
		}
		if l2.LogStartOffset() != start+2 || len(l2.Segments()) != len(l.Segments()) {
			t.Fatalf("reopened: start %d, %d segments; want %d, %d", l2.LogStartOffset(), len(l2.Segments()), start+2, len(l.Segments()))
		}
		if got := readAll(t, l2); !reflect.DeepEqual(got, offsetsFrom(want, start+2)) {
			t.Fatalf("reopened: %d records, want %d", len(got), len(offsetsFrom(want, start+2)))
		}
	})
}
