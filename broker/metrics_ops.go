package broker

// Scrape-time metrics of the operations side: client quota throttling (per quota type and
// quota group, as Kafka's Produce/Fetch/Request/ControllerMutation quota sensors tagged with
// user and client-id), the log jobs' progress (retention and compaction, counted by
// log_jobs.go in logJobStats), the compacted partitions' dirty ratios, and the S3 flush lag
// when the broker provides it. All of it is read when Prometheus scrapes, never counted on a
// request path beyond the quota manager's own bookkeeping.

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/klite/klite/broker/metrics"
	"github.com/klite/klite/broker/quota"
	"github.com/prometheus/client_golang/prometheus"
)

// logJobStats counts the log jobs' work since the broker opened.
type logJobStats struct {
	retentionRuns, retentionSegments, retentionBytes, retentionErrors     atomic.Int64
	retentionLastMs                                                       atomic.Int64
	compactionRuns, compactionCleanings, compactionSegments               atomic.Int64
	compactionBytesRead, compactionBytesWritten, compactionRecordsRemoved atomic.Int64
	compactionErrors, compactionLastMs                                    atomic.Int64
}

// quotaTypes are the metric label of each quota key: Kafka's quota types.
var quotaTypes = map[string]string{
	quota.ProducerByteRate:       "produce",
	quota.ConsumerByteRate:       "fetch",
	quota.RequestPercentage:      "request",
	quota.ControllerMutationRate: "controller_mutation",
}

type opsCollector struct {
	b *Broker

	qThrottle, qThrottled, qBytes, qReqTime, qMutations, qRate, qLimit, qTokens *prometheus.Desc

	retRuns, retSegs, retBytes, retErrs, retLast                     *prometheus.Desc
	compRuns, compCleanings, compSegs, compRead, compWritten, compRm *prometheus.Desc
	compErrs, compLast, dirty                                        *prometheus.Desc

	s3LagBytes, s3LagSeconds *prometheus.Desc
}

func newOpsCollector(b *Broker) *opsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(metrics.Namespace+"_"+name, help, labels, nil)
	}
	q := []string{"quota", "user", "client_id"}
	return &opsCollector{
		b:          b,
		qThrottle:  d("quota_throttle_time_seconds_total", "Throttle time given in answers, by the quota that decided it (produce, fetch, request, controller_mutation) and its quota group (user, client_id; empty where the quota is not per that entity).", q...),
		qThrottled: d("quota_throttled_total", "Answers throttled, by the quota that decided it and its quota group.", q...),
		qBytes:     d("quota_bytes_total", "Bytes counted against byte-rate quotas (produce: request sizes; fetch: record bytes answered), by quota group.", q...),
		qReqTime:   d("quota_request_time_seconds_total", "Handler time counted against request_percentage quotas, by quota group.", q...),
		qMutations: d("quota_partition_mutations_total", "Partitions created or deleted counted against controller_mutation_rate quotas, by quota group.", q...),
		qRate:      d("quota_rate", "The rate a quota group is measured at now, as it is compared with its quota (bytes/s; request: percent of one thread).", q...),
		qLimit:     d("quota_limit", "The quota a group is held to (bytes/s, percent, partitions/s).", q...),
		qTokens:    d("quota_mutation_tokens", "Tokens in a controller_mutation_rate group's bucket (negative: in debt, answers are throttled).", q...),

		retRuns:       d("retention_runs_total", "Retention passes over every partition log."),
		retSegs:       d("retention_segments_deleted_total", "Partition segments deleted by retention (retention.ms, retention.bytes, DeleteRecords)."),
		retBytes:      d("retention_bytes_deleted_total", "Segment bytes deleted by retention."),
		retErrs:       d("retention_errors_total", "Partition logs whose retention failed (retried at the next pass)."),
		retLast:       d("retention_last_run_timestamp_seconds", "When the last retention pass ended (Unix time; 0: none yet)."),
		compRuns:      d("compaction_runs_total", "Compaction passes over the compacted partitions."),
		compCleanings: d("compaction_cleanings_total", "Partition logs cleaned (a pass cleans only those due)."),
		compSegs:      d("compaction_segments_cleaned_total", "Segments written by cleanings."),
		compRead:      d("compaction_bytes_read_total", "Segment bytes read by cleanings to build their key maps."),
		compWritten:   d("compaction_bytes_written_total", "Segment bytes written by cleanings."),
		compRm:        d("compaction_records_removed_total", "Records removed by cleanings (superseded keys, expired tombstones, aborted data)."),
		compErrs:      d("compaction_errors_total", "Cleanings that failed (retried at the next pass)."),
		compLast:      d("compaction_last_run_timestamp_seconds", "When the last compaction pass ended (Unix time; 0: none yet)."),
		dirty:         d("compaction_dirty_ratio", "Share of a compacted partition's cleanable bytes not yet cleaned (compared with min.cleanable.dirty.ratio).", "topic", "partition"),

		s3LagBytes:   d("s3_flush_lag_bytes", "Bytes written locally and not yet uploaded to S3."),
		s3LagSeconds: d("s3_flush_lag_seconds", "Age of the oldest data not yet uploaded to S3."),
	}
}

// Describe implements prometheus.Collector.
func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.qThrottle, c.qThrottled, c.qBytes, c.qReqTime, c.qMutations, c.qRate, c.qLimit, c.qTokens,
		c.retRuns, c.retSegs, c.retBytes, c.retErrs, c.retLast, c.compRuns, c.compCleanings, c.compSegs, c.compRead,
		c.compWritten, c.compRm, c.compErrs, c.compLast, c.dirty, c.s3LagBytes, c.s3LagSeconds} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	for _, s := range b.quotaMgr.Stats(b.now().UnixMilli()) {
		typ := quotaTypes[s.Key]
		if typ == "" {
			continue
		}
		l := []string{typ, s.User, s.ClientID}
		counter(c.qThrottle, float64(s.ThrottleMs)/1000, l...)
		counter(c.qThrottled, float64(s.Throttled), l...)
		switch s.Key {
		case quota.ProducerByteRate, quota.ConsumerByteRate:
			counter(c.qBytes, s.Usage, l...)
		case quota.RequestPercentage:
			counter(c.qReqTime, s.Usage/100, l...)
		case quota.ControllerMutationRate:
			counter(c.qMutations, s.Usage, l...)
		}
		if s.HasRate {
			gauge(c.qRate, s.Rate, l...)
		}
		if s.HasTokens {
			gauge(c.qTokens, s.Tokens, l...)
		}
		gauge(c.qLimit, s.Limit, l...)
	}

	j := &b.jobStats
	counter(c.retRuns, float64(j.retentionRuns.Load()))
	counter(c.retSegs, float64(j.retentionSegments.Load()))
	counter(c.retBytes, float64(j.retentionBytes.Load()))
	counter(c.retErrs, float64(j.retentionErrors.Load()))
	gauge(c.retLast, float64(j.retentionLastMs.Load())/1000)
	counter(c.compRuns, float64(j.compactionRuns.Load()))
	counter(c.compCleanings, float64(j.compactionCleanings.Load()))
	counter(c.compSegs, float64(j.compactionSegments.Load()))
	counter(c.compRead, float64(j.compactionBytesRead.Load()))
	counter(c.compWritten, float64(j.compactionBytesWritten.Load()))
	counter(c.compRm, float64(j.compactionRecordsRemoved.Load()))
	counter(c.compErrs, float64(j.compactionErrors.Load()))
	gauge(c.compLast, float64(j.compactionLastMs.Load())/1000)
	for _, t := range b.allTopics() {
		if !t.logConfig().Compact {
			continue
		}
		for _, p := range t.partitions() {
			if lg := p.log(); lg != nil {
				if r, ok := lg.DirtyRatio(); ok {
					gauge(c.dirty, r, t.name, strconv.Itoa(int(p.idx)))
				}
			}
		}
	}

	if f := b.s3FlushLag; f != nil {
		bytes, age := f()
		gauge(c.s3LagBytes, float64(bytes))
		gauge(c.s3LagSeconds, age.Seconds())
	}
}

// s3FlushLagFunc is the S3 tier's flush lag as the metrics read it: bytes not yet uploaded
// and the age of the oldest of them.
type s3FlushLagFunc func() (int64, time.Duration)
