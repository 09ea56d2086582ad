package main

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseProducerPerf(t *testing.T) {
	out := "500 records sent, 99.8 records/sec (0.10 MB/sec), 3.1 ms avg latency, 40.0 ms max latency.\n" +
		"1000000 records sent, 252016.129032 records/sec (246.11 MB/sec), 95.42 ms avg latency, 611.00 ms max latency, 83 ms 50th, 210 ms 95th, 288 ms 99th, 540 ms 99.9th.\n"
	p, err := parseProducerPerf(out)
	if err != nil {
		t.Fatal(err)
	}
	want := producerPerf{records: 1000000, recsPerSec: 252016.129032, mbPerSec: 246.11, avgMs: 95.42, maxMs: 611,
		p50: 83, p95: 210, p99: 288, p999: 540}
	if p != want {
		t.Fatalf("got %+v, want %+v", p, want)
	}
	if _, err := parseProducerPerf("Exception in thread main\n"); err == nil {
		t.Fatal("no summary line: want an error")
	}
}

func TestParseConsumerPerf(t *testing.T) {
	out := "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n" +
		"2026-12-06 07:52:01:123, 2026-12-06 07:52:05:456, 976.5625, 225.3714, 1000000, 230787.4452, 3012, 1321, 739.2601, 756999.2430\n"
	c, err := parseConsumerPerf(out)
	if err != nil {
		t.Fatal(err)
	}
	if c.records != 1000000 || c.mb != 976.5625 || c.mbPerSec != 225.3714 || c.fetchMBPerSec != 739.2601 {
		t.Fatalf("got %+v", c)
	}
	if _, err := parseConsumerPerf("start.time, end.time\n"); err == nil {
		t.Fatal("header only: want an error")
	}
}

func TestPercentilesOverAllRecords(t *testing.T) {
	lats := make([]time.Duration, 0, 1000)
	for i := 1000; i >= 1; i-- { // unsorted on purpose
		lats = append(lats, time.Duration(i)*time.Millisecond)
	}
	l := percentiles(lats)
	if l.n != 1000 || l.p50 != 501*time.Millisecond || l.p99 != 991*time.Millisecond ||
		l.p999 != 1000*time.Millisecond || l.pMax != 1000*time.Millisecond {
		t.Fatalf("got %+v", l)
	}
}

// The chart is well-formed XML with a bar per figure and a line per broker, and a figure
// not measured (NaN) is drawn as nothing rather than breaking the document.
func TestChartIsWellFormedSVG(t *testing.T) {
	r := &compareRun{start: time.Unix(0, 0)}
	r.rows = []cmpRow{
		{name: "produce <x> & y", unit: "MB/s", v: [2]float64{900, 300}},
		{name: "e2e latency p99", unit: "ms", v: [2]float64{1.5, math.NaN()}},
	}
	for i, name := range []string{"klite", "Kafka"} {
		r.targets[i] = &target{name: name, samples: []rssSample{{0, 10e6}, {time.Second, 20e6}}}
	}
	out := r.chart()
	d := xml.NewDecoder(strings.NewReader(out))
	counts := map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v\n%s", err, out)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
	if counts["polyline"] != 2 {
		t.Fatalf("%d RSS lines, want 2", counts["polyline"])
	}
	if !strings.Contains(out, "produce &lt;x&gt; &amp; y") {
		t.Fatal("row names must be escaped")
	}
	if !strings.Contains(out, ">900 MB/s<") || !strings.Contains(out, ">-<") {
		t.Fatal("want the value labels, with - for a figure not measured")
	}
}
