package logstore

import (
	"bytes"
	"math/rand"
	"testing"
)

// TestDirStoreDirectPut: a large object (the direct I/O path where the file system allows
// it, buffered elsewhere) reads back byte for byte at its exact size, including a size that
// is not a multiple of the block size.
func TestDirStoreDirectPut(t *testing.T) {
	st, err := OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{dioMinBytes, dioMinBytes + 12345} {
		buf := make([]byte, n, n+dioAlign)
		rand.New(rand.NewSource(int64(n))).Read(buf)
		if err := st.Put("p/big.seg", buf); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get("p/big.seg", 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, buf) {
			t.Fatalf("size %d: read back %d bytes, not the same", n, len(got))
		}
		objs, err := st.List("p/")
		if err != nil || len(objs) != 1 || objs[0].Size != int64(n) {
			t.Fatalf("list %+v %v", objs, err)
		}
	}
}
