package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestNilRegistryCountsNothing(t *testing.T) {
	var r *Registry
	r.InitAPIs([]int16{0})
	r.Request(0, time.Millisecond)
	r.Error(0, 3)
	r.WALSync(1, 1, time.Millisecond)
	r.Topic("t").Produced(1, 1)
	r.Topic("t").Fetched(1, 1)
	r.DeleteTopic("t")
	r.Listener("PLAINTEXT").Opened()
	r.Listener("PLAINTEXT").Authenticated()
	r.Listener("PLAINTEXT").Closed(true)
	if err := r.Register(nil); err != nil {
		t.Fatal(err)
	}
}

func TestCountersAndLabels(t *testing.T) {
	r := New()
	r.InitAPIs([]int16{0, 1})
	r.Request(0, 2*time.Millisecond)
	r.Request(0, 3*time.Millisecond)
	r.Request(57, time.Millisecond) // not initialised: ignored, no panic
	r.Request(-1, time.Millisecond)
	r.Error(0, 0) // no error: not counted
	r.Error(0, kerr.UnknownTopicOrPartition.Code)
	r.Error(0, kerr.UnknownTopicOrPartition.Code)
	r.Error(1, 32000) // a code kerr does not know keeps its number
	if n := testutil.CollectAndCount(r.requestsVec); n != 1 {
		t.Fatalf("%d request series, want only Produce's (Fetch was never requested)", n)
	}
	if got := testutil.ToFloat64(r.requestsVec.WithLabelValues("Produce")); got != 2 {
		t.Fatalf("Produce requests %v", got)
	}
	if got := testutil.ToFloat64(r.errorsVec.WithLabelValues("Produce", "UNKNOWN_TOPIC_OR_PARTITION")); got != 2 {
		t.Fatalf("Produce errors %v", got)
	}
	if got := testutil.ToFloat64(r.errorsVec.WithLabelValues("Fetch", "32000")); got != 1 {
		t.Fatalf("unknown code %v", got)
	}
	tp := r.Topic("t")
	tp.Produced(100, 3)
	tp.Fetched(0, 0)
	tp.Fetched(50, 2)
	if testutil.ToFloat64(r.bytesIn.WithLabelValues("t")) != 100 || testutil.ToFloat64(r.recordsOut.WithLabelValues("t")) != 2 {
		t.Fatal("topic counters")
	}
	r.DeleteTopic("t")
	if n := testutil.CollectAndCount(r.bytesIn); n != 0 {
		t.Fatalf("%d series after DeleteTopic", n)
	}
	l := r.Listener("SASL_SSL")
	l.Opened()
	l.Opened()
	l.Authenticated()
	l.Closed(false)
	if testutil.ToFloat64(r.conns.WithLabelValues("SASL_SSL", "true")) != 1 || testutil.ToFloat64(r.conns.WithLabelValues("SASL_SSL", "false")) != 0 {
		t.Fatal("connection gauges")
	}
	if err := testutil.GatherAndCompare(r.reg, strings.NewReader(`
# HELP klite_connections_opened_total Client connections accepted, by listener.
# TYPE klite_connections_opened_total counter
klite_connections_opened_total{listener="SASL_SSL"} 2
`), "klite_connections_opened_total"); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkHotPath is what one produce request costs the metrics: its count and latency, and
// its partition's bytes and records.
func BenchmarkHotPath(b *testing.B) {
	r := New()
	r.InitAPIs([]int16{0})
	tp := r.Topic("t")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			tp.Produced(16384, 16)
			r.Request(0, time.Since(start))
		}
	})
}
