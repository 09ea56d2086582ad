package broker

import (
	"context"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klite/klite/broker/storage"
	"github.com/twmb/franz-go/pkg/kgo"
)

// dropWAL forwards appends to the real WAL except those drop selects, which are lost and
// never answered, like a write in flight when the process dies.
type dropWAL struct {
	storage.WAL
	drop func(*storage.Batch) bool
}

func (w *dropWAL) Append(b *storage.Batch, done func(storage.Location, error)) {
	if w.drop(b) {
		return
	}
	w.WAL.Append(b, done)
}

// TestTxnCrashBetweenMarkers kills the broker after the commit decision is durable and the
// marker of one partition is written but not the other's: the restarted coordinator finishes
// the commit, so both partitions show the transaction's records and nothing is left open.
func TestTxnCrashBetweenMarkers(t *testing.T) {
	dir := t.TempDir()
	var armed atomic.Bool
	var topicID [16]byte
	tb := startBroker(t, dir, func(c *Config) {
		w, err := storage.OpenWAL(storage.WALOptions{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		c.WAL = &dropWAL{WAL: w, drop: func(b *storage.Batch) bool {
			if !armed.Load() || b.TP.TopicID != topicID || b.TP.Partition != 1 {
				return false
			}
			h, _ := parseBatchHeader(b.Data)
			return h.control()
		}}
	})
	createTopic(t, tb.admin(t), "bm", 2, nil)
	topicID = tb.topic("bm").id
	cl := txnProducer(t, tb, "bm-1", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := ctxT(t, 30*time.Second)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*kgo.Record{{Topic: "bm", Partition: 0, Value: []byte("p0")}, {Topic: "bm", Partition: 1, Value: []byte("p1")}} {
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	armed.Store(true)
	endCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go cl.EndTransaction(endCtx, kgo.TryCommit) // never answered: the broker "dies" first
	p0, _ := tb.partition("bm", 0)
	deadline := time.Now().Add(10 * time.Second)
	for p0.lso() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("partition 0 marker not written (lso %d)", p0.lso())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if info, _ := tb.txns.Describe("bm-1"); info.State.String() != "PrepareCommit" {
		t.Fatalf("state before the crash %v, want PrepareCommit", info.State)
	}
	cancel()
	crash(tb)

	tb2 := startBroker(t, dir)
	deadline = time.Now().Add(10 * time.Second)
	for {
		info, _ := tb2.txns.Describe("bm-1")
		if info.State.String() == "CompleteCommit" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prepared commit not completed after restart: %+v", info)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := int32(0); i < 2; i++ {
		p, _ := tb2.partition("bm", i)
		if lso, hwm := p.lso(), p.hwm; lso != hwm {
			t.Fatalf("partition %d lso %d hwm %d", i, lso, hwm)
		}
	}
	got := readAll(t, tb2, "bm", true, 2)
	sort.Strings(got)
	if !eqStrings(got, []string{"p0", "p1"}) {
		t.Fatalf("read_committed after restart got %v", got)
	}
}
