// Package metrics is klite's Prometheus instrumentation: one Registry per broker, served on
// /metrics of the health address (cmd/klite) in the Prometheus text format.
//
// Two kinds of metric live here:
//
//   - Hot-path counters (requests, latency, bytes and records per topic, WAL group commits,
//     connections). Their children are resolved once (per API key in arrays, per topic in a
//     *Topic the broker caches on its topic struct), so counting is an atomic add, never a
//     label lookup with string building.
//   - Scrape-time gauges (storage bytes, free space, groups, consumer lag, transactions),
//     computed by a Collector the broker registers (broker/metrics_collect.go), so they cost
//     nothing between scrapes.
//
// A nil *Registry is valid and counts nothing: that is how metrics are switched off
// (klite --metrics=false), and every method checks for it.
//
// Adding metrics: a hot-path counter gets a field here, created in New and pre-resolved the
// same way; a metric computed from state at scrape time is a prometheus.Collector passed to
// Register (the client-quota throttle metrics, for example, belong in a file of their own
// in this package with a constructor taking the Registry).
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Namespace prefixes every klite metric.
const Namespace = "klite"

// latencyBuckets span a produce acknowledged from the page cache (0.1 ms) to a fetch that
// long-polls its whole MaxWaitMs (seconds).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Registry holds klite's metrics. Create it with New; the zero value is not usable, a nil
// pointer is (it counts nothing).
type Registry struct {
	reg *prometheus.Registry

	requestsVec *prometheus.CounterVec
	latencyVec  *prometheus.HistogramVec
	// api holds each API key's children, resolved at its first request (an API never used
	// exports no series, which keeps a scrape small); known marks the keys the broker
	// implements (InitAPIs, before serving).
	api       [kmsg.MaxKey + 1]atomic.Pointer[apiChildren]
	known     [kmsg.MaxKey + 1]bool
	errorsVec *prometheus.CounterVec
	errors    sync.Map // uint32(key<<16 | uint16(code)) -> prometheus.Counter

	bytesIn, recordsIn, bytesOut, recordsOut *prometheus.CounterVec

	walCommitBytes, walCommitEntries, walFsync prometheus.Observer

	conns       *prometheus.GaugeVec
	connsOpened *prometheus.CounterVec
	listeners   sync.Map // listener name -> *Listener
}

// New returns a Registry with klite's metrics and the Go runtime and process collectors.
func New() *Registry {
	r := &Registry{reg: prometheus.NewRegistry()}
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{r.reg}

	reqs := f.counterVec("requests_total", "Requests handled, by API.", "api")
	lat := f.histogramVec("request_duration_seconds",
		"Time from a request's dispatch to its answer being ready (queueing in the connection and writing excluded; fetches include their long-poll wait), by API.",
		latencyBuckets, "api")
	r.requestsVec, r.latencyVec = reqs, lat
	r.errorsVec = f.counterVec("request_errors_total",
		"Error codes in responses, by API and error: one per response entry (partition, topic, group, ...) that carries a non-zero code.", "api", "error")

	r.bytesIn = f.counterVec("topic_bytes_in_total", "Record batch bytes appended by Produce, by topic.", "topic")
	r.recordsIn = f.counterVec("topic_records_in_total", "Records appended by Produce, by topic.", "topic")
	r.bytesOut = f.counterVec("topic_bytes_out_total", "Record batch bytes returned by Fetch (consumers and followers of transactions alike), by topic.", "topic")
	r.recordsOut = f.counterVec("topic_records_out_total", "Records in the batches returned by Fetch, by topic.", "topic")

	r.walCommitBytes = f.histogram("wal_group_commit_bytes", "Bytes made durable by one WAL fsync (a group commit).",
		prometheus.ExponentialBuckets(512, 4, 10))
	r.walCommitEntries = f.histogram("wal_group_commit_entries", "Batches made durable by one WAL fsync (a group commit).",
		prometheus.ExponentialBuckets(1, 2, 12))
	r.walFsync = f.histogram("wal_fsync_duration_seconds", "Duration of one WAL fsync.",
		[]float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1})

	r.conns = f.gaugeVec("connections", "Open client connections, by listener (security protocol) and whether the connection has an authenticated principal (SASL or a TLS client certificate).", "listener", "authenticated")
	r.connsOpened = f.counterVec("connections_opened_total", "Client connections accepted, by listener.", "listener")
	return r
}

// factory registers metrics under the klite namespace.
type factory struct{ reg *prometheus.Registry }

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(v)
	return v
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(v)
	return v
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(v)
	return v
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

// Register adds a collector (metrics computed at scrape time, or another package's).
func (r *Registry) Register(c prometheus.Collector) error {
	if r == nil {
		return nil
	}
	return r.reg.Register(c)
}

// Unregister removes a collector added by Register.
func (r *Registry) Unregister(c prometheus.Collector) {
	if r != nil {
		r.reg.Unregister(c)
	}
}

// Handler serves the metrics in the Prometheus text (or OpenMetrics) format.
func (r *Registry) Handler() http.Handler {
	if r == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorLog: nil, ErrorHandling: promhttp.ContinueOnError})
}

// Gatherer exposes the registry to tests and embedders.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// apiChildren are one API key's request counter and latency histogram.
type apiChildren struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// InitAPIs declares the API keys the broker implements; Request counts only those.
func (r *Registry) InitAPIs(keys []int16) {
	if r == nil {
		return
	}
	for _, k := range keys {
		if k >= 0 && k <= kmsg.MaxKey {
			r.known[k] = true
		}
	}
}

// Request counts one answered request of API key and its latency: an atomic load and two
// atomic adds once the key's children exist.
func (r *Registry) Request(key int16, took time.Duration) {
	if r == nil || key < 0 || key > kmsg.MaxKey {
		return
	}
	c := r.api[key].Load()
	if c == nil {
		if !r.known[key] {
			return
		}
		name := kmsg.NameForKey(key)
		r.api[key].CompareAndSwap(nil, &apiChildren{r.requestsVec.WithLabelValues(name), r.latencyVec.WithLabelValues(name)})
		c = r.api[key].Load()
	}
	c.requests.Inc()
	c.latency.Observe(took.Seconds())
}

// Error counts one non-zero error code in a response of API key. The child is resolved at
// its first occurrence and cached, so a repeated error builds no label strings.
func (r *Registry) Error(key, code int16) {
	if r == nil || code == 0 {
		return
	}
	id := uint32(uint16(key))<<16 | uint32(uint16(code))
	if c, ok := r.errors.Load(id); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	name := strconv.Itoa(int(code))
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && e.Code == code {
		name = e.Message
	}
	c, _ := r.errors.LoadOrStore(id, r.errorsVec.WithLabelValues(kmsg.NameForKey(key), name))
	c.(prometheus.Counter).Inc()
}

// Topic is one topic's traffic counters; the broker keeps it on its topic struct. A nil
// *Topic counts nothing.
type Topic struct {
	bytesIn, recordsIn, bytesOut, recordsOut prometheus.Counter
}

// Topic returns the counters of a topic (created at zero).
func (r *Registry) Topic(name string) *Topic {
	if r == nil {
		return nil
	}
	return &Topic{
		bytesIn: r.bytesIn.WithLabelValues(name), recordsIn: r.recordsIn.WithLabelValues(name),
		bytesOut: r.bytesOut.WithLabelValues(name), recordsOut: r.recordsOut.WithLabelValues(name),
	}
}

// DeleteTopic drops a deleted topic's series (a topic created again under the name starts
// at zero, as Kafka's per-topic metrics do).
func (r *Registry) DeleteTopic(name string) {
	if r == nil {
		return
	}
	for _, v := range []*prometheus.CounterVec{r.bytesIn, r.recordsIn, r.bytesOut, r.recordsOut} {
		v.DeleteLabelValues(name)
	}
}

// Produced counts one appended batch.
func (t *Topic) Produced(bytes, records int) {
	if t == nil {
		return
	}
	t.bytesIn.Add(float64(bytes))
	t.recordsIn.Add(float64(records))
}

// Fetched counts batches returned by a fetch.
func (t *Topic) Fetched(bytes, records int) {
	if t == nil || bytes == 0 {
		return
	}
	t.bytesOut.Add(float64(bytes))
	t.recordsOut.Add(float64(records))
}

// WALSync records one WAL group commit: the bytes and batches one fsync made durable and
// how long the fsync took. It runs on the WAL's syncer and must stay cheap.
func (r *Registry) WALSync(bytes int64, entries int, took time.Duration) {
	if r == nil {
		return
	}
	r.walCommitBytes.Observe(float64(bytes))
	r.walCommitEntries.Observe(float64(entries))
	r.walFsync.Observe(took.Seconds())
}

// Listener is the connection gauges of one listener.
type Listener struct {
	anon, authed prometheus.Gauge
	opened       prometheus.Counter
}

// Listener returns the gauges of a listener by name (its security protocol, e.g.
// PLAINTEXT or SASL_SSL), resolved once.
func (r *Registry) Listener(name string) *Listener {
	if r == nil {
		return nil
	}
	if l, ok := r.listeners.Load(name); ok {
		return l.(*Listener)
	}
	l := &Listener{anon: r.conns.WithLabelValues(name, "false"), authed: r.conns.WithLabelValues(name, "true"), opened: r.connsOpened.WithLabelValues(name)}
	got, _ := r.listeners.LoadOrStore(name, l)
	return got.(*Listener)
}

// Opened counts a new, not yet authenticated connection.
func (l *Listener) Opened() {
	if l != nil {
		l.opened.Inc()
		l.anon.Inc()
	}
}

// Authenticated moves a connection from unauthenticated to authenticated.
func (l *Listener) Authenticated() {
	if l != nil {
		l.anon.Dec()
		l.authed.Inc()
	}
}

// Closed counts a connection gone; authed says which gauge it was in.
func (l *Listener) Closed(authed bool) {
	if l == nil {
		return
	}
	if authed {
		l.authed.Dec()
	} else {
		l.anon.Dec()
	}
}
