package logstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// rec is a test record: a nil key is no key, a nil value a tombstone.
type rec struct {
	key, value []byte
	ts         int64 // absolute timestamp
	delta      int32 // offset delta (defaults to the index)
}

type batchOpts struct {
	pid       int64
	txn       bool
	control   int // 0 none, 1 abort marker, 2 commit marker
	codec     int8
	lastDelta int32 // override (gaps at the end)
}

// mkBatch encodes a v2 record batch at base with the records' timestamps.
func mkBatch(t testing.TB, base int64, recs []rec, o batchOpts) []byte {
	t.Helper()
	if o.control != 0 {
		key := binary.BigEndian.AppendUint16([]byte{0, 0}, uint16(o.control-1))
		recs = []rec{{key: key, value: []byte{0, 0, 0, 0, 0, 0}, ts: recs[0].ts}}
	}
	first, maxTS := recs[0].ts, recs[0].ts
	for _, r := range recs {
		first, maxTS = min(first, r.ts), max(maxTS, r.ts)
	}
	var payload []byte
	lastDelta := int32(0)
	for i, r := range recs {
		d := r.delta
		if d == 0 {
			d = int32(i)
		}
		lastDelta = max(lastDelta, d)
		kr := kmsg.Record{TimestampDelta64: r.ts - first, OffsetDelta: d, Key: r.key, Value: r.value}
		body := kr.AppendTo(nil)[1:] // Length 0 encodes as one byte: replace it
		payload = binary.AppendVarint(payload, int64(len(body)))
		payload = append(payload, body...)
	}
	if o.lastDelta > 0 {
		lastDelta = o.lastDelta
	}
	attrs := int16(o.codec)
	if o.txn {
		attrs |= 0x10
	}
	if o.control != 0 {
		attrs |= 0x20
	}
	if o.codec != 0 {
		comp, err := compressorFor(o.codec)
		if err != nil {
			t.Fatal(err)
		}
		z, _ := comp.Compress(new(bytes.Buffer), payload)
		payload = append([]byte(nil), z...)
	}
	pid := o.pid
	if pid == 0 {
		pid = -1
	}
	b := binary.BigEndian.AppendUint64(nil, uint64(base))
	b = binary.BigEndian.AppendUint32(b, uint32(49+len(payload)))
	b = binary.BigEndian.AppendUint32(b, 0) // leader epoch
	b = append(b, 2)
	b = binary.BigEndian.AppendUint32(b, 0) // crc
	b = binary.BigEndian.AppendUint16(b, uint16(attrs))
	b = binary.BigEndian.AppendUint32(b, uint32(lastDelta))
	b = binary.BigEndian.AppendUint64(b, uint64(first))
	b = binary.BigEndian.AppendUint64(b, uint64(maxTS))
	b = binary.BigEndian.AppendUint64(b, uint64(pid))
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(recs)))
	b = append(b, payload...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32c))
	return b
}

// kv is one record read back.
type kv struct {
	off   int64
	key   string
	value string // "<nil>" for a tombstone
	ctl   bool
}

// readAll reads the whole log from its start through Read, checking each batch.
func readAll(t testing.TB, l *Log) []kv {
	t.Helper()
	var out []kv
	off := l.LogStartOffset()
	for i := 0; i < 100000; i++ {
		b, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(b) == 0 {
			return out
		}
		for len(b) > 0 {
			h, err := parseBatch(b)
			if err != nil || !checkBatchCRC(b, &h) {
				t.Fatalf("Read(%d) returned a bad batch: %v", off, err)
			}
			recs, err := records(b, &h)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if h.Base+int64(r.offsetDelta) < l.LogStartOffset() {
					continue // a consumer skips them too: Read returns whole batches
				}
				v := "<nil>"
				if !r.tombstone {
					v = string(recordValue(t, r.raw))
				}
				out = append(out, kv{h.Base + int64(r.offsetDelta), string(r.key), v, h.control()})
			}
			off = h.Last + 1
			b = b[h.Size:]
		}
	}
	t.Fatal("readAll: too many reads")
	return nil
}

func recordValue(t testing.TB, raw []byte) []byte {
	var r kmsg.Record
	if err := r.ReadFrom(raw); err != nil {
		t.Fatal(err)
	}
	return r.Value
}

// clock is a fake millisecond clock.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() int64      { return c.ms.Load() }
func (c *clock) advance(d int64) { c.ms.Add(d) }

// stores returns a fresh store of each implementation.
func stores(t *testing.T) map[string]Store {
	d, err := OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Store{"mem": NewMemStore(), "dir": d}
}

var errInjected = errors.New("injected failure")

// faultStore passes calls to st until limit mutations (Put, Delete) have succeeded; every
// later mutation fails, as if the process stopped there. Reopening the Log on st then
// shows the state after a crash at that point.
type faultStore struct {
	Store
	mu    sync.Mutex
	limit int
	done  int
	log   []string
}

func (f *faultStore) allow(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done >= f.limit {
		return fmt.Errorf("%w: %s", errInjected, op)
	}
	f.done++
	f.log = append(f.log, op)
	return nil
}

func (f *faultStore) Put(name string, data []byte) error {
	if err := f.allow("put " + name); err != nil {
		return err
	}
	return f.Store.Put(name, data)
}

func (f *faultStore) Delete(name string) error {
	if err := f.allow("delete " + name); err != nil {
		return err
	}
	return f.Store.Delete(name)
}
