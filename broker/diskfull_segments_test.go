package broker

import (
	"errors"
	"math"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/klite/klite/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Disk full below the partition segment store (ENOSPC injected under the DirStore's files as
// under the WAL's): sealing the tails fails, so the WAL is not trimmed past them and nothing
// acknowledged is lost, reads are served from the tail, produce answers KAFKA_STORAGE_ERROR;
// a restart while the tails could not be sealed replays them from the WAL; once space
// returns the tails seal, the WAL is trimmed and a restart reads everything from segments.
func TestDiskFullBelowSegmentsLosesNothing(t *testing.T) {
	dir := t.TempDir()
	faults := &storage.Faults{}
	tb := startBroker(t, dir, func(c *Config) { c.StorageFaults = faults })
	createTopic(t, tb.admin(t), "dfs", 1, nil)
	cl := tb.client(t)
	for i := 0; i < 3; i++ {
		if base := produceUntil(t, cl, "dfs"); base != int64(i) {
			t.Fatalf("record %d at offset %d", i, base)
		}
	}
	p, err := tb.partition("dfs", 0)
	if err != nil {
		t.Fatal(err)
	}
	walFiles := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
		return m
	}

	faults.SetWriteErr(syscall.ENOSPC)
	if err := tb.drain.SealPinning(math.MaxUint64); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("sealing on a full disk: %v, want ENOSPC", err)
	}
	if segs := p.log().Segments(); len(segs) != 0 {
		t.Fatalf("a segment was sealed on a full disk: %+v", segs)
	}
	if err := tb.trimWAL(0); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("trimming the WAL: %v", err)
	}
	if len(walFiles()) == 0 {
		t.Fatal("the WAL segment holding the unsealed records was deleted")
	}
	if r := rawProduce(t, cl, "dfs", rawBatch(-1, -1, -1, 1, time.Now().UnixMilli(), 0)); r.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("produce on a full disk: error %d, want KAFKA_STORAGE_ERROR", r.ErrorCode)
	}
	if got := readAll(t, tb, "dfs", false, 3); len(got) != 3 {
		t.Fatalf("read %d records on a full disk, want 3", len(got))
	}
	if w, _ := faults.Injected(); w == 0 {
		t.Fatal("no write was refused by the injected fault")
	}
	// Stopping on the full disk: the final seal fails too, and no partial segment is left.
	cl.Close()
	tb.Close()
	if m, _ := filepath.Glob(filepath.Join(dir, segmentsDir, "*", "*", "*")); len(m) != 0 {
		t.Fatalf("segment files left by the failed seals: %v", m)
	}

	// Space returns. The restart replays the tails from the WAL: all 3 records are there.
	tb = startBroker(t, dir)
	if _, hwm := tb.partitionOffsets(t, "dfs", 0); hwm != 3 {
		t.Fatalf("high watermark after the restart %d, want 3", hwm)
	}
	cl = tb.client(t)
	if base := produceUntil(t, cl, "dfs"); base != 3 {
		t.Fatalf("first record after the disk full at %d, want 3", base)
	}
	if err := tb.sealAll(); err != nil {
		t.Fatalf("sealing after space returned: %v", err)
	}
	p, err = tb.partition("dfs", 0)
	if err != nil {
		t.Fatal(err)
	}
	if segs := p.log().Segments(); len(segs) == 0 || segs[len(segs)-1].Next != 4 {
		t.Fatalf("segments after space returned: %+v, want them to cover offsets 0-3", segs)
	}
	cl.Close()
	tb.Close()
	// A restart reads them back from the segments and what is left of the WAL.
	tb = startBroker(t, dir)
	if got := readAll(t, tb, "dfs", false, 4); len(got) != 4 {
		t.Fatalf("read %d records after the restart, want 4", len(got))
	}
}
