package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// BenchmarkWALAppend appends 16 KiB batches (about sixteen 1 KiB records) from many
// goroutines (32 per GOMAXPROCS), each keeping window appends in flight like pipelined
// produce requests (window 1: every appender waits for its ack).
// MB/s is acknowledged (fsynced) batch bytes. KLITE_BENCH_DIR picks the disk (default: the
// test's temp dir).
func BenchmarkWALAppend(b *testing.B) {
	const par = 32 // goroutines per GOMAXPROCS
	for _, window := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("appenders=%dx%d", par*runtime.GOMAXPROCS(0), window), func(b *testing.B) {
			dir := benchDir(b)
			w, err := OpenWAL(WALOptions{Dir: dir})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			if err := w.Replay(func(*Batch, Location) error { return nil }); err != nil {
				b.Fatal(err)
			}
			batch := testBatch(1, 16<<10)
			b.SetBytes(int64(len(batch.Data)))
			b.SetParallelism(par)
			var failed sync.Once
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				sem := make(chan struct{}, window)
				var wg sync.WaitGroup
				done := func(_ Location, err error) {
					if err != nil {
						failed.Do(func() { b.Error(err) })
					}
					<-sem
					wg.Done()
				}
				for pb.Next() {
					sem <- struct{}{}
					wg.Add(1)
					w.Append(batch, done)
				}
				wg.Wait()
			})
		})
	}
}

// BenchmarkDiskWriteFsync measures the raw disk: sequential pwrite of one block then fsync.
func BenchmarkDiskWriteFsync(b *testing.B) {
	for _, size := range []int{256 << 10, 1 << 20, 4 << 20, 16 << 20} {
		b.Run(fmt.Sprintf("block=%dKiB", size>>10), func(b *testing.B) {
			f, err := os.Create(filepath.Join(benchDir(b), "raw"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, size)
			for i := range buf {
				buf[i] = byte(i * 7)
			}
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := f.WriteAt(buf, int64(i)*int64(size)); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchDir(b *testing.B) string {
	if d := os.Getenv("KLITE_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "walbench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// BenchmarkWALReplay replays a WAL of 256 MiB in 16 KiB batches (every CRC checked).
func BenchmarkWALReplay(b *testing.B) {
	dir := benchDir(b)
	w, err := OpenWAL(WALOptions{Dir: dir, SegmentBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	w.Replay(func(*Batch, Location) error { return nil })
	batch := testBatch(1, 16<<10)
	const n = 256 << 20 / (16 << 10)
	var wg sync.WaitGroup
	wg.Add(n)
	for range n {
		w.Append(batch, func(_ Location, err error) {
			if err != nil {
				b.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	w.Close()
	b.SetBytes(n * (16 << 10))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, err := OpenWAL(WALOptions{Dir: dir, SegmentBytes: 64 << 20})
		if err != nil {
			b.Fatal(err)
		}
		count := 0
		if err := w.Replay(func(*Batch, Location) error { count++; return nil }); err != nil || count != n {
			b.Fatalf("replayed %d of %d: %v", count, n, err)
		}
		w.Close()
	}
}
