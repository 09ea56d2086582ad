package broker

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klite/klite/broker/logstore"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func fastJobs(c *Config) {
	c.RetentionCheckInterval = 20 * time.Millisecond
	c.CompactionBackoff = 20 * time.Millisecond
}

// waitFor polls cond every 10 ms for at most 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fetchErr(t *testing.T, tb *testBroker, topic string, offset int64) int16 {
	t.Helper()
	resp, err := tb.fetchReq(topic, offset, 0, 0, 1<<20, 1<<20).RequestWith(ctxT(t, 5*time.Second), tb.client(t))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// TestRetentionDeletesOldSegments: with retention.ms, the jobs loop deletes the closed
// segments whose records are all older, never the newest data; the log start moves durably
// (ListOffsets earliest, a fetch below it answers OFFSET_OUT_OF_RANGE, also after a
// restart) and DescribeLogDirs reports the smaller size.
func TestRetentionDeletesOldSegments(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, fastJobs)
	adm := tb.admin(t)
	s := func(v string) *string { return &v }
	createTopic(t, adm, "ret", 1, map[string]*string{"retention.ms": s("60000"), "segment.bytes": s("4096")})
	cl := tb.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	old := time.Now().Add(-time.Hour)
	for i := 0; i < 40; i++ {
		r := &kgo.Record{Topic: "ret", Value: bytes.Repeat([]byte{'o'}, 500), Timestamp: old}
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "ret", Value: []byte("fresh")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p, _ := tb.partition("ret", 0)
	// Seal the active segment (after any seal still running), so every segment is listed:
	// retention deletes every one that holds old records only and keeps the one holding the
	// fresh record. Wait until that one is first and the log start is its base, so the log
	// start no longer moves while the checks below run (an earlier condition looked only at
	// the listed segments and raced with a roll still being sealed).
	if err := p.lg.Seal(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "retention to delete every old segment", func() bool {
		ls, _ := p.offsets()
		segs := p.lg.Segments()
		return len(segs) > 0 && segs[0].Base <= 40 && segs[0].Next > 40 && ls == segs[0].Base
	})
	ls, hwm := p.offsets()
	if hwm != 41 || ls > 40 {
		t.Fatalf("log start %d, high watermark %d: retention deleted the newest data", ls, hwm)
	}
	if got := fetchErr(t, tb, "ret", 0); got != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch below the log start: error %d, want OFFSET_OUT_OF_RANGE", got)
	}
	lo, err := adm.ListStartOffsets(ctxT(t, 5*time.Second), "ret")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("ret", 0); o.Offset != ls {
		t.Fatalf("ListOffsets earliest %d, want the log start %d", o.Offset, ls)
	}
	// 40 records of 500 bytes were stored (retention may already have run meanwhile).
	if after := logDirSize(t, adm, "ret"); after >= 40*500/2 {
		t.Fatalf("DescribeLogDirs size %d after retention", after)
	}
	got := consumeN(t, tb, "ret", int(hwm-ls))
	if string(got[len(got)-1].Value) != "fresh" {
		t.Fatalf("newest record %q", got[len(got)-1].Value)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	tb = startBroker(t, dir)
	if ls2, hwm2 := tb.partitionOffsets(t, "ret", 0); ls2 != ls || hwm2 != hwm {
		t.Fatalf("after restart: log start %d, high watermark %d, want %d, %d", ls2, hwm2, ls, hwm)
	}
}

// TestRetentionBytes: retention.bytes keeps the partition near its bound, deleting the
// oldest closed segments first.
func TestRetentionBytes(t *testing.T) {
	tb := startBroker(t, t.TempDir(), fastJobs)
	adm := tb.admin(t)
	s := func(v string) *string { return &v }
	createTopic(t, adm, "rb", 1, map[string]*string{"retention.bytes": s("8192"), "segment.bytes": s("4096")})
	cl := tb.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	for i := 0; i < 60; i++ {
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "rb", Value: bytes.Repeat([]byte{'b'}, 500)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := tb.partition("rb", 0)
	// The partition's log start follows its Log's once the jobs loop has seen it move.
	waitFor(t, "retention.bytes to delete segments", func() bool {
		ls, _ := p.offsets()
		return p.size() <= 8192+4096 && ls > 0
	})
	if ls, hwm := p.offsets(); ls == 0 || hwm != 60 {
		t.Fatalf("log start %d, high watermark %d", ls, hwm)
	}
}

// TestCompactionKeepsLatestPerKey: a compacted topic keeps the newest record of each key in
// its closed segments, offsets keep their gaps, and the records after compaction read back
// in order.
func TestCompactionKeepsLatestPerKey(t *testing.T) {
	tb := startBroker(t, t.TempDir(), fastJobs)
	adm := tb.admin(t)
	s := func(v string) *string { return &v }
	createTopic(t, adm, "cmp", 1, map[string]*string{"cleanup.policy": s("compact"), "segment.bytes": s("2048"),
		"min.cleanable.dirty.ratio": s("0.01")})
	cl := tb.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	const n = 100
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: "cmp", Key: []byte(fmt.Sprintf("k%d", i%5)), Value: []byte(fmt.Sprintf("v%03d", i))}
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := tb.partition("cmp", 0)
	waitFor(t, "the cleaner to compact", func() bool {
		for _, sg := range p.log().Segments() {
			if sg.Cleaned {
				return true
			}
		}
		return false
	})
	var offsets []int64
	latest := map[string]string{}
	var data []byte
	for next := int64(0); next < n; {
		if len(data) == 0 { // a read returns the batches of one segment at most
			var err error
			if data, err = p.log().Read(next, 1<<30); err != nil || len(data) == 0 {
				t.Fatalf("read at %d: %v", next, err)
			}
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(data); err != nil {
			t.Fatal(err)
		}
		data = data[12+int(rb.Length):]
		next = rb.FirstOffset + int64(rb.LastOffsetDelta) + 1
		recs, err := kgo.DefaultDecompressor().Decompress(rb.Records, kgo.CompressionCodecType(rb.Attributes&7))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < int(rb.NumRecords); i++ {
			var r kmsg.Record
			if err := r.ReadFrom(recs); err != nil {
				t.Fatal(err)
			}
			recs = recs[1+varintLen(r.Length)+int(r.Length)-1:]
			offsets = append(offsets, rb.FirstOffset+int64(r.OffsetDelta))
			latest[string(r.Key)] = string(r.Value)
		}
	}
	if len(offsets) >= n || len(offsets) < 5 {
		t.Fatalf("%d records after compaction of %d", len(offsets), n)
	}
	for i := 1; i < len(offsets); i++ {
		if offsets[i] <= offsets[i-1] {
			t.Fatalf("offsets out of order: %v", offsets)
		}
	}
	for k := 0; k < 5; k++ {
		if want := fmt.Sprintf("v%03d", 95+k); latest[fmt.Sprintf("k%d", k)] != want {
			t.Fatalf("key k%d reads %q last, want %q", k, latest[fmt.Sprintf("k%d", k)], want)
		}
	}
	if _, hwm := p.offsets(); hwm != n {
		t.Fatalf("high watermark %d", hwm)
	}
}

func varintLen(v int32) int {
	n, u := 1, uint32(v<<1)^uint32(v>>31)
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// TestDeleteTopicRemovesSegments: DeleteTopics gives the partition segments' disk space back.
func TestDeleteTopicRemovesSegments(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	adm := tb.admin(t)
	createTopic(t, adm, "del", 1, nil)
	if err := tb.client(t).ProduceSync(ctxT(t, 10*time.Second), testRecords("del", 3)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	id := tb.topic("del").id
	if err := tb.drain.Seal(logstore.PartitionKey(id, 0)); err != nil {
		t.Fatal(err)
	}
	segDir := filepath.Join(dir, segmentsDir, fmt.Sprintf("%x", id), "0")
	if es, err := os.ReadDir(segDir); err != nil || len(es) == 0 {
		t.Fatalf("no segment written: %v", err)
	}
	if r, err := adm.DeleteTopics(ctxT(t, 5*time.Second), "del"); err != nil || r["del"].Err != nil {
		t.Fatal(err, r["del"].Err)
	}
	if es, _ := os.ReadDir(segDir); len(es) != 0 {
		t.Fatalf("%d objects left after DeleteTopics", len(es))
	}
	// Segments a crash left behind (deleted in meta.log, not yet on disk) go at the next start.
	if err := os.WriteFile(filepath.Join(segDir, "00000000000000000000.seg"), []byte("left"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	startBroker(t, dir)
	if _, err := os.Stat(filepath.Join(dir, segmentsDir, fmt.Sprintf("%x", id))); !os.IsNotExist(err) {
		t.Fatalf("deleted topic's segment directory still there: %v", err)
	}
}

// TestIdleBurstTailSealedBeforeTrickle: once produce stops, the jobs loop seals the tail of a
// partition that took a burst (its buffers hold more than idleSealBytes) after
// idleSealAfter, freeing its memory, while a partition that took a single small record keeps
// its tail until the broker has been idle for idleSealAllAfter: a trickle does not turn
// every record into a segment. (The build that sealed every tail only after 10 s idle
// sealed both at once.)
func TestIdleBurstTailSealedBeforeTrickle(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	createTopic(t, adm, "burst", 1, nil)
	createTopic(t, adm, "trickle", 1, nil)
	cl := tb.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20))
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "trickle", Value: []byte("one")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	const n = 24 // 2.4 MB: over idleSealBytes
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "burst", Value: bytes.Repeat([]byte{'b'}, 100<<10)}
	}
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	burst, _ := tb.partition("burst", 0)
	trickle, _ := tb.partition("trickle", 0)
	waitFor(t, "the burst partition's tail to be sealed", func() bool {
		return burst.lg.DurableOffset() == n && len(burst.lg.Segments()) > 0
	})
	if d := trickle.lg.DurableOffset(); d != 0 {
		t.Fatalf("the trickle partition's single record was sealed (durable offset %d) with the burst: want it kept in its tail until the broker has been idle for %s", d, idleSealAllAfter)
	}
	if got := consumeN(t, tb, "burst", n); len(got) != n || len(got[n-1].Value) != 100<<10 {
		t.Fatalf("read back %d records from the sealed burst", len(got))
	}
}
