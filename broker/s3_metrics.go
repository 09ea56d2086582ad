package broker

// S3 tier metrics, collected at scrape time: requests sent by S3 operation (what S3 bills;
// `make bench` divides them by the bytes produced) and the metadata snapshot's writes and
// age. Registered while the tier runs (startS3MetaWriter .. stopS3Meta).

import (
	"time"

	"github.com/klite/klite/broker/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

type s3Collector struct {
	b                           *Broker
	m                           *s3MetaState
	requests, metaPuts, metaAge *prometheus.Desc
}

func newS3Collector(b *Broker, m *s3MetaState) *s3Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(metrics.Namespace+"_"+name, help, labels, nil)
	}
	return &s3Collector{b: b, m: m,
		requests: d("s3_requests_total", "S3 requests sent by the S3 tier, by operation (PutObject, GetObject, ...), each retry and multipart part counted.", "operation"),
		metaPuts: d("s3_metadata_snapshots_total", "Metadata snapshots written to PREFIX/meta/."),
		metaAge:  d("s3_metadata_snapshot_age_seconds", "Seconds since the last metadata snapshot was written (0 before the first)."),
	}
}

// Describe implements prometheus.Collector.
func (c *s3Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.metaPuts
	ch <- c.metaAge
}

// Collect implements prometheus.Collector.
func (c *s3Collector) Collect(ch chan<- prometheus.Metric) {
	for op, n := range c.b.S3Requests() {
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n), op)
	}
	m := c.m
	puts, last := m.puts.Load(), m.lastPutNs.Load()
	age := 0.0
	if last != 0 {
		age = time.Since(time.Unix(0, last)).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(c.metaPuts, prometheus.CounterValue, float64(puts))
	ch <- prometheus.MustNewConstMetric(c.metaAge, prometheus.GaugeValue, age)
}
