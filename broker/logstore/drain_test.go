package logstore

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// walEntry is one batch as a simulated WAL holds it.
type walEntry struct {
	key   string
	batch []byte
	seg   uint64
}

// TestDrainCheckpointLosesNothing: three partitions of different rates are drained from a
// simulated WAL (a new segment every 7 batches); whenever the checkpoint moves, the WAL
// segments below it are dropped. A broker restarted at any point replays what is left of
// the WAL into a new Drain, and every partition must read back exactly what was produced.
func TestDrainCheckpointLosesNothing(t *testing.T) {
	c := &clock{}
	st := NewMemStore()
	cfgFor := func(string) Config { return smallConfig() }
	opts := smallOpts(c)
	keys := []string{PartitionKey([16]byte{1}, 0), PartitionKey([16]byte{1}, 1), PartitionKey([16]byte{2}, 0)}
	want := map[string][]kv{}
	next := map[string]int64{}
	var wal []walEntry
	d := NewDrain(st, cfgFor, opts)
	dropped := uint64(0)
	for i := 0; i < 300; i++ {
		// Partition 0 gets most traffic, partition 2 a batch now and then.
		key := keys[0]
		switch {
		case i%10 == 3:
			key = keys[1]
		case i%50 == 7:
			key = keys[2]
		}
		base := next[key]
		v := fmt.Sprintf("%s-%d", key, base)
		b := mkBatch(t, base, []rec{{key: []byte("k"), value: []byte(v)}}, batchOpts{})
		next[key] = base + 1
		want[key] = append(want[key], kv{base, "k", v, false})
		e := walEntry{key, b, uint64(i/7 + 1)}
		wal = append(wal, e)
		if err := d.Add(e.key, e.batch, e.seg); err != nil {
			t.Fatal(err)
		}
		if i%40 == 39 { // the broker's periodic pass: let go of all but the last 3 segments
			if err := d.SealPinning(e.seg - 3); err != nil {
				t.Fatal(err)
			}
		}
		cp := d.Checkpoint()
		if cp < dropped {
			t.Fatalf("checkpoint went back from %d to %d", dropped, cp)
		}
		for len(wal) > 0 && wal[0].seg < cp {
			wal = wal[1:]
		}
		dropped = cp
		if i%23 == 0 || i == 299 {
			// Restart: a new Drain over the same store, fed what the WAL still holds.
			d2 := NewDrain(st, cfgFor, opts)
			for _, e := range wal {
				if err := d2.Add(e.key, e.batch, e.seg); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range keys {
				l, err := d2.Log(k)
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, l); len(want[k]) > 0 && !reflect.DeepEqual(got, want[k]) {
					t.Fatalf("batch %d: partition %s after restart: %d records, want %d", i, k, len(got), len(want[k]))
				}
			}
		}
	}
	if dropped < 30 {
		t.Fatalf("checkpoint only reached WAL segment %d of %d", dropped, 300/7)
	}
}

func TestDrainTailBudget(t *testing.T) {
	c := &clock{}
	d := NewDrain(NewMemStore(), func(string) Config { return smallConfig() }, Options{Now: c.now})
	for p := int32(0); p < 4; p++ {
		key := PartitionKey([16]byte{9}, p)
		for i := 0; i < int(p+1)*5; i++ {
			b := mkBatch(t, int64(i), []rec{{key: []byte("k"), value: make([]byte, 100)}}, batchOpts{})
			if err := d.Add(key, b, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	total := d.opts.Tails.Load()
	if err := d.EnforceTailBudget(total/2, 1000); err != nil {
		t.Fatal(err)
	}
	if n := d.opts.Tails.Load(); n > total/2 || n == 0 {
		t.Fatalf("tails hold %d bytes after a budget of %d (were %d): want the largest sealed, the smallest kept", n, total/2, total)
	}
}

// Over the budget, the tail of a partition that took no batch for idleFor is sealed before
// a larger one still taking batches.
func TestDrainTailBudgetSealsIdleFirst(t *testing.T) {
	c := &clock{}
	d := NewDrain(NewMemStore(), func(string) Config { return smallConfig() }, Options{Now: c.now})
	idle, hot := PartitionKey([16]byte{9}, 0), PartitionKey([16]byte{9}, 1)
	add := func(key string, n int) {
		l, _ := d.Log(key)
		for i := 0; i < n; i++ {
			b := mkBatch(t, l.NextOffset(), []rec{{key: []byte("k"), value: make([]byte, 100<<10)}}, batchOpts{})
			if err := d.Add(key, b, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(idle, 2)
	c.ms.Add(5000)
	add(hot, 4)
	if err := d.EnforceTailBudget(d.opts.Tails.Load()-1, 1000); err != nil {
		t.Fatal(err)
	}
	li, _ := d.Log(idle)
	lh, _ := d.Log(hot)
	if len(li.Segments()) != 1 || len(lh.Segments()) != 0 {
		t.Fatalf("sealed %d segments of the idle partition and %d of the hot one, want 1 and 0", len(li.Segments()), len(lh.Segments()))
	}
}

// SealIdle seals the tails of partitions idle for idleFor whose buffers hold at least
// minHeld, never a partition still taking batches nor the
// small tail of a trickle.
func TestDrainSealIdle(t *testing.T) {
	c := &clock{}
	d := NewDrain(NewMemStore(), func(string) Config { return smallConfig() }, Options{Now: c.now})
	burst, trickle, hot := PartitionKey([16]byte{9}, 0), PartitionKey([16]byte{9}, 1), PartitionKey([16]byte{9}, 2)
	add := func(key string, n, size int) {
		l, _ := d.Log(key)
		for i := 0; i < n; i++ {
			b := mkBatch(t, l.NextOffset(), []rec{{key: []byte("k"), value: make([]byte, size)}}, batchOpts{})
			if err := d.Add(key, b, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(burst, 4, 100<<10)
	add(trickle, 1, 100)
	c.ms.Add(1500)
	add(hot, 4, 100<<10)
	const minHeld = 200 << 10
	n, err := d.SealIdle(1000, minHeld)
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := d.Log(burst)
	lt, _ := d.Log(trickle)
	lh, _ := d.Log(hot)
	if n != 1 || len(lb.Segments()) != 1 || len(lt.Segments()) != 0 || len(lh.Segments()) != 0 {
		t.Fatalf("sealed %d tails: segments burst %d, trickle %d, hot %d; want 1: 1, 0, 0", n, len(lb.Segments()), len(lt.Segments()), len(lh.Segments()))
	}
	lb.mu.Lock()
	held := lb.held
	lb.mu.Unlock()
	if held != 0 {
		t.Fatalf("the sealed burst partition still holds %d bytes of buffers", held)
	}
	if got := lb.DurableOffset(); got != 4 {
		t.Fatalf("burst partition durable to %d, want 4", got)
	}
	// Sealed and its buffers gone: a second pass seals nothing more.
	if n, err := d.SealIdle(1000, minHeld); err != nil || n != 0 {
		t.Fatalf("second SealIdle sealed %d (err %v), want 0", n, err)
	}
}

// A batch whose Add fails (the seal it triggers cannot be written) is not skipped: later
// batches are refused until it is added again.
func TestDrainFailedAddIsRetriedNotSkipped(t *testing.T) {
	c := &clock{}
	fs := &faultStore{Store: NewMemStore(), limit: 0}
	d := NewDrain(fs, func(string) Config { return smallConfig() }, smallOpts(c))
	key := PartitionKey([16]byte{3}, 0)
	var batches [][]byte
	failed := -1
	for i := 0; i < 40 && failed < 0; i++ {
		b := mkBatch(t, int64(i), []rec{{key: []byte("k"), value: make([]byte, 100)}}, batchOpts{})
		batches = append(batches, b)
		if err := d.Add(key, b, 1); err != nil {
			failed = i
		}
	}
	if failed < 0 {
		t.Fatal("no Add failed")
	}
	later := mkBatch(t, int64(failed+1), []rec{{key: []byte("k"), value: []byte("x")}}, batchOpts{})
	fs.limit = 100
	if err := d.Add(key, later, 1); err == nil {
		t.Fatal("a batch after the failed one was accepted")
	}
	if err := d.Add(key, batches[failed], 1); err != nil {
		t.Fatalf("retrying the failed batch: %v", err)
	}
	if err := d.Add(key, later, 1); err != nil {
		t.Fatal(err)
	}
	l, _ := d.Log(key)
	if got := readAll(t, l); len(got) != failed+2 {
		t.Fatalf("%d records, want %d", len(got), failed+2)
	}
}

// With a tail budget, the partitions' unsealed tails together stay near it however much
// each may hold alone: over the budget a builder writes what it holds once it has
// budgetChunkBytes (cutEarly) instead of rolling its segment, so 16 partitions writing
// 2 MiB each hold a fraction of the MiB chunk each would fill unbudgeted, and no segment
// is sealed early. Everything stays readable.
func TestDrainTailBudgetBoundsTailMemory(t *testing.T) {
	c := &clock{}
	opts := smallOpts(c)
	opts.MaxActiveBytes = 16 << 20
	const budget = 2 << 20
	opts.TailBudget = budget
	d := NewDrain(NewMemStore(), func(string) Config { return smallConfig() }, opts)
	var keys []string
	for p := int32(0); p < 16; p++ {
		keys = append(keys, PartitionKey([16]byte{1}, p))
	}
	value := make([]byte, 32<<10)
	var peak int64
	for i := 0; i < 64*len(keys); i++ { // 2 MiB per partition
		key := keys[i%len(keys)]
		l, err := d.Log(key)
		if err != nil {
			t.Fatal(err)
		}
		b := mkBatch(t, l.NextOffset(), []rec{{key: []byte("k"), value: value, ts: int64(i)}}, batchOpts{})
		if err := d.Add(key, b, 1); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, d.opts.Tails.Load())
	}
	// Past the budget each builder holds at most a buffer of 2 x budgetChunkBytes and
	// the chunks being written (maxPendChunks + 1 before Append waits); the add that
	// crossed it may have grown one buffer to chunkBytes.
	if limit := int64(budget + chunkBytes + len(keys)*(maxPendChunks+2)*2*budgetChunkBytes); peak > limit {
		t.Fatalf("tails held %d bytes at their peak, want at most %d", peak, limit)
	}
	for _, key := range keys {
		l, _ := d.Log(key)
		waitFlushed(l)
	}
	if got, limit := d.opts.Tails.Load(), int64(budget+len(keys)*2*budgetChunkBytes); got > limit {
		t.Fatalf("tails hold %d bytes once written, want at most %d (unbudgeted: a MiB each)", got, limit)
	}
	for _, key := range keys {
		l, _ := d.Log(key)
		if n := len(l.Segments()); n != 0 {
			t.Fatalf("%s: %d sealed segments, want none (the budget writes, it does not roll)", key, n)
		}
		for off := int64(0); off < 64; off++ {
			b, err := l.Read(off, 1) // a batch larger than maxBytes comes whole
			if err != nil || len(b) == 0 {
				t.Fatalf("%s: offset %d unreadable: %v", key, off, err)
			}
		}
	}
}

// waitFlushed waits for the background writes of l's builders to stop.
func waitFlushed(l *Log) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range []*segBuilder{l.sealing, l.active} {
		for b != nil && b.flushing {
			l.flushed.Wait()
		}
	}
}

// gateStore is a MemStore whose Puts of segments (the seals of small tails) wait until
// want of them are in flight at once, or (once) for 5 s; it records the most in flight.
type gateStore struct {
	*MemStore
	want          int
	mu            sync.Mutex
	cond          *sync.Cond
	inFlight, max int
	timedOut      bool
}

func (g *gateStore) Put(name string, data []byte) error {
	if !strings.HasSuffix(name, ".seg") {
		return g.MemStore.Put(name, data)
	}
	g.mu.Lock()
	g.inFlight++
	g.max = max(g.max, g.inFlight)
	g.cond.Broadcast()
	stop := time.AfterFunc(5*time.Second, func() {
		g.mu.Lock()
		g.timedOut = true // once: the Puts after it do not wait again
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	for g.max < g.want && !g.timedOut {
		g.cond.Wait()
	}
	stop.Stop()
	g.mu.Unlock()
	err := g.MemStore.Put(name, data)
	g.mu.Lock()
	g.inFlight--
	g.mu.Unlock()
	return err
}

// SealPinning and SealIdle seal sealWorkers tails at once (their fsyncs then share the
// device's flushes) and every one of them. (More than sealWorkers at once fails it only
// when the extra seal starts before the first ones end.)
func TestDrainSealsConcurrently(t *testing.T) {
	for _, how := range []string{"pinning", "idle"} {
		t.Run(how, func(t *testing.T) {
			c := &clock{}
			g := &gateStore{MemStore: NewMemStore(), want: sealWorkers}
			g.cond = sync.NewCond(&g.mu)
			d := NewDrain(g, func(string) Config { return smallConfig() }, Options{Now: c.now})
			const parts = 3 * sealWorkers
			for p := int32(0); p < parts; p++ {
				b := mkBatch(t, 0, []rec{{key: []byte("k"), value: make([]byte, 100)}}, batchOpts{})
				if err := d.Add(PartitionKey([16]byte{7}, p), b, 1); err != nil {
					t.Fatal(err)
				}
			}
			c.advance(5000)
			var err error
			if how == "pinning" {
				err = d.SealPinning(2)
			} else {
				_, err = d.SealIdle(1000, 1)
			}
			if err != nil {
				t.Fatal(err)
			}
			g.mu.Lock()
			most, timedOut := g.max, g.timedOut
			g.mu.Unlock()
			if timedOut || most != sealWorkers {
				t.Fatalf("at most %d seals in flight at once (waited in vain: %v), want %d", most, timedOut, sealWorkers)
			}
			for p := int32(0); p < parts; p++ {
				l, _ := d.Log(PartitionKey([16]byte{7}, p))
				if n, durable := len(l.Segments()), l.DurableOffset(); n != 1 || durable != 1 {
					t.Fatalf("partition %d has %d sealed segments, durable to %d; want 1, 1", p, n, durable)
				}
			}
		})
	}
}
