package broker

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/klite/klite/broker/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// countRecords reads a partition's log from its start and counts the records stored.
func countRecords(t *testing.T, p *partition) int {
	t.Helper()
	n := 0
	ls, hwm := p.offsets()
	for next := ls; next < hwm; {
		data, err := p.log().Read(next, 1<<30)
		if err != nil || len(data) == 0 {
			t.Fatalf("read at %d: %v", next, err)
		}
		for len(data) > 0 {
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(data); err != nil {
				t.Fatal(err)
			}
			data = data[12+int(rb.Length):]
			next = rb.FirstOffset + int64(rb.LastOffsetDelta) + 1
			n += int(rb.NumRecords)
		}
	}
	return n
}

// TestMetricsLogJobs: the retention and compaction metrics count exactly what one pass of
// each did (segments and bytes deleted, records removed by the cleaner), the dirty ratio is
// the log's, and the S3 flush lag gauges appear only once the broker provides the lag.
func TestMetricsLogJobs(t *testing.T) {
	reg := metrics.New()
	tb := startBroker(t, t.TempDir(), func(c *Config) {
		c.Metrics = reg
		c.RetentionCheckInterval, c.CompactionBackoff = time.Hour, time.Hour // passes run by hand below
	})
	hs := httptest.NewServer(reg.Handler())
	defer hs.Close()
	url := hs.URL + "/metrics"
	adm := tb.admin(t)
	s := func(v string) *string { return &v }
	createTopic(t, adm, "ret", 1, map[string]*string{"retention.ms": s("60000"), "segment.bytes": s("4096")})
	createTopic(t, adm, "cmp", 1, map[string]*string{"cleanup.policy": s("compact"), "segment.bytes": s("2048"),
		"min.cleanable.dirty.ratio": s("0.01")})
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
	for i := 0; i < 100; i++ {
		r := &kgo.Record{Topic: "cmp", Key: []byte(fmt.Sprintf("k%d", i%5)), Value: []byte(fmt.Sprintf("v%03d", i))}
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	sc := scrapeMetrics(t, url)
	for _, name := range []string{"klite_retention_runs_total", "klite_retention_segments_deleted_total", "klite_compaction_runs_total", "klite_compaction_cleanings_total"} {
		if v := sc.must(t, name); v != 0 {
			t.Fatalf("%s = %v before any pass", name, v)
		}
	}
	if _, ok := sc.value("klite_s3_flush_lag_bytes"); ok {
		t.Fatal("S3 flush lag exported without an S3 tier")
	}
	cp, _ := tb.partition("cmp", 0)
	ratio, ok := cp.log().DirtyRatio()
	if !ok || ratio != 1 {
		t.Fatalf("dirty ratio before cleaning %v (%v), want 1: nothing cleaned yet", ratio, ok)
	}
	if v := sc.must(t, "klite_compaction_dirty_ratio", "topic", "cmp", "partition", "0"); v != ratio {
		t.Fatalf("dirty ratio gauge %v, want %v", v, ratio)
	}
	if _, ok := sc.value("klite_compaction_dirty_ratio", "topic", "ret"); ok {
		t.Fatal("a dirty ratio for a topic that is not compacted")
	}

	// One retention pass: what it deleted is the segments gone from the log.
	rp, _ := tb.partition("ret", 0)
	before := rp.log().Segments()
	tb.runRetention()
	after := map[string]bool{}
	for _, sg := range rp.log().Segments() {
		after[sg.Name] = true
	}
	var goneSegs, goneBytes int64
	for _, sg := range before {
		if !after[sg.Name] {
			goneSegs++
			goneBytes += sg.Size
		}
	}
	if goneSegs == 0 {
		t.Fatal("retention deleted nothing")
	}
	// One compaction pass.
	recsBefore := countRecords(t, cp)
	tb.runCompaction()
	removed := recsBefore - countRecords(t, cp)
	if removed <= 0 {
		t.Fatalf("compaction removed %d records", removed)
	}

	sc = scrapeMetrics(t, url)
	want := map[string]float64{
		"klite_retention_runs_total":             1,
		"klite_retention_segments_deleted_total": float64(goneSegs),
		"klite_retention_bytes_deleted_total":    float64(goneBytes),
		"klite_retention_errors_total":           0,
		"klite_compaction_runs_total":            1,
		"klite_compaction_cleanings_total":       1,
		"klite_compaction_records_removed_total": float64(removed),
		"klite_compaction_errors_total":          0,
	}
	for name, w := range want {
		if v := sc.must(t, name); v != w {
			t.Fatalf("%s = %v, want %v", name, v, w)
		}
	}
	for _, name := range []string{"klite_compaction_bytes_read_total", "klite_compaction_bytes_written_total", "klite_compaction_segments_cleaned_total",
		"klite_retention_last_run_timestamp_seconds", "klite_compaction_last_run_timestamp_seconds"} {
		if v := sc.must(t, name); v <= 0 {
			t.Fatalf("%s = %v after a pass", name, v)
		}
	}
	ratio, _ = cp.log().DirtyRatio()
	if v := sc.must(t, "klite_compaction_dirty_ratio", "topic", "cmp", "partition", "0"); v != ratio || ratio >= 1 {
		t.Fatalf("dirty ratio after cleaning: gauge %v, log %v", v, ratio)
	}

	// The S3 tier's lag, once the broker provides it.
	tb.s3FlushLag = func() (int64, time.Duration) { return 1234, 1500 * time.Millisecond }
	sc = scrapeMetrics(t, url)
	if v := sc.must(t, "klite_s3_flush_lag_bytes"); v != 1234 {
		t.Fatalf("s3 flush lag bytes %v", v)
	}
	if v := sc.must(t, "klite_s3_flush_lag_seconds"); v != 1.5 {
		t.Fatalf("s3 flush lag seconds %v", v)
	}
}
