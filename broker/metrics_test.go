package broker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klite/klite/broker/metrics"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// scrape is one parsed /metrics answer.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, url string) scrape {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value is the sample of name whose labels include all of kv (pairs), and whether there is
// one: a counter's or gauge's value, a histogram's sample count.
func (s scrape) value(name string, kv ...string) (float64, bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(kv); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func (s scrape) must(t *testing.T, name string, kv ...string) float64 {
	t.Helper()
	v, ok := s.value(name, kv...)
	if !ok {
		t.Fatalf("no sample %s%v in /metrics", name, kv)
	}
	return v
}

// awaitMetric scrapes until cond holds for the sample (bounded in tries and time).
func awaitMetric(t *testing.T, url string, cond func(float64) bool, name string, kv ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var last float64
	var ok bool
	for i := 0; i < 300 && time.Now().Before(deadline); i++ {
		if last, ok = scrapeMetrics(t, url).value(name, kv...); ok && cond(last) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s%v: last value %v (present %v), condition never held", name, kv, last, ok)
}

// TestMetricsMoveWithTraffic scrapes /metrics around produce, consume, group and
// transaction activity and checks the specific values each should have.
func TestMetricsMoveWithTraffic(t *testing.T) {
	reg := metrics.New()
	tb := startBroker(t, t.TempDir(), func(c *Config) { c.Metrics = reg })
	hs := httptest.NewServer(reg.Handler())
	defer hs.Close()
	url := hs.URL + "/metrics"

	s := scrapeMetrics(t, url)
	if _, ok := s.value("klite_topic_records_in_total", "topic", "mx"); ok {
		t.Fatal("records in for a topic that does not exist yet")
	}
	s.must(t, "go_goroutines")
	s.must(t, "process_open_fds")
	if v := s.must(t, "klite_data_dir_free_bytes"); v <= 0 {
		t.Fatalf("data dir free bytes %v", v)
	}

	adm := tb.admin(t)
	createTopic(t, adm, "mx", 2, nil)
	cl := tb.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("mx"))
	ctx := ctxT(t, 30*time.Second)
	const n0, n1 = 30, 20
	for i := 0; i < n0+n1; i++ {
		r := &kgo.Record{Value: []byte("value-" + strconv.Itoa(i)), Partition: 0}
		if i >= n0 {
			r.Partition = 1
		}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	s = scrapeMetrics(t, url)
	if v := s.must(t, "klite_topic_records_in_total", "topic", "mx"); v != n0+n1 {
		t.Fatalf("records in = %v, want %d", v, n0+n1)
	}
	bytesIn := s.must(t, "klite_topic_bytes_in_total", "topic", "mx")
	if bytesIn < 61*(n0+n1) { // one batch each, at least a batch header
		t.Fatalf("bytes in = %v for %d single-record batches", bytesIn, n0+n1)
	}
	if v := s.must(t, "klite_topic_storage_bytes", "topic", "mx"); v != bytesIn {
		t.Fatalf("storage bytes %v, want the %v bytes produced", v, bytesIn)
	}
	if v := s.must(t, "klite_requests_total", "api", "Produce"); v < n0+n1 {
		t.Fatalf("Produce requests = %v, want at least %d", v, n0+n1)
	}
	if v := s.must(t, "klite_request_duration_seconds", "api", "Produce"); v < n0+n1 {
		t.Fatalf("Produce latency samples = %v, want at least %d", v, n0+n1)
	}
	if v := s.must(t, "klite_wal_group_commit_entries"); v < 1 {
		t.Fatal("no WAL group commit observed")
	}
	if s.must(t, "klite_wal_fsync_duration_seconds") != s.must(t, "klite_wal_group_commit_bytes") {
		t.Fatal("fsyncs and group commits counted differently")
	}
	if v := s.must(t, "klite_connections", "listener", "PLAINTEXT", "authenticated", "false"); v < 1 {
		t.Fatalf("open PLAINTEXT connections = %v", v)
	}
	if v := s.must(t, "klite_topic_partitions", "topic", "mx"); v != 2 {
		t.Fatalf("partitions = %v", v)
	}

	// Consume everything once: records out == records in.
	consumeN(t, tb, "mx", n0+n1)
	s = scrapeMetrics(t, url)
	if v := s.must(t, "klite_topic_records_out_total", "topic", "mx"); v != n0+n1 {
		t.Fatalf("records out = %v, want %d", v, n0+n1)
	}
	if v := s.must(t, "klite_topic_bytes_out_total", "topic", "mx"); v != bytesIn {
		t.Fatalf("bytes out = %v, want %v", v, bytesIn)
	}

	// Committed offsets without members: lag is high watermark minus committed.
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "mx", Partition: 0, At: 10, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: "mx", Partition: 1, At: n1, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx, "lagging", offs); err != nil {
		t.Fatal(err)
	}
	s = scrapeMetrics(t, url)
	if v := s.must(t, "klite_consumer_lag", "group", "lagging", "topic", "mx", "partition", "0"); v != n0-10 {
		t.Fatalf("lag p0 = %v, want %d", v, n0-10)
	}
	if v := s.must(t, "klite_consumer_lag", "group", "lagging", "topic", "mx", "partition", "1"); v != 0 {
		t.Fatalf("lag p1 = %v, want 0", v)
	}
	if v := s.must(t, "klite_groups", "type", "classic", "state", "Empty"); v != 1 {
		t.Fatalf("Empty classic groups = %v, want 1", v)
	}

	// A group member: the group turns Stable with one member and its lag goes to 0.
	gc := newGroupConsumer(t, tb, "members", "mx", kgo.CooperativeStickyBalancer())
	pctx, stopPolling := context.WithTimeout(context.Background(), 30*time.Second)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for i := 0; i < 200 && pctx.Err() == nil; i++ {
			gc.poll(pctx)
		}
	}()
	defer func() { stopPolling(); <-polled }()
	awaitMetric(t, url, func(v float64) bool { return v == 1 }, "klite_groups", "type", "classic", "state", "Stable")
	awaitMetric(t, url, func(v float64) bool { return v == 1 }, "klite_group_members", "group", "members")
	awaitMetric(t, url, func(v float64) bool { return v == 0 }, "klite_consumer_lag", "group", "members", "topic", "mx", "partition", "0")
	awaitMetric(t, url, func(v float64) bool { return v == 0 }, "klite_consumer_lag", "group", "members", "topic", "mx", "partition", "1")
	s = scrapeMetrics(t, url)
	if v := s.must(t, "klite_topic_records_out_total", "topic", "mx"); v != 2*(n0+n1) {
		t.Fatalf("records out after the group read everything again = %v, want %d", v, 2*(n0+n1))
	}
	if v := s.must(t, "klite_requests_total", "api", "JoinGroup"); v < 1 {
		t.Fatalf("JoinGroup requests = %v", v)
	}
	if v := s.must(t, "klite_requests_total", "api", "OffsetCommit"); v < 2 {
		t.Fatalf("OffsetCommit requests = %v", v)
	}

	// An error code per response entry, by API and name.
	if _, err := adm.DeleteTopics(ctx, "no-such-topic"); err != nil {
		t.Fatal(err)
	}
	s = scrapeMetrics(t, url)
	if v := s.must(t, "klite_request_errors_total", "api", "DeleteTopics", "error", "UNKNOWN_TOPIC_OR_PARTITION"); v != 1 {
		t.Fatalf("DeleteTopics UNKNOWN_TOPIC_OR_PARTITION = %v, want 1", v)
	}

	// An open transaction shows as Ongoing until it commits.
	tcl := tb.client(t, kgo.TransactionalID("metrics-txn"), kgo.DefaultProduceTopic("mx"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := tcl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tcl.ProduceSync(ctx, &kgo.Record{Value: []byte("in txn")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if v := scrapeMetrics(t, url).must(t, "klite_transactions", "state", "Ongoing"); v != 1 {
		t.Fatalf("Ongoing transactions = %v, want 1", v)
	}
	if err := tcl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	awaitMetric(t, url, func(v float64) bool { return v == 0 }, "klite_transactions", "state", "Ongoing")

	// The dashboard's quota, compaction and S3 panels: their series exist once a quota
	// throttled an answer, a compacted topic has sealed segments and the broker provides the
	// S3 flush lag.
	if r := alterQuotas(t, tb.client(t), false, quotaEntry(map[string]float64{"request_percentage": 1e-9}, "client-id", "metrics-busy")); r.Entries[0].ErrorCode != 0 {
		t.Fatal(r.Entries)
	}
	qc := dialRaw(t, tb.addr)
	sendAs(t, qc, "metrics-busy", kmsg.NewPtrMetadataRequest(), 1)
	readResponse(t, qc, kmsg.NewPtrMetadataResponse(), false)
	sv := func(v string) *string { return &v }
	createTopic(t, adm, "mxc", 1, map[string]*string{"cleanup.policy": sv("compact"), "segment.bytes": sv("2048")})
	ccl := tb.client(t, kgo.DefaultProduceTopic("mxc"), kgo.ProducerLinger(0))
	for i := 0; i < 60; i++ {
		if err := ccl.ProduceSync(ctx, &kgo.Record{Key: []byte{byte('a' + i%3)}, Value: []byte("compacted value " + strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tb.s3FlushLag = func() (int64, time.Duration) { return 0, 0 }

	// Every metric the Grafana dashboard queries is exported (all exist by now).
	checkDashboardMetrics(t, scrapeMetrics(t, url))

	// A deleted topic's series go away.
	if _, err := adm.DeleteTopics(context.Background(), "mx"); err != nil {
		t.Fatal(err)
	}
	s = scrapeMetrics(t, url)
	for _, name := range []string{"klite_topic_records_in_total", "klite_topic_storage_bytes"} {
		if _, ok := s.value(name, "topic", "mx"); ok {
			t.Fatalf("%s of the deleted topic still exported", name)
		}
	}
}

// TestMetricsOffCountsNothing: a broker without a registry serves as before (nil-safe).
func TestMetricsOffCountsNothing(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "off", 1, nil)
	cl := tb.client(t, kgo.DefaultProduceTopic("off"))
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	consumeN(t, tb, "off", 1)
	if tb.metrics != nil || tb.topic("off").m != nil {
		t.Fatal("metrics objects exist without a registry")
	}
}

// TestBatchStats: complete v2 batches are counted, a cut-off tail is not.
func TestBatchStats(t *testing.T) {
	batch := func(records uint32, size int) []byte {
		b := make([]byte, size)
		b[11] = byte(size - 12)
		b[16] = 2
		b[60] = byte(records)
		return b
	}
	data := append(batch(3, 100), batch(5, 80)...)
	if n, c := batchStats(data); n != 180 || c != 8 {
		t.Fatalf("two batches: %d bytes %d records", n, c)
	}
	if n, c := batchStats(append(data, batch(7, 90)[:70]...)); n != 180 || c != 8 {
		t.Fatalf("with a partial batch: %d bytes %d records", n, c)
	}
	if n, c := batchStats(nil); n != 0 || c != 0 {
		t.Fatal("empty")
	}
}

// checkDashboardMetrics fails for a metric named in docker/klite-dashboard.json that the
// broker does not export (histograms by their _bucket, _sum and _count series).
func checkDashboardMetrics(t *testing.T, s scrape) {
	t.Helper()
	data, err := os.ReadFile("../docker/klite-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	re := regexp.MustCompile(`\b(?:klite|go|process)_[a-z_]+\b`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range re.FindAllString(tg.Expr, -1) {
				n++
				base := name
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if f := s[strings.TrimSuffix(name, suf)]; strings.HasSuffix(name, suf) && f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
						base = strings.TrimSuffix(name, suf)
					}
				}
				if s[base] == nil {
					t.Errorf("dashboard panel queries %s, which /metrics does not export", name)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d metric references found in the dashboard", n)
	}
}

// FuzzFetchBatchStats: counting a fetch response's batches never reads out of bounds and never
// counts more bytes than it was given.
func FuzzFetchBatchStats(f *testing.F) {
	b := make([]byte, 70)
	b[11], b[16], b[60] = 58, 2, 1
	f.Add(b)
	f.Add(append(b, b[:30]...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		n, c := batchStats(data)
		if n < 0 || n > len(data) || c < 0 && n == 0 {
			t.Fatalf("%d bytes, %d records of %d", n, c, len(data))
		}
	})
}

// TestMetricsConnectionsBySASL: SASL connections are counted under SASL_PLAINTEXT,
// unauthenticated until SaslAuthenticate succeeds, and leave the gauge when they close.
func TestMetricsConnectionsBySASL(t *testing.T) {
	reg := metrics.New()
	tb := startBroker(t, t.TempDir(), saslOn(mechPlain), func(c *Config) { c.Metrics = reg })
	hs := httptest.NewServer(reg.Handler())
	defer hs.Close()
	url := hs.URL + "/metrics"

	raw := dialSASLRaw(t, tb.addr) // connected, nothing sent: not authenticated
	awaitMetric(t, url, func(v float64) bool { return v == 1 }, "klite_connections", "listener", "SASL_PLAINTEXT", "authenticated", "false")

	cl := tb.client(t, kgo.SASL(mechanism(mechPlain, "admin", "admin-secret")))
	if err := cl.Ping(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	awaitMetric(t, url, func(v float64) bool { return v >= 1 }, "klite_connections", "listener", "SASL_PLAINTEXT", "authenticated", "true")
	if v := scrapeMetrics(t, url).must(t, "klite_connections", "listener", "SASL_PLAINTEXT", "authenticated", "false"); v != 1 {
		t.Fatalf("unauthenticated connections = %v, want only the raw one", v)
	}
	cl.Close()
	raw.nc.Close()
	awaitMetric(t, url, func(v float64) bool { return v == 0 }, "klite_connections", "listener", "SASL_PLAINTEXT", "authenticated", "true")
	awaitMetric(t, url, func(v float64) bool { return v == 0 }, "klite_connections", "listener", "SASL_PLAINTEXT", "authenticated", "false")
	if v := scrapeMetrics(t, url).must(t, "klite_connections_opened_total", "listener", "SASL_PLAINTEXT"); v < 2 {
		t.Fatalf("connections opened = %v", v)
	}
}
