package broker

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klite/klite/broker/storage"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fillBroker creates topics a and b and writes n records to each, then closes the broker.
func fillBroker(t *testing.T, dir string, n int) {
	t.Helper()
	tb := startBroker(t, dir)
	adm := tb.admin(t)
	createTopic(t, adm, "a", 1, nil)
	createTopic(t, adm, "b", 1, nil)
	cl := tb.client(t)
	for i := range n {
		for _, topic := range []string{"a", "b"} {
			if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cl.Close()
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
}

func openErr(t *testing.T, dir string, mod ...func(*Config)) error {
	t.Helper()
	cfg := Config{DataDir: dir, AdvertisedAddr: "127.0.0.1:9092"}
	for _, m := range mod {
		m(&cfg)
	}
	b, err := Open(cfg)
	if err == nil {
		b.Close()
	}
	return err
}

// Finding 1 of issue 18: one flipped byte in meta.log lost every topic after it, and replay
// then skipped their WAL batches as "topic deleted since". Now the start is refused, naming
// meta.log and the byte; with RecoverDamaged it starts, the damaged records are moved aside
// and the WAL segments holding batches it could not place are kept under damaged/wal.
func TestReplayRefusesDamagedMetaLog(t *testing.T) {
	dir := t.TempDir()
	fillBroker(t, dir, 5)
	path := filepath.Join(dir, "meta.log")
	data, _ := os.ReadFile(path)
	at := bytes.Index(data, []byte(`"name":"a"`))
	if at < 0 {
		t.Fatalf("no topic record in %q", data)
	}
	data[at+9] ^= 1
	os.WriteFile(path, data, 0o644)
	err := openErr(t, dir)
	var ce *storage.CorruptError
	if !errors.As(err, &ce) || ce.Path != path {
		t.Fatalf("open: %v, want a CorruptError naming %s", err, path)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatal("meta.log changed although the start was refused")
	}

	var logs bytes.Buffer
	tb := startBroker(t, dir, func(c *Config) {
		c.RecoverDamaged = true
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	if tb.topic("a") != nil {
		t.Fatal("topic a survived a damaged topic record")
	}
	for _, want := range []string{"level=ERROR", "RECOVERY: damaged bytes moved aside", "RECOVERY: WAL data recovery could not place"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, storage.DamagedDirName, "wal", "*.wal")); len(segs) == 0 {
		t.Fatal("no WAL segment kept aside")
	}
	tb.Close()
	// The loss was recorded: the next start needs no flag.
	if err := openErr(t, dir); err != nil {
		t.Fatalf("start after recovery: %v", err)
	}
}

// A missing meta.log while the WAL holds data is damage: no silent start with a new cluster
// ID and every topic gone.
func TestReplayRefusesMissingMetaLog(t *testing.T) {
	dir := t.TempDir()
	fillBroker(t, dir, 3)
	os.Remove(filepath.Join(dir, "meta.log"))
	os.Remove(filepath.Join(dir, "meta.log.clean"))
	err := openErr(t, dir)
	if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "empty or missing") ||
		!strings.Contains(err.Error(), filepath.Join(dir, "wal", "00000000000000000001.wal")) {
		t.Fatalf("open: %v, want corruption naming the WAL segment and the missing metadata", err)
	}
	if st, err := os.Stat(filepath.Join(dir, "meta.log")); err == nil && st.Size() != 0 {
		t.Fatal("a refused start wrote a cluster ID")
	}
}

// Deleted topics stay known through metadata compaction: their batches still in the WAL are
// skipped, not taken for damage.
func TestDeletedTopicSurvivesMetaCompaction(t *testing.T) {
	dir := t.TempDir()
	fillBroker(t, dir, 2)
	tb := startBroker(t, dir)
	if kerr := tb.deleteTopic(tb.topic("a")); kerr != nil {
		t.Fatal(kerr)
	}
	tb.mu.Lock()
	err := tb.meta.Compact(tb.metaSnapshotLocked())
	tb.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	tb.Close()
	tb2 := startBroker(t, dir)
	if tb2.topic("a") != nil || tb2.topic("b") == nil {
		t.Fatal("topics wrong after restart")
	}
}

// Finding 3 of issue 18: a hole in a partition's offsets (a batch lost from the middle) was
// not noticed. Now consecutive batches must be adjacent.
func TestReplayRefusesOffsetGap(t *testing.T) {
	dir := t.TempDir()
	fillBroker(t, dir, 3)
	// Append a copy of the partition's last batch 5 offsets too far, as if batches between
	// had been lost.
	w, err := storage.OpenWAL(storage.WALOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var last *storage.Batch
	if err := w.Replay(func(b *storage.Batch, _ storage.Location) error {
		c := *b
		c.Data = append([]byte(nil), b.Data...)
		last = &c
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	last.BaseOffset += 6
	last.LastOffset += 6
	stampBatch(last.Data, last.BaseOffset, -1)
	done := make(chan error, 1)
	w.Append(last, func(_ storage.Location, err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w.Close()
	err = openErr(t, dir)
	if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "are missing") {
		t.Fatalf("open: %v, want corruption reporting missing offsets", err)
	}
}

// A failed append with later ones in flight gives its offsets back once the last of them
// failed too (the WAL fails them all), leaving no hole.
func TestGiveBackOffsetsLeavesNoHole(t *testing.T) {
	p := &partition{next: 30}
	p.giveBackLocked(10, 19) // 20..29 still in flight
	if p.next != 30 {
		t.Fatalf("next %d after the first failure, want 30", p.next)
	}
	p.giveBackLocked(20, 29)
	if p.next != 10 || p.failedFromSet {
		t.Fatalf("next %d after all failed, want 10", p.next)
	}
}

// Finding 2 of issue 18: a txns.log that lost records (here: an older copy put back) left the
// coordinator at an epoch below what the partitions had seen, so it aborted a phantom
// transaction and fenced the producer for good. The start is now refused, naming the WAL
// batch that carries the newer epoch.
func TestReplayRefusesTxnEpochBehindWAL(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	createTopic(t, tb.admin(t), "tx", 1, nil)
	cl := txnProducer(t, tb, "tid")
	produceTxn(t, cl, "tx", true, "one")
	cl.Close()
	tb.Close()
	txnsLog := filepath.Join(dir, "meta", "txns.log")
	old, err := os.ReadFile(txnsLog)
	if err != nil {
		t.Fatal(err)
	}
	tb = startBroker(t, dir)
	cl = txnProducer(t, tb, "tid")
	produceTxn(t, cl, "tx", true, "two")
	produceTxn(t, cl, "tx", true, "three")
	cl.Close()
	tb.Close()
	os.WriteFile(txnsLog, old, 0o644)
	os.Remove(txnsLog + ".clean")
	err = openErr(t, dir)
	if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "epoch") || !strings.Contains(err.Error(), filepath.Join(dir, "wal")) {
		t.Fatalf("open: %v, want corruption naming the WAL batch with the newer epoch", err)
	}
}

// A later append that succeeded after a failed one (a WAL without that guarantee) makes the
// failed offsets unreturnable: they are never handed out twice.
func TestGiveBackForgetsAfterLaterSuccess(t *testing.T) {
	p := &partition{next: 40}
	p.giveBackLocked(10, 19) // 20..39 in flight
	p.appendedLocked()       // 20..29 succeeded
	p.giveBackLocked(30, 39)
	if p.next != 30 {
		t.Fatalf("next %d, want 30 (10..19 lie below a stored batch)", p.next)
	}
}

// Issue 18: a groups.log (or txns.log) deleted outright started an empty coordinator, with
// every committed offset gone and nothing said. meta.log records that the broker created
// them; a recorded log that is missing refuses the start, naming it, unless RecoverDamaged.
func TestStartRefusesMissingCoordinatorLog(t *testing.T) {
	for _, name := range []string{"groups.log", "txns.log"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			fillBroker(t, dir, 1)
			path := filepath.Join(dir, "meta", name)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			err := openErr(t, dir)
			var ce *storage.CorruptError
			if !errors.As(err, &ce) || ce.Path != path {
				t.Fatalf("open without %s: %v, want a CorruptError naming it", name, err)
			}
			var logs bytes.Buffer
			tb := startBroker(t, dir, func(c *Config) {
				c.RecoverDamaged = true
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			if !strings.Contains(logs.String(), "RECOVERY: a coordinator log is missing") {
				t.Fatalf("recovery not logged:\n%s", logs.String())
			}
			// The records survive meta.log compaction.
			tb.mu.Lock()
			snap := tb.metaSnapshotLocked()
			tb.mu.Unlock()
			tb.Close()
			if !bytes.Contains(bytes.Join(snap, nil), []byte(`{"type":"log","name":"groups"}`)) || !bytes.Contains(bytes.Join(snap, nil), []byte(`{"type":"log","name":"txns"}`)) {
				t.Fatalf("metadata snapshot lacks the coordinator log records: %s", bytes.Join(snap, []byte("\n")))
			}
			if err := openErr(t, dir); err != nil {
				t.Fatalf("start after recovery: %v", err)
			}
		})
	}
}

// Issue 18: a metadata record claiming a huge partition count made replay allocate a
// partition table that large. It is refused as corruption, naming meta.log.
func TestReplayRefusesHugePartitionCount(t *testing.T) {
	dir := t.TempDir()
	m, err := storage.OpenMetaLogWith(filepath.Join(dir, "meta.log"), storage.MetaOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Replay(func([]byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	id := newUUID()
	err = m.AppendBatch([][]byte{
		encodeMeta(metaRecord{Type: "cluster", ClusterID: NewClusterID()}),
		encodeMeta(metaRecord{Type: "topic", Name: "huge", ID: fmt.Sprintf("%x", id[:]), Partitions: maxTopicPartitions + 1}),
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	err = openErr(t, dir)
	if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "meta.log") || !strings.Contains(err.Error(), fmt.Sprint(maxTopicPartitions+1)) {
		t.Fatalf("open: %v, want corruption naming meta.log and the partition count", err)
	}
}

// A start refused after the WAL and meta.log were replayed (here: groups.log missing) must
// not close them as after a clean shutdown: a clean-shutdown marker would record what this
// failed start left (a torn tail it cut, say), so restoring a file, as the refusal advises,
// would then be refused as damage after a clean shutdown (found by the chaos corrupt fault:
// a restored WAL segment no longer started).
func TestRefusedStartWritesNoCleanMarker(t *testing.T) {
	dir := t.TempDir()
	fillBroker(t, dir, 1)
	path := filepath.Join(dir, "meta", "groups.log")
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := openErr(t, dir); err == nil {
		t.Fatal("started without groups.log")
	}
	for _, m := range []string{filepath.Join(dir, "wal", "clean"), filepath.Join(dir, "meta.log.clean")} {
		if _, err := os.Stat(m); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused start left the clean-shutdown marker %s (%v)", m, err)
		}
	}
	if err := os.WriteFile(path, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := openErr(t, dir); err != nil {
		t.Fatalf("start after restoring groups.log: %v", err)
	}
}
