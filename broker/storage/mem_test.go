package storage

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
)

func TestMemWALFailAppendsAndReplayBuffer(t *testing.T) {
	w := NewMemWAL()
	replayAll(t, w)
	a := mustAppend(t, w, testBatch(0, 100))
	w.FailAppends(syscall.ENOSPC)
	if _, err := appendWait(t, w, testBatch(1, 100)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append while failing: %v", err)
	}
	w.FailAppends(nil)
	b := mustAppend(t, w, testBatch(1, 100))
	if b.Offset != a.Offset+100+entryHeaderSize {
		t.Fatalf("failed append took space: %+v after %+v", b, a)
	}
	w2 := w.Reopen()
	defer w2.Close()
	var kept []byte
	n := 0
	err := w2.Replay(func(bt *Batch, loc Location) error {
		if n == 0 {
			kept = bt.Data
			if !bytes.Equal(kept, testBatch(0, 100).Data) {
				t.Fatal("replayed data differs")
			}
		}
		n++
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("replay: %d entries, %v", n, err)
	}
	if !bytes.Equal(kept, bytes.Repeat([]byte{0xDB}, 100)) {
		t.Fatal("b.Data kept past fn was not poisoned")
	}
}

func TestMemMetaLogFailAppends(t *testing.T) {
	m := NewMemMetaLog()
	m.Append([]byte("a"))
	m.FailAppends(syscall.ENOSPC)
	if err := m.Append([]byte("b")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	if err := m.Compact(nil); !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
	m.FailAppends(nil)
	m.Append([]byte("c"))
	m2 := m.Reopen()
	var got []string
	m2.Replay(func(r []byte) error { got = append(got, string(r)); return nil })
	if len(got) != 2 || got[0] != "a" || got[1] != "c" || m2.Size() != 2*(metaEntryOverhead+1) {
		t.Fatalf("records %q size %d", got, m2.Size())
	}
}
