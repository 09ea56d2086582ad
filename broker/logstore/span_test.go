package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
)

// cutRead is what a fetch keeps of ReadAppend's answer (broker's readBatches): whole
// batches below upper, and nothing when the first is larger than maxBytes unless minOne.
func cutRead(t *testing.T, b []byte, upper int64, maxBytes int, minOne bool) (out []byte, last int64, records int64) {
	t.Helper()
	last = -1
	pos := 0
	for pos < len(b) {
		h, err := parseBatch(b[pos:])
		if err != nil {
			t.Fatalf("ReadAppend returned a bad batch: %v", err)
		}
		if h.Last >= upper || !minOne && pos+h.Size > maxBytes {
			break
		}
		pos += h.Size
		last = h.Last
		records += int64(h.NumRecords)
	}
	return b[:pos], last, records
}

func spanBytes(t *testing.T, sp Span) []byte {
	t.Helper()
	b := make([]byte, sp.Len)
	if _, err := sp.File.ReadAt(b, sp.Off); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return b
}

// appendMixed appends n batches of varying sizes (tiny ones, and every fifth several
// index intervals long), so spans cross windows and segment boundaries.
func appendMixed(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		base := l.NextOffset()
		nrec := 1 + i%4
		size := 10
		if i%5 == 0 {
			size = 900
		}
		var recs []rec
		for j := 0; j < nrec; j++ {
			recs = append(recs, rec{key: []byte(fmt.Sprintf("k%d", i)), value: bytes.Repeat([]byte{byte(i)}, size), ts: int64(i)})
		}
		if err := l.Append(mkBatch(t, base, recs, batchOpts{})); err != nil {
			t.Fatal(err)
		}
	}
}

// The zero-copy read returns, byte for byte, what the copy path keeps of a read: at every
// offset, with several byte limits, cut by an upper offset (a high watermark or a last
// stable offset inside the data) and with or without minOne.
func TestReadSpanMatchesReadAppend(t *testing.T) {
	d, err := OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	opts := smallOpts(c)
	opts.MaxActiveBytes = 6000
	l, err := Open(d, "p/", smallConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	appendMixed(t, l, 150)
	if n := len(l.Segments()); n < 5 {
		t.Fatalf("%d sealed segments, want several", n)
	}
	durable, next := l.DurableOffset(), l.NextOffset()
	if durable == next {
		t.Fatal("want an unsealed tail too")
	}
	spans, tails := 0, 0
	for off := int64(0); off <= next; off++ {
		for _, maxBytes := range []int{0, 1, 150, 700, 2500, 1 << 20} {
			for _, upper := range []int64{next, off + 2, off} {
				for _, minOne := range []bool{true, false} {
					name := fmt.Sprintf("offset %d max %d upper %d minOne %v", off, maxBytes, upper, minOne)
					raw, err := l.ReadAppend(nil, off, maxBytes)
					if err != nil {
						t.Fatalf("%s: ReadAppend: %v", name, err)
					}
					want, wantLast, wantRecs := cutRead(t, raw, upper, maxBytes, minOne)
					sp, ok, err := l.ReadSpan(off, maxBytes, upper, minOne)
					if err != nil {
						t.Fatalf("%s: ReadSpan: %v", name, err)
					}
					if !ok {
						if off < durable {
							t.Fatalf("%s: not served from the segment holding it (durable %d)", name, durable)
						}
						tails++
						continue
					}
					var got []byte
					if sp.Len > 0 {
						got = spanBytes(t, sp)
						sp.Close()
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("%s: span %d bytes at %d, copy path %d bytes", name, len(got), sp.Off, len(want))
					}
					if len(want) > 0 && (sp.Last != wantLast || sp.Records != wantRecs) {
						t.Fatalf("%s: span last %d records %d, want %d and %d", name, sp.Last, sp.Records, wantLast, wantRecs)
					}
					spans++
				}
			}
		}
	}
	if spans == 0 || tails == 0 {
		t.Fatalf("%d reads from segments, %d from the tail: want both", spans, tails)
	}
	if _, _, err := l.ReadSpan(-1, 100, next, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Errorf("ReadSpan below the log start: %v", err)
	}
}

// A compacted segment has offset gaps: its spans count the records of the batches they
// hold (the copy path's count), not the offsets they cover.
func TestReadSpanCompactedSegmentRecords(t *testing.T) {
	d, err := OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	l, err := Open(d, "p/", compactConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	// Each batch's first record has a key every batch repeats: compaction keeps the batches
	// with one record fewer, so their offsets cover more records than they hold.
	for i := 0; i < 300; i++ {
		base := l.NextOffset()
		var recs []rec
		for j := 0; j < 4; j++ {
			k := fmt.Sprintf("key%d", i*4+j)
			if j == 0 {
				k = "shared"
			}
			recs = append(recs, rec{key: []byte(k), value: []byte(fmt.Sprintf("v%d", base+int64(j)))})
		}
		if err := l.Append(mkBatch(t, base, recs, batchOpts{})); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	if st, err := l.Clean(); err != nil || st.RecordsRemoved == 0 {
		t.Fatalf("Clean = %+v, %v", st, err)
	}
	next, gaps := l.NextOffset(), false
	for off := l.LogStartOffset(); off < next; off++ {
		raw, err := l.ReadAppend(nil, off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		want, wantLast, wantRecs := cutRead(t, raw, next, 1<<20, true)
		sp, ok, err := l.ReadSpan(off, 1<<20, next, true)
		if err != nil || !ok {
			t.Fatalf("offset %d: ReadSpan ok %v, %v", off, ok, err)
		}
		if len(want) == 0 {
			continue
		}
		got := spanBytes(t, sp)
		sp.Close()
		if !bytes.Equal(got, want) || sp.Last != wantLast || sp.Records != wantRecs {
			t.Fatalf("offset %d: span %d bytes, last %d, %d records; copy path %d bytes, last %d, %d records",
				off, len(got), sp.Last, sp.Records, len(want), wantLast, wantRecs)
		}
		gaps = gaps || wantRecs < wantLast-off+1
	}
	if !gaps {
		t.Fatal("no read crossed an offset gap")
	}
}

// Other stores have no files: the caller reads with ReadAppend.
func TestReadSpanNotFromMemStore(t *testing.T) {
	c := &clock{}
	l, err := Open(NewMemStore(), "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	appendMixed(t, l, 60)
	if len(l.Segments()) == 0 {
		t.Fatal("want sealed segments")
	}
	if _, ok, err := l.ReadSpan(0, 1<<20, l.NextOffset(), true); ok || err != nil {
		t.Fatalf("ReadSpan on a MemStore: ok %v, %v", ok, err)
	}
}

// Retention deletes the segment of a span before it is sent: the open file still holds the
// segment's bytes (never another object's), and a new read is out of range.
func TestReadSpanSurvivesRetention(t *testing.T) {
	d, err := OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	l, err := Open(d, "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	appendMixed(t, l, 120)
	segs := l.Segments()
	if len(segs) < 3 {
		t.Fatalf("%d segments, want 3 or more", len(segs))
	}
	off := segs[0].Base + 1
	want, err := l.ReadAppend(nil, off, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	sp, ok, err := l.ReadSpan(off, 1<<20, l.NextOffset(), true)
	if err != nil || !ok || sp.Len == 0 {
		t.Fatalf("ReadSpan: ok %v len %d, %v", ok, sp.Len, err)
	}
	defer sp.Close()
	if err := l.DeleteRecordsBefore(segs[2].Base); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(segs[0].Name, 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("segment %s still there after retention: %v", segs[0].Name, err)
	}
	if got := spanBytes(t, sp); !bytes.Equal(got, want) {
		t.Fatalf("span of a deleted segment: %d bytes differ from the %d read before", len(got), len(want))
	}
	if _, _, err := l.ReadSpan(off, 1<<20, l.NextOffset(), true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("ReadSpan below the new log start: %v", err)
	}
}

// A corrupt batch length in a segment is an error, not a span past the data.
func TestReadSpanCorruptSegment(t *testing.T) {
	d, err := OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	l, err := Open(d, "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	appendMixed(t, l, 60)
	s := l.Segments()[0]
	corruptFirstBatchLength(t, d, s.Name)
	if _, _, err := l.ReadSpan(s.Base, 1<<20, l.NextOffset(), true); !errors.Is(err, errBadBatch) {
		t.Fatalf("ReadSpan of a corrupt segment: %v", err)
	}
}

// FuzzReadSpan puts arbitrary bytes as a segment file in a DirStore and reads it with the
// zero-copy reader (headers through a window, trusting the trailer): it never fails other
// than with an error, never returns a range past the data, and where both readers succeed
// it returns what the copy path keeps.
func FuzzReadSpan(f *testing.F) {
	seg := seedSegment(f)
	f.Add(seg, int64(0), uint16(100))
	f.Add(seg, int64(2), uint16(1))
	corrupt := bytes.Clone(seg)
	corrupt[9] ^= 0x40
	f.Add(corrupt, int64(1), uint16(4096))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte, off int64, maxBytes uint16) {
		// In memory, files only for ReadSpan: a DirStore's fsyncs (Open may write a
		// checkpoint or delete a segment) would make each input take a disk's time.
		d := &memFileStore{MemStore: NewMemStore(), dir: dir}
		if err := d.Put(segName("p/", 0, 0), b); err != nil {
			t.Fatal(err)
		}
		l, err := Open(d, "p/", DefaultConfig(), Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return
		}
		for _, minOne := range []bool{true, false} {
			sp, ok, err := l.ReadSpan(off, int(maxBytes), l.NextOffset(), minOne)
			if err != nil || !ok || sp.Len == 0 {
				continue
			}
			got := spanBytes(t, sp)
			sp.Close()
			if sp.Off < 0 || sp.Off+sp.Len > int64(len(b)) {
				t.Fatalf("span %d+%d past a %d-byte segment", sp.Off, sp.Len, len(b))
			}
			raw, err := l.ReadAppend(nil, off, int(maxBytes))
			if err != nil {
				continue
			}
			if want, _, _ := cutRead(t, raw, l.NextOffset(), int(maxBytes), minOne); !bytes.Equal(got, want) {
				t.Fatalf("span of %d bytes, copy path %d", len(got), len(want))
			}
		}
	})
}

// memFileStore is a MemStore whose objects can be opened as files (written out unsynced
// when opened): a FileStore without fsyncs, for the fuzz target.
type memFileStore struct {
	*MemStore
	dir string
}

func (m *memFileStore) Open(name string) (*os.File, error) {
	b, err := m.Get(name, 0, -1)
	if err != nil {
		return nil, err
	}
	p := m.dir + "/obj"
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return nil, err
	}
	return os.Open(p)
}

// A read with a byte limit far below a sealed batch's size still returns that batch whole
// (the scan read a window of limit + index interval and failed on the batch's end: a
// KAFKA_STORAGE_ERROR for any fetch whose partition limit was below a batch's size).
func TestReadAppendBatchLargerThanTheWindow(t *testing.T) {
	d, err := OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	l, err := Open(d, "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	big := mkBatch(t, 0, []rec{{value: bytes.Repeat([]byte("x"), 3000), ts: 1}}, batchOpts{})
	if err := l.Append(big); err != nil {
		t.Fatal(err)
	}
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	for _, maxBytes := range []int{0, 1, 100} {
		got, err := l.ReadAppend(nil, 0, maxBytes)
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("ReadAppend(0, %d) from the segment: %d bytes, %v; want the %d-byte batch", maxBytes, len(got), err, len(big))
		}
	}
}

// corruptFirstBatchLength rewrites the segment object name with its first batch's length
// pointing far past the data.
func corruptFirstBatchLength(t *testing.T, d Store, name string) {
	t.Helper()
	b, err := d.Get(name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b[8], b[9] = 0x7f, 0xff
	if err := d.Put(name, b); err != nil {
		t.Fatal(err)
	}
}
