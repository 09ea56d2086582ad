package logstore

import (
	"bytes"
	"log/slog"
	"testing"
)

// seedSegment builds a valid segment object with data, tombstones and an aborted txn.
func seedSegment(t testing.TB) []byte {
	b := newSegBuilder(0, 64, true, 5)
	add := func(recs []rec, o batchOpts) {
		raw := mkBatch(t, b.next, recs, o)
		h, err := parseBatch(raw)
		if err != nil {
			t.Fatal(err)
		}
		b.add(raw, &h)
	}
	add([]rec{{key: []byte("a"), value: []byte("1"), ts: 10}, {key: []byte("b"), ts: 12}}, batchOpts{})
	add([]rec{{key: []byte("c"), value: []byte("3"), ts: 11}}, batchOpts{codec: 4})
	add([]rec{{key: []byte("d"), value: []byte("4"), ts: 20}}, batchOpts{pid: 3, txn: true})
	add([]rec{{ts: 21}}, batchOpts{pid: 3, txn: true, control: 1})
	b.aborted = append(b.aborted, AbortedTxn{3, 3, 4})
	return b.finish(b.next+2, 7, []openTxn{{9, 1}})
}

// FuzzSegment feeds arbitrary bytes to the segment decoder and, through a Store, to the
// read paths that trust the trailer and read index sections unchecked.
func FuzzSegment(f *testing.F) {
	seg := seedSegment(f)
	f.Add(seg)
	f.Add(seg[len(seg)-trailerLen:])
	f.Add(append(bytes.Clone(seg[:len(seg)-5]), 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		name := segName("p/", 0, 0)
		if s, ft, err := decodeSegment(name, b); err == nil {
			ft.seekOffset(s.base)
			ft.seekTime(s.maxTS)
		}
		st := NewMemStore()
		if err := st.Put(name, b); err != nil {
			t.Fatal(err)
		}
		l, err := Open(st, "p/", DefaultConfig(), Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return
		}
		for off := l.LogStartOffset(); off < min(l.NextOffset(), 64); off++ {
			if _, err := l.Read(off, 100); err != nil {
				break
			}
		}
		l.OffsetForTimestamp(15)
		l.AbortedTxns(0, 100)
		l.Clean()
		l.EnforceRetention()
	})
}

// FuzzSegmentIndex feeds arbitrary footers (index sections and trailer) to the footer
// decoder and the index lookups.
func FuzzSegmentIndex(f *testing.F) {
	seg := seedSegment(f)
	s, _, err := decodeSegment("x", seg)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seg[s.dataLen:], int64(2))
	f.Fuzz(func(t *testing.T, footer []byte, target int64) {
		if len(footer) < trailerLen {
			return
		}
		for _, dataLen := range []int64{0, 100, 1 << 20} {
			s, err := decodeTrailer(footer[len(footer)-trailerLen:], dataLen+int64(len(footer)))
			if err != nil {
				continue
			}
			s.name = "x"
			if ft, err := decodeFooter(&s, footer); err == nil {
				if p := ft.seekOffset(target); p < 0 || p >= max(s.dataLen, 1) {
					t.Fatalf("seekOffset(%d) = %d outside %d data bytes", target, p, s.dataLen)
				}
				ft.seekTime(target)
			}
		}
		seek(footer, target, false)
		seek(footer, target, true)
	})
}

// FuzzCheckpoint: decoding never panics, and what decodes re-encodes identically.
func FuzzCheckpoint(f *testing.F) {
	f.Add(checkpoint{5, 9}.encode())
	f.Add([]byte("KLCP"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCheckpoint(b)
		if err == nil && !bytes.Equal(c.encode(), b) {
			t.Fatalf("checkpoint %x decodes to %+v which encodes differently", b, c)
		}
	})
}

// FuzzRecords feeds arbitrary batches to the batch and record decoders the reader and the
// cleaner use, and to the cleaner's batch rebuild.
func FuzzRecords(f *testing.F) {
	f.Add(mkBatch(f, 0, []rec{{key: []byte("a"), value: []byte("1")}, {key: []byte("b")}}, batchOpts{}))
	f.Add(mkBatch(f, 7, []rec{{key: []byte("a"), value: []byte("1")}, {value: []byte("2")}}, batchOpts{codec: 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseBatch(b)
		if err != nil {
			return
		}
		if h.Size > len(b) || h.Last < h.Base {
			t.Fatalf("parseBatch accepted size %d of %d bytes, offsets %d..%d", h.Size, len(b), h.Base, h.Last)
		}
		controlType(b, &h)
		recs, err := records(b, &h)
		if err != nil {
			return
		}
		nb, removed, err := filterBatch(b, &h, func(r *record, off int64) bool { return r.key != nil && !r.tombstone })
		if err != nil {
			return
		}
		if nb != nil {
			nh, err := parseBatch(nb)
			if err != nil || removed > 0 && !checkBatchCRC(nb, &nh) || nh.Base != h.Base || nh.Last != h.Last {
				t.Fatalf("rebuilt batch does not parse: %v", err)
			}
			if kept, err := records(nb, &nh); err != nil || len(kept)+removed != len(recs) {
				t.Fatalf("rebuilt batch: %d records + %d removed != %d (%v)", len(kept), removed, len(recs), err)
			}
		}
	})
}

// FuzzReplayLeftover feeds arbitrary bytes as a single-copy segment in the making (what a
// crash left) to the replay's reader: ReplayData must not panic, and what it returns must
// be the batch asked for.
func FuzzReplayLeftover(f *testing.F) {
	seg := seedSegment(f)
	s, _, err := decodeSegment(segName("p/", 0, 0), seg)
	if err != nil {
		f.Fatal(err)
	}
	data := seg[:s.dataLen]
	f.Add(data, int64(0), 100)
	f.Add(data, int64(2), 80)
	f.Add(data[:len(data)-7], int64(3), 90)
	f.Add(append(bytes.Clone(data), make([]byte, 4096)...), int64(5), 70)
	f.Fuzz(func(t *testing.T, b []byte, base int64, n int) {
		if n < 0 || n > 1<<20 {
			return
		}
		m := NewMemStore()
		m.left[segName("p/", 0, 0)] = b
		l, err := Open(m, "p/", DefaultConfig(), Options{Logger: slog.New(slog.DiscardHandler), SingleCopy: true})
		if err != nil {
			return
		}
		for _, at := range []int64{base, 0, base + 1} {
			got, err := l.ReplayData(at, n)
			if err != nil {
				continue
			}
			h, perr := parseBatch(got)
			if perr != nil || h.Base != at || h.Size != n || len(got) != n {
				t.Fatalf("ReplayData(%d, %d) returned %d bytes that are not that batch (%v)", at, n, len(got), perr)
			}
		}
	})
}
