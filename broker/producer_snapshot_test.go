package broker

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klite/klite/broker/storage"
)

func sampleSnapshot() *producerSnapshot {
	return &producerSnapshot{walSeg: 7, nextPID: 42, parts: []snapPartition{
		{topicID: [16]byte{1, 2, 3}, partition: 2, next: 100, producers: []snapProducer{
			{pid: 3, epoch: 1, txn: true, batches: []seqBatch{{firstSeq: 0, lastSeq: 4, base: 10, last: 14, logAppendTime: -1}}},
			{pid: 9, epoch: 0},
		}, open: [][2]int64{{3, 10}}},
		{topicID: [16]byte{9}, partition: 0, next: 0},
	}}
}

func TestProducerSnapshotRoundTrip(t *testing.T) {
	raw := sampleSnapshot().encode()
	s, err := decodeProducerSnapshot(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.encode(), raw) {
		t.Fatal("re-encoding the decoded snapshot changed it")
	}
	if s.walSeg != 7 || s.nextPID != 42 || len(s.parts) != 2 || s.parts[0].producers[0].batches[0].last != 14 || !s.parts[0].producers[0].txn {
		t.Fatalf("decoded %+v", s)
	}
	for i := range raw { // every single-byte flip is refused (CRC, magic, version)
		bad := bytes.Clone(raw)
		bad[i] ^= 0x40
		if _, err := decodeProducerSnapshot(bad); err == nil {
			t.Fatalf("flipping byte %d was not noticed", i)
		}
	}
	if _, err := decodeProducerSnapshot(raw[:len(raw)-3]); err == nil {
		t.Fatal("truncated snapshot decoded")
	}
}

func FuzzProducerSnapshot(f *testing.F) {
	f.Add(sampleSnapshot().encode())
	f.Add((&producerSnapshot{}).encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := decodeProducerSnapshot(data)
		if err != nil {
			return
		}
		if !bytes.Equal(s.encode(), data) {
			t.Fatal("a decoded snapshot encodes differently")
		}
	})
}

func firstWALSegment(t *testing.T, dir string) string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	if len(segs) == 0 {
		t.Fatal("no WAL segment")
	}
	sort.Strings(segs)
	return segs[0]
}

// TestSnapshotKeepsProducerStateAfterWALTrim: once the WAL is trimmed below the drain
// checkpoint, a killed broker restarts from the producer-state snapshot and the remaining
// WAL: every acknowledged record is readable from offset 0 (from the partition segments),
// a retry of an old batch is still answered with its offset, and the sequence goes on.
func TestSnapshotKeepsProducerStateAfterWALTrim(t *testing.T) {
	dir := t.TempDir()
	small := func(c *Config) { c.WALSegmentBytes = 4096 }
	tb := startBroker(t, dir, small)
	createTopic(t, tb.admin(t), "snap", 1, nil)
	cl := tb.client(t)
	pid, epoch := initPID(t, cl)
	const batches = 120
	for i := 0; i < batches; i++ {
		if r := rawProduce(t, cl, "snap", rawBatch(pid, epoch, int32(i*2), 2, 1000, 1)); r.ErrorCode != 0 || r.BaseOffset != int64(i*2) {
			t.Fatalf("batch %d: error %d base %d", i, r.ErrorCode, r.BaseOffset)
		}
	}
	before := firstWALSegment(t, dir)
	if err := tb.trimWAL(0); err != nil {
		t.Fatal(err)
	}
	if after := firstWALSegment(t, dir); after <= before {
		t.Fatalf("WAL not trimmed: first segment %s, was %s", after, before)
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotName)); err != nil {
		t.Fatal(err)
	}
	tb.abandon() // killed: no clean shutdown, no final seal
	tb = startBroker(t, dir, small)
	cl = tb.client(t)
	if ls, hwm := tb.partitionOffsets(t, "snap", 0); ls != 0 || hwm != batches*2 {
		t.Fatalf("after restart: log start %d, high watermark %d", ls, hwm)
	}
	// Batch batches-3 is in the producer's window of the last 5: a retry gets its offset.
	i := batches - 3
	if r := rawProduce(t, cl, "snap", rawBatch(pid, epoch, int32(i*2), 2, 1000, 1)); r.ErrorCode != 0 || r.BaseOffset != int64(i*2) {
		t.Fatalf("retry after restart: error %d base %d, want %d", r.ErrorCode, r.BaseOffset, i*2)
	}
	if r := rawProduce(t, cl, "snap", rawBatch(pid, epoch, batches*2+4, 1, 1000, 1)); r.ErrorCode == 0 {
		t.Fatal("a sequence gap after restart was accepted")
	}
	if r := rawProduce(t, cl, "snap", rawBatch(pid, epoch, batches*2, 1, 1000, 1)); r.ErrorCode != 0 || r.BaseOffset != batches*2 {
		t.Fatalf("next batch after restart: error %d base %d", r.ErrorCode, r.BaseOffset)
	}
	if got := consumeN(t, tb, "snap", batches*2+1); got[0].Offset != 0 || got[batches*2].Offset != batches*2 {
		t.Fatalf("consumed %d..%d", got[0].Offset, got[len(got)-1].Offset)
	}
}

// TestSnapshotRefusesMissingWAL: the snapshot says where the WAL must start; a WAL missing
// segments from there (or a damaged snapshot) is corruption, not a silent loss, unless the
// operator recovers.
func TestSnapshotRefusesMissingWAL(t *testing.T) {
	dir := t.TempDir()
	small := func(c *Config) { c.WALSegmentBytes = 4096 }
	tb := startBroker(t, dir, small)
	createTopic(t, tb.admin(t), "gap", 1, nil)
	cl := tb.client(t)
	pid, epoch := initPID(t, cl)
	for i := 0; i < 120; i++ {
		if r := rawProduce(t, cl, "gap", rawBatch(pid, epoch, int32(i), 1, 1000, 1)); r.ErrorCode != 0 {
			t.Fatalf("batch %d: error %d", i, r.ErrorCode)
		}
	}
	if err := tb.trimWAL(0); err != nil {
		t.Fatal(err)
	}
	for i := 120; i < 240; i++ { // more WAL segments after the checkpoint
		if r := rawProduce(t, cl, "gap", rawBatch(pid, epoch, int32(i), 1, 1000, 1)); r.ErrorCode != 0 {
			t.Fatalf("batch %d: error %d", i, r.ErrorCode)
		}
	}
	tb.abandon()
	first := firstWALSegment(t, dir)
	if err := os.Remove(first); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{DataDir: dir, WALSegmentBytes: 4096})
	var cerr *storage.CorruptError
	if !errors.As(err, &cerr) || !strings.Contains(err.Error(), snapshotName) {
		t.Fatalf("open with the WAL's first needed segment gone: %v, want corruption naming the snapshot", err)
	}

	// A damaged snapshot is refused too.
	snap := filepath.Join(dir, snapshotName)
	raw, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	if err := os.WriteFile(snap, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Config{DataDir: dir, WALSegmentBytes: 4096})
	if !errors.As(err, &cerr) || cerr.Path != snap {
		t.Fatalf("open with a damaged snapshot: %v", err)
	}
}
