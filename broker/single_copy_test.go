package broker

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// walDataBytes is what the WAL's segment files under dir hold, each up to its last byte
// that is not zero: the region a segment is prepared with ahead of its commits (storage's
// WALOptions.PreallocBytes) is zeros, not data.
func walDataBytes(t *testing.T, dir string) int64 {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no WAL segments in %s: %v", dir, err)
	}
	var n int64
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		n += int64(len(bytes.TrimRight(data, "\x00")))
	}
	return n
}

// A hot partition's batches are written once, into its segment: the WAL holds their
// headers only. After a clean restart and after a crash (the broker abandoned, its
// single-copy segments in the making left as they were) every acknowledged record reads
// back with its bytes.
func TestSingleCopyHotPartitionsSurviveRestarts(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := "clean"
		if crash {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			// Single-copy from 1 MiB/s (32 MiB/s by default): the test produces 7.5 MB.
			hot := func(c *Config) { c.SingleCopyBytesPerSec = 1 << 20 }
			tb := startBroker(t, dir, hot)
			createTopic(t, tb.admin(t), "hot", 2, nil)
			cl := tb.client(t, kgo.DefaultProduceTopic("hot"), kgo.ProducerBatchCompression(kgo.NoCompression()),
				kgo.ProducerBatchMaxBytes(1<<20), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			rng := rand.New(rand.NewSource(1))
			const n = 240
			var recs []*kgo.Record
			var produced int64
			for i := range n {
				v := make([]byte, 32<<10)
				rng.Read(v)
				recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: v, Partition: int32(i % 2)})
				produced += int64(len(v))
			}
			// In a few produce calls, within a second: hot from the first MiB on.
			for i := 0; i < n; i += 40 {
				if err := cl.ProduceSync(ctxT(t, 10*time.Second), recs[i:i+40]...).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			if wal := walDataBytes(t, dir); wal > produced/2 {
				t.Fatalf("the WAL holds %d bytes of %d produced: the hot batches were written to it", wal, produced)
			}
			if crash {
				tb.abandon()
			} else if err := tb.Close(); err != nil {
				t.Fatal(err)
			}
			// A clean shutdown seals every tail; a crash leaves the active single-copy
			// segments in the making, which the restart reads.
			left, _ := filepath.Glob(filepath.Join(dir, segmentsDir, "*", "*", "*.xtmp"))
			if crash && len(left) == 0 || !crash && len(left) != 0 {
				t.Fatalf("after the %s: single-copy segments in the making %v", name, left)
			}
			tb = startBroker(t, dir, hot)
			got := consumeN(t, tb, "hot", n)
			byKey := map[string][]byte{}
			for _, r := range got {
				byKey[string(r.Key)] = r.Value
			}
			for _, r := range recs {
				if !bytes.Equal(byKey[string(r.Key)], r.Value) {
					t.Fatalf("record %s reads back with other bytes (or none)", r.Key)
				}
			}
			if left, _ = filepath.Glob(filepath.Join(dir, segmentsDir, "*", "*", "*.xtmp")); len(left) != 0 {
				t.Fatalf("leftovers after the restart: %v", left)
			}
		})
	}
}

// A single-copy batch sealed and then removed (DeleteRecords) before a restart, whose WAL
// header is still replayed (the WAL is kept): the replay takes its offsets only and goes
// on; it must not take the missing bytes for a batch never made durable and cut the WAL
// (which would lose everything acknowledged after it).
func TestSingleCopyReplayOfRemovedBatches(t *testing.T) {
	dir := t.TempDir()
	cfg := func(c *Config) {
		c.SingleCopyBytesPerSec = 1 << 20
		c.WALTrimInterval = -1 // the WAL keeps every header
	}
	tb := startBroker(t, dir, cfg)
	adm := tb.admin(t)
	seg := "262144"
	createTopic(t, adm, "dr", 1, map[string]*string{"segment.bytes": &seg})
	cl := tb.client(t, kgo.DefaultProduceTopic("dr"), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(64<<10))
	rng := rand.New(rand.NewSource(2))
	produce := func(from, n int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			v := make([]byte, 32<<10)
			rng.Read(v)
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: v})
		}
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 150)
	if wal := walDataBytes(t, dir); wal > 150*(32<<10)/2 {
		t.Fatalf("the WAL holds %d bytes: the batches were not single-copy", wal)
	}
	p, _ := tb.partition("dr", 0)
	waitFor(t, "sealed segments", func() bool { return len(p.log().Segments()) >= 2 })
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "dr", Partition: 0, At: 100})
	if res, err := adm.DeleteRecords(ctxT(t, 5*time.Second), del); err != nil || res.Error() != nil {
		t.Fatalf("DeleteRecords: %v %v", err, res.Error())
	}
	produce(150, 10)
	tb.abandon()

	tb = startBroker(t, dir, cfg)
	if ls, hwm := tb.partitionOffsets(t, "dr", 0); ls != 100 || hwm != 160 {
		t.Fatalf("after the restart: log start %d, high watermark %d, want 100 and 160", ls, hwm)
	}
	got := consumeN(t, tb, "dr", 60)
	for i, r := range got {
		if r.Offset != int64(100+i) || string(r.Key) != fmt.Sprint(100+i) {
			t.Fatalf("record %d: offset %d key %s, want offset and key %d", i, r.Offset, r.Key, 100+i)
		}
	}
}
