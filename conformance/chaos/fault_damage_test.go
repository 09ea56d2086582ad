package chaos

import (
	"encoding/binary"
	"testing"
)

// FuzzDamageParsers: the corrupt and torn-tail faults walk WAL segments and metadata logs
// from disk (walEntries, metaRecords); any bytes must give in-bounds, ordered, non-empty
// ranges and never panic.
func FuzzDamageParsers(f *testing.F) {
	wal := make([]byte, 56+5)
	binary.BigEndian.PutUint16(wal[4:], 0x4B57)
	binary.BigEndian.PutUint32(wal[8:], 5)
	f.Add(wal)
	f.Add(append([]byte{0, 0, 0, 2, 1, 2, 3, 4, 'h', 'i'}, 0, 0, 0, 9))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for name, rs := range map[string][][2]int{"wal": walEntries(b), "meta": metaRecords(b)} {
			end := 0
			for _, r := range rs {
				if r[0] != end || r[1] <= r[0] || r[1] > len(b) {
					t.Fatalf("%s: range %v after %d in %d bytes", name, r, end, len(b))
				}
				end = r[1]
			}
		}
	})
}

func TestDamageParsers(t *testing.T) {
	wal := make([]byte, 2*(56+5)+100) // two entries, then zero padding
	for _, p := range []int{0, 61} {
		binary.BigEndian.PutUint16(wal[p+4:], 0x4B57)
		binary.BigEndian.PutUint32(wal[p+8:], 5)
	}
	if es := walEntries(wal); len(es) != 2 || es[1] != [2]int{61, 122} {
		t.Fatalf("wal entries %v", es)
	}
	meta := []byte{0, 0, 0, 2, 1, 2, 3, 4, 'h', 'i', 0, 0, 0, 9, 0} // one record, then a torn one
	if rs := metaRecords(meta); len(rs) != 1 || rs[0] != [2]int{0, 10} {
		t.Fatalf("meta records %v", rs)
	}
}
