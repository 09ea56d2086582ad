package logstore

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/klite/klite/broker/storage"
)

// TestCreatorConformance runs the same checks against every Store that writes objects as
// they fill: nothing visible before Commit, reads of what was written, Commit replacing
// whole, Abort leaving the old object, reads after Commit failing (the Log looks again).
func TestCreatorConformance(t *testing.T) {
	all := stores(t)
	ts, _, _ := tiered(t)
	all["tiered"] = ts
	for name, st := range all {
		t.Run(name, func(t *testing.T) { testCreator(t, st) })
	}
}

func testCreator(t *testing.T, st Store) {
	c := st.(Creator)
	if _, err := c.Create("w/a" + tmpSuffix); err == nil {
		t.Fatal("Create of a temporary name succeeded")
	}
	w, err := c.Create("w/a")
	if err != nil {
		t.Fatal(err)
	}
	// An aligned MiB (the direct I/O path of a DirStore), then unaligned pieces.
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, p := range [][]byte{big, []byte("abc"), []byte("defg")} {
		if err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if w.Size() != 1<<20+7 {
		t.Fatalf("Size = %d", w.Size())
	}
	got := make([]byte, 6)
	if _, err := w.ReadAt(got, 1<<20-1); err != nil || !bytes.Equal(got, append([]byte{big[1<<20-1]}, "abcde"...)) {
		t.Fatalf("ReadAt across the pieces = %q, %v", got, err)
	}
	if l, _ := st.List("w/"); len(l) != 0 {
		t.Fatalf("List before Commit = %v", l)
	}
	if _, err := st.Get("w/a", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Commit: %v, want ErrNotFound", err)
	}
	if err := w.Commit([]byte("hij")); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte(nil), big...), "abcdefghij"...)
	if b, err := st.Get("w/a", 0, -1); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("after Commit: %d bytes, %v; want %d", len(b), err, len(want))
	}
	if l, _ := st.List("w/"); len(l) != 1 || l[0].Name != "w/a" || l[0].Size != int64(len(want)) {
		t.Fatalf("List after Commit = %v", l)
	}
	if _, err := w.ReadAt(got, 0); err != nil {
		t.Fatalf("ReadAt after Commit: %v", err)
	}
	w.Close()
	if _, err := w.ReadAt(got, 0); err == nil {
		t.Fatal("ReadAt after Close succeeded")
	}
	// Abort leaves the old object; a committed replacement is whole.
	w2, err := c.Create("w/a")
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	if err := w2.Abort(); err != nil {
		t.Fatal(err)
	}
	if b, _ := st.Get("w/a", 0, -1); !bytes.Equal(b, want) {
		t.Fatalf("after Abort: %d bytes", len(b))
	}
	w3, err := c.Create("w/a")
	if err != nil {
		t.Fatal(err)
	}
	if err := w3.Commit([]byte("new"), []byte("er")); err != nil {
		t.Fatal(err)
	}
	if b, _ := st.Get("w/a", 0, -1); string(b) != "newer" {
		t.Fatalf("after the replacing Commit: %q", b)
	}
	if l, _ := st.List("w/"); len(l) != 1 {
		t.Fatalf("List = %v", l)
	}
}

// A DirStore writer whose disk is full: a failed Write or Commit changes nothing, and once
// the disk has room a retry commits the whole object; the temporary file is gone after.
func TestDirWriterRetriesAfterFaults(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDirStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &storage.Faults{}
	d.SetFaults(f)
	w, err := d.Create("p/x")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	f.SetWriteErr(errDiskFull)
	if err := w.Write([]byte("two")); !errors.Is(err, errDiskFull) {
		t.Fatalf("Write on a full disk: %v", err)
	}
	if err := w.Commit([]byte("three")); !errors.Is(err, errDiskFull) {
		t.Fatalf("Commit on a full disk: %v", err)
	}
	f.SetWriteErr(nil)
	f.SetSyncErr(errDiskFull)
	if err := w.Commit([]byte("three")); !errors.Is(err, errDiskFull) {
		t.Fatalf("Commit with a failing fsync: %v", err)
	}
	if _, err := d.Get("p/x", 0, -1); !errors.Is(err, ErrNotFound) || w.Size() != 3 {
		t.Fatalf("after the failures: %v, size %d", err, w.Size())
	}
	f.SetSyncErr(nil)
	if err := w.Write([]byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit([]byte("three")); err != nil {
		t.Fatal(err)
	}
	if b, _ := d.Get("p/x", 0, -1); string(b) != "onetwothree" {
		t.Fatalf("object = %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "p", "x"+tmpSuffix)); !os.IsNotExist(err) {
		t.Fatalf("temporary file after Commit: %v", err)
	}
}

var errDiskFull = errors.New("no space left on device (injected)")

// Buffered writes are handed to the disk every writebackBytes (not left as dirty pages for
// the kernel to write at once later), and the object reads back whole.
func TestDirWriterStartsWritebackOfBufferedWrites(t *testing.T) {
	d, err := OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := d.Create("p/x")
	if err != nil {
		t.Fatal(err)
	}
	dw := w.(*dirWriter)
	chunk := bytes.Repeat([]byte{7}, 16<<10) // small chunks go buffered
	var want []byte
	for i := 0; i < writebackBytes/len(chunk)-1; i++ {
		if err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		want = append(want, chunk...)
	}
	if dw.kicked != 0 {
		t.Fatalf("writeback started at %d with %d bytes written, want none below %d", dw.kicked, w.Size(), writebackBytes)
	}
	for i := 0; i < 2; i++ {
		if err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		want = append(want, chunk...)
	}
	if dw.kicked != writebackBytes {
		t.Fatalf("writeback started for %d bytes of %d, want %d", dw.kicked, w.Size(), writebackBytes)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, err := d.Get("p/x", 0, -1)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("object: %d bytes, %v; want %d", len(got), err, len(want))
	}
}

// WriteDurable as the single-copy builder calls it: aligned pieces spanning chunks with a
// partial last block (one vectored direct write on a DirStore), the next write starting
// again at that block, a write that rewinds (SetSize), and pieces not aligned in memory
// (through the page cache). After each sync the leftover holds exactly the bytes written,
// on the directory store and its in-memory twin.
func TestWriteDurablePieces(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	want := make([]byte, 3*chunkBytes)
	rng.Read(want)
	buf := alignedBytes(len(want))[:len(want)]
	copy(buf, want)
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			dc := st.(DurableCreator)
			w, err := dc.CreateDurable("p/00000000000000000000.seg")
			if err != nil {
				t.Fatal(err)
			}
			check := func(step string, n int64) {
				t.Helper()
				if err := w.SyncDurable(); err != nil {
					t.Fatal(err)
				}
				got, err := dc.ReadLeftover("p/00000000000000000000.seg", 0, n)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want[:n]) {
					t.Fatalf("%s: the leftover's first %d bytes differ from what was written", step, n)
				}
			}
			// Two whole chunks' worth of pieces and a partial block.
			end1 := int64(chunkBytes + 5000)
			if err := w.WriteDurable(0, buf[:chunkBytes], buf[chunkBytes:end1]); err != nil {
				t.Fatal(err)
			}
			check("first write", end1)
			// From the block the last write ended in, into the third chunk.
			from := end1 &^ (dioAlign - 1)
			end2 := int64(2*chunkBytes + 777)
			if err := w.WriteDurable(from, buf[from:2*chunkBytes], buf[2*chunkBytes:end2]); err != nil {
				t.Fatal(err)
			}
			check("second write", end2)
			// Rewind (an unstaged batch) and write different bytes there.
			w.SetSize(end1)
			copy(want[end1:], bytes.Repeat([]byte{0xAB}, 3000))
			copy(buf[end1:], want[end1:end1+3000])
			if err := w.WriteDurable(from, buf[from:end1+3000]); err != nil {
				t.Fatal(err)
			}
			check("rewound write", end1+3000)
			// Pieces not aligned in memory.
			odd := append([]byte{0}, want[end1+3000:end1+9000]...)[1:]
			if err := w.WriteDurable(end1+3000, odd); err != nil {
				t.Fatal(err)
			}
			check("unaligned write", end1+9000)
			if w.Size() != end1+9000 {
				t.Fatalf("Size %d, want %d", w.Size(), end1+9000)
			}
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
