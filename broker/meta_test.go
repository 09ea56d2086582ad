package broker

import (
	"testing"

	"github.com/klite/klite/broker/storage"
)

// TestMetaSnapshotRebuildsState compacts the metadata log to a snapshot and checks that a
// broker opened over it has the same cluster ID, topics, IDs, configs and producer ID mark.
func TestMetaSnapshotRebuildsState(t *testing.T) {
	meta := storage.NewMemMetaLog()
	wal := storage.NewMemWAL()
	b, err := Open(Config{DataDir: t.TempDir(), WAL: wal, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		if _, kerr, msg := b.createTopic(n, 2, map[string]string{"retention.ms": "5"}, false, true, nil); kerr != nil {
			t.Fatal(kerr, msg)
		}
	}
	if kerr := b.deleteTopic(b.topic("b")); kerr != nil {
		t.Fatal(kerr)
	}
	pid, err := b.allocateProducerID()
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	snap := b.metaSnapshotLocked()
	b.mu.Unlock()
	if err := meta.Compact(snap); err != nil {
		t.Fatal(err)
	}
	ids := map[string][16]byte{"a": b.topic("a").id, "c": b.topic("c").id}
	cid := b.ClusterID()
	b.Close()

	b2, err := Open(Config{DataDir: t.TempDir(), WAL: wal.Reopen(), Meta: meta.Reopen()})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if b2.ClusterID() != cid {
		t.Fatalf("cluster id %s, want %s", b2.ClusterID(), cid)
	}
	if b2.topic("b") != nil || len(b2.topics) != 2 {
		t.Fatalf("topics after snapshot: %v", b2.topics)
	}
	for n, id := range ids {
		tp := b2.topic(n)
		if tp == nil || tp.id != id || len(tp.partitions()) != 2 || tp.configs()["retention.ms"] != "5" {
			t.Fatalf("topic %s after snapshot: %+v", n, tp)
		}
	}
	pid2, err := b2.allocateProducerID()
	if err != nil || pid2 <= pid {
		t.Fatalf("producer id after snapshot %d (err %v), want above %d", pid2, err, pid)
	}
}

// TestTopicChangesPersist: config changes and added partitions survive a restart.
func TestTopicChangesPersist(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "grow", 1, nil)
	tp := tb.topic("grow")
	if e, msg := tb.setTopicConfigs(tp, map[string]string{"retention.ms": "77"}); e != nil {
		t.Fatal(e, msg)
	}
	if e, _ := tb.setTopicConfigs(tp, map[string]string{"no.such": "1"}); e == nil {
		t.Fatal("unknown config accepted")
	}
	if e, msg := tb.growPartitions(tp, 4); e != nil {
		t.Fatal(e, msg)
	}
	if e, _ := tb.growPartitions(tp, 2); e == nil {
		t.Fatal("shrinking accepted")
	}
	if r := rawProduceTo(t, tb.client(t), "grow", 3, rawBatch(-1, -1, -1, 1, 1000, 1)); r.ErrorCode != 0 {
		t.Fatalf("produce to a new partition: %d", r.ErrorCode)
	}
	tb.Close()
	tb = startBroker(t, tb.dir)
	tp = tb.topic("grow")
	if tp == nil || len(tp.partitions()) != 4 || tp.configs()["retention.ms"] != "77" {
		t.Fatalf("after restart: %+v", tp)
	}
	if _, hwm := tb.partitionOffsets(t, "grow", 3); hwm != 1 {
		t.Fatalf("new partition's data after restart: hwm %d", hwm)
	}
}
