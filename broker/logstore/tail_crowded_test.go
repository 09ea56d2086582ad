package logstore

import (
	"math/rand"
	"sync/atomic"
	"testing"
)

// appendEvery appends batches of about size bytes, advancing c by stepMs before each,
// until l holds until bytes; it returns the batches.
func appendEvery(t *testing.T, l *Log, c *clock, rng *rand.Rand, size int, stepMs, until int64) [][]byte {
	t.Helper()
	var batches [][]byte
	for l.Size() < until {
		c.advance(stepMs)
		v := make([]byte, size)
		rng.Read(v)
		b := mkBatch(t, l.NextOffset(), []rec{{key: []byte("k"), value: v, ts: 1000 + int64(len(batches))}}, batchOpts{})
		if err := l.Append(b); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
	}
	return batches
}

// Where many Logs hold tails, a Log taking less than hotBytesPerSec writes its data at
// budgetChunkBytes though the tails are under their budget; a hot one still fills MiB
// chunks; with few Logs holding tails a slow one keeps its data in memory as before.
func TestCrowdedTailsWriteSmallChunksUnlessHot(t *testing.T) {
	const budget = 8 << 20
	open := func(t *testing.T, others int64) (*Log, *clock) {
		d, err := OpenDirStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		c := &clock{}
		c.advance(1 << 20)
		opts := smallOpts(c)
		opts.MaxActiveBytes = 64 << 20
		opts.TailBudget, opts.Tails, opts.TailLogs = budget, new(atomic.Int64), new(atomic.Int64)
		opts.TailLogs.Store(others) // Logs of other partitions holding tails
		l, err := Open(d, "p/", DefaultConfig(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return l, c
	}
	crowd := int64(budget/crowdedShare) + 1

	t.Run("crowded slow", func(t *testing.T) {
		l, c := open(t, crowd)
		// 100 KiB a second for 3 s: far below hotBytesPerSec.
		batches := appendEvery(t, l, c, rand.New(rand.NewSource(1)), 10<<10, 100, 300<<10)
		waitFlushed(l)
		if w := tailWritten(l); w < 300<<10-2*budgetChunkBytes {
			t.Fatalf("%d bytes written of %d, want all but the last small buffer", w, l.Size())
		}
		if held := tailHeld(l); held > 2*firstDataCap {
			t.Fatalf("%d bytes held, want at most a small buffer", held)
		}
		checkReads(t, l, batches)
	})

	t.Run("crowded hot", func(t *testing.T) {
		l, c := open(t, crowd)
		// 3 MiB within one second: hot after its first MiB.
		batches := appendEvery(t, l, c, rand.New(rand.NewSource(2)), 30<<10, 1, 3<<20)
		waitFlushed(l)
		l.mu.Lock()
		hot, data := l.active.hot, cap(l.active.data)
		l.mu.Unlock()
		if !hot {
			t.Fatalf("no chunkBytes chunk was filled (data buffer %d bytes), want MiB chunks once hot", data)
		}
		checkReads(t, l, batches)
	})

	t.Run("uncrowded slow", func(t *testing.T) {
		l, c := open(t, 0)
		batches := appendEvery(t, l, c, rand.New(rand.NewSource(3)), 10<<10, 100, 300<<10)
		waitFlushed(l)
		if w := tailWritten(l); w != 0 {
			t.Fatalf("%d bytes written, want the data kept in memory (few Logs hold tails)", w)
		}
		if held := tailHeld(l); held < l.Size() {
			t.Fatalf("%d bytes held of %d", held, l.Size())
		}
		checkReads(t, l, batches)
	})
}

func TestAppendRate(t *testing.T) {
	var r appendRate
	steps := []struct {
		now, n int64
		hot    bool
	}{
		{1000, hotBytesPerSec / 2, false},
		{1500, hotBytesPerSec / 2, true},  // a MiB within the second
		{2100, 10, true},                  // the previous second took a MiB
		{3200, 10, false},                 // the previous second took 10 bytes
		{6000, hotBytesPerSec - 1, false}, // seconds with nothing between
		{6999, 1, true},                   // the same second
		{100, 1, false},                   // the clock went back: counting starts again
	}
	for i, s := range steps {
		if got := r.hot(s.now, s.n); got != s.hot {
			t.Fatalf("step %d: hot(%d, %d) = %v, want %v", i, s.now, s.n, got, s.hot)
		}
	}
}
