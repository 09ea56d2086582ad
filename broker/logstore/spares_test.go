package logstore

import (
	"bytes"
	"sync/atomic"
	"testing"
	"unsafe"
)

// TestSparesPoolBoundsAndCounts: the pool keeps at most max buffers (a larger one replaces
// the smallest), hands out only big enough ones, and counts what it keeps in the tails'
// counter.
func TestSparesPoolBoundsAndCounts(t *testing.T) {
	var tails atomic.Int64
	s := NewSpares(2, &tails)
	s.put(make([]byte, 10, 100))
	s.put(make([]byte, 0, 200))
	if got := tails.Load(); got != 300 {
		t.Fatalf("counted %d bytes, want 300", got)
	}
	s.put(make([]byte, 0, 50)) // full, and smaller than both: not kept
	s.put(make([]byte, 0, 400))
	if got, want := s.Bytes(), int64(600); got != want || tails.Load() != want {
		t.Fatalf("kept %d (counted %d) bytes, want %d: the 400 replaces the 100", got, tails.Load(), want)
	}
	if b := s.take(500); b != nil {
		t.Fatalf("took a %d-byte buffer for 500", cap(b))
	}
	b := s.take(100)
	if cap(b) != 400 || len(b) != 0 {
		t.Fatalf("took len %d cap %d, want the largest: len 0 cap 400", len(b), cap(b))
	}
	if tails.Load() != 200 {
		t.Fatalf("counted %d after take, want 200", tails.Load())
	}
	s.Drop()
	if s.Bytes() != 0 || tails.Load() != 0 || s.take(1) != nil {
		t.Fatalf("after Drop: kept %d, counted %d", s.Bytes(), tails.Load())
	}
	var none *Spares // a Log without a pool
	none.put(make([]byte, 0, 10))
	if none.take(1) != nil || none.Bytes() != 0 {
		t.Fatal("a nil pool kept a buffer")
	}
}

// TestSealedBufferServesAnotherLog: the buffer of a segment one partition sealed becomes
// the next active segment of another partition of the same Drain, and both logs keep
// their own bytes (the reuse must not let one's batches show in the other).
func TestSealedBufferServesAnotherLog(t *testing.T) {
	st := NewMemStore()
	opts := Options{MaxActiveBytes: 1 << 20}
	d := NewDrain(st, func(string) Config { return DefaultConfig() }, opts)
	la, err := d.Log("a/")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := d.Log("b/")
	if err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 64<<10)
	wrote := map[byte][]byte{}
	fill := func(l *Log, tag byte, from, n int) {
		for i := from; i < from+n; i++ {
			val[0], val[len(val)-1] = tag, byte(i)
			b := mkBatch(t, int64(i), []rec{{value: val, ts: 1}}, batchOpts{})
			if err := l.Append(b); err != nil {
				t.Fatal(err)
			}
			wrote[tag] = append(wrote[tag], b...)
		}
	}
	// a fills its 1 MiB segment and rolls (a synchronous seal: AsyncRoll is off) into a
	// buffer of the roll size; b does the same.
	fill(la, 'a', 0, 17)
	fill(lb, 'b', 0, 17)
	if err := la.Seal(); err != nil {
		t.Fatal(err)
	}
	la.mu.Lock()
	if la.active != nil {
		t.Fatal("a still has an active segment after Seal")
	}
	la.mu.Unlock()
	if d.opts.Spares.Bytes() == 0 {
		t.Fatal("a's sealed buffer was not kept")
	}
	kept := d.opts.Spares.bufs[0]
	// b fills its second segment: its roll takes a's buffer.
	fill(lb, 'b', 17, 17)
	lb.mu.Lock()
	got := lb.active != nil && unsafe.SliceData(lb.active.data) == unsafe.SliceData(kept)
	lb.mu.Unlock()
	if !got {
		t.Fatal("b's new active segment did not reuse a's sealed buffer")
	}
	for _, c := range []struct {
		l   *Log
		tag byte
	}{{la, 'a'}, {lb, 'b'}} {
		var out []byte
		for off, i := int64(0), 0; off < c.l.NextOffset() && i < 100; i++ { // one segment per read
			n := len(out)
			var err error
			if out, err = c.l.ReadAppend(out, off, 64<<20); err != nil {
				t.Fatal(err)
			}
			for pos := n; pos < len(out); {
				h, err := parseBatch(out[pos:])
				if err != nil {
					t.Fatal(err)
				}
				pos, off = pos+h.Size, h.Last+1
			}
		}
		if !bytes.Equal(out, wrote[c.tag]) {
			t.Fatalf("log %c: read %d bytes, not the %d it was given", c.tag, len(out), len(wrote[c.tag]))
		}
	}
}
