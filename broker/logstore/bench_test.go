package logstore

import (
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"
)

// BenchmarkLogAppend appends 100-byte single-record batches to a DirStore log (sealing
// 16 MiB segments with fsync as it goes).
func BenchmarkLogAppend(b *testing.B) {
	st, err := OpenDirStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	l, err := Open(st, "p/", DefaultConfig(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	batch := mkBatch(b, 0, []rec{{key: []byte("key"), value: make([]byte, 100), ts: time.Now().UnixMilli()}}, batchOpts{})
	b.SetBytes(int64(len(batch)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		putBase(batch, int64(i))
		if err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func putBase(b []byte, base int64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(base >> (56 - 8*i))
	}
}

// BenchmarkLogOpenAndRead builds a log of 1 million single-record batches once, then
// measures Open (trailers only) and a random-offset Read, and reports the heap an opened
// log holds: it depends on the number of segments, not of batches.
func BenchmarkLogOpenAndRead(b *testing.B) {
	const n = 1_000_000
	st, err := OpenDirStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Logger: slog.New(slog.DiscardHandler)}
	l, err := Open(st, "p/", DefaultConfig(), opts)
	if err != nil {
		b.Fatal(err)
	}
	batch := mkBatch(b, 0, []rec{{key: []byte("key"), value: make([]byte, 100), ts: 1}}, batchOpts{})
	for i := 0; i < n; i++ {
		putBase(batch, int64(i))
		if err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Seal(); err != nil {
		b.Fatal(err)
	}
	segs := len(l.Segments())
	l = nil
	b.Run("open", func(b *testing.B) {
		var before, after runtime.MemStats
		var keep *Log
		for i := 0; i < b.N; i++ {
			runtime.GC()
			runtime.ReadMemStats(&before)
			keep, err = Open(st, "p/", DefaultConfig(), opts)
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
		}
		b.ReportMetric(float64(after.HeapAlloc)-float64(before.HeapAlloc), "heap-bytes/log")
		b.ReportMetric(float64(segs), "segments")
		runtime.KeepAlive(keep)
	})
	b.Run("read", func(b *testing.B) {
		l, err := Open(st, "p/", DefaultConfig(), opts)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			off := int64(i*7919) % n
			out, err := l.Read(off, 64<<10)
			if err != nil || len(out) == 0 {
				b.Fatalf("Read(%d): %d bytes, %v", off, len(out), err)
			}
		}
	})
	b.Run("timestamp", func(b *testing.B) {
		l, err := Open(st, "p/", DefaultConfig(), opts)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			if _, _, ok, err := l.OffsetForTimestamp(1); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// BenchmarkClean compacts 16 MiB of 100 keys rewritten over and over.
func BenchmarkClean(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := NewMemStore()
		cfg := DefaultConfig()
		cfg.Delete, cfg.Compact = false, true
		l, err := Open(st, "p/", cfg, Options{MaxActiveBytes: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		var total int64
		for j := 0; total < 16<<20; j++ {
			batch := mkBatch(b, int64(j), []rec{{key: []byte(fmt.Sprint(j % 100)), value: make([]byte, 100), ts: 1}}, batchOpts{})
			total += int64(len(batch))
			if err := l.Append(batch); err != nil {
				b.Fatal(err)
			}
		}
		if err := l.Seal(); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(total)
		b.StartTimer()
		if s, err := l.Clean(); err != nil || s.NothingToDo {
			b.Fatal(s, err)
		}
	}
}
