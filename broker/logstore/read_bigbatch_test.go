package logstore

import (
	"bytes"
	"testing"
)

// A batch larger than the 64 KiB scan window (clients send up to 1 MiB and more): a
// timestamp lookup and a compaction pass scan it whole from a sealed segment. The scan used
// to parse the first window's bytes as the whole batch and fail.
func TestScanBatchLargerThanWindow(t *testing.T) {
	c := &clock{}
	opts := smallOpts(c)
	opts.MaxActiveBytes = 4 << 20
	l, err := Open(NewMemStore(), "p/", smallConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 3*readWindow)
	for i := int64(0); i < 3; i++ {
		b := mkBatch(t, i*2, []rec{{key: []byte("k"), value: big, ts: 1000 + 10*i}, {key: []byte("k"), value: []byte("v"), ts: 1000 + 10*i}}, batchOpts{})
		if err := l.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{0, 2, 4} {
		off, ts, ok, err := l.OffsetForTimestamp(1000 + 10*int64(i))
		if err != nil || !ok || off != want || ts != 1000+10*int64(i) {
			t.Fatalf("OffsetForTimestamp(%d) = %d, %d, %v, %v; want %d", 1000+10*i, off, ts, ok, err, want)
		}
	}
}
