package broker

// Scrape-time metrics: computed from the broker's state when Prometheus scrapes /metrics,
// never on a request path. Storage bytes come from the partitions' in-memory index (as
// DescribeLogDirs reports them), groups and committed offsets from the group coordinator's
// loop (group.Coordinator.Stats), transactions from the transaction coordinator.
//
// Retention and compaction progress, client quota throttling and the S3 flush lag are in
// metrics_ops.go, a collector of their own.

import (
	"strconv"
	"syscall"
	"time"

	"github.com/klite/klite/broker/group"
	"github.com/klite/klite/broker/metrics"
	"github.com/klite/klite/broker/txn"
	"github.com/prometheus/client_golang/prometheus"
)

// collector is the broker's prometheus.Collector for scrape-time state.
type collector struct {
	b *Broker

	storageBytes, partitions, logEnd       *prometheus.Desc
	diskFree, diskTotal                    *prometheus.Desc
	groups, groupMembers, lag, committed   *prometheus.Desc
	txns, reqMem, respMem, saslReauths, up *prometheus.Desc
}

func newCollector(b *Broker) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(metrics.Namespace+"_"+name, help, labels, nil)
	}
	return &collector{
		b:            b,
		storageBytes: d("topic_storage_bytes", "Bytes of stored record batches at or after the log start offset, by topic (DescribeLogDirs' sizes).", "topic"),
		partitions:   d("topic_partitions", "Partitions, by topic.", "topic"),
		logEnd:       d("topic_high_watermark_sum", "Sum of the high watermarks of a topic's partitions (its rate of change is the topic's offset rate).", "topic"),
		diskFree:     d("data_dir_free_bytes", "Bytes available to klite on the file system holding the data directory."),
		diskTotal:    d("data_dir_total_bytes", "Size of the file system holding the data directory."),
		groups:       d("groups", "Consumer groups, by type (classic or consumer) and state.", "type", "state"),
		groupMembers: d("group_members", "Members of a consumer group.", "group"),
		lag:          d("consumer_lag", "High watermark minus the group's committed offset, by group and partition (0 when caught up).", "group", "topic", "partition"),
		committed:    d("consumer_committed_offset", "The group's committed offset, by group and partition.", "group", "topic", "partition"),
		txns:         d("transactions", "Transactional IDs by transaction state; Ongoing, PrepareCommit and PrepareAbort are open transactions.", "state"),
		reqMem:       d("request_memory_bytes", "Bytes of request frames read and not yet answered, across connections."),
		respMem:      d("response_memory_bytes", "Bytes of encoded responses not yet written, across connections."),
		saslReauths:  d("sasl_reauthentications_total", "Completed SASL re-authentications (KIP-368)."),
		up:           d("up", "1 while the broker is open (with its cluster ID).", "cluster_id"),
	}
}

// registerMetrics registers the scrape-time collector and resolves the per-API children.
func (b *Broker) registerMetrics() {
	if b.metrics == nil {
		return
	}
	keys := make([]int16, 0, len(handlers))
	for k := range handlers {
		keys = append(keys, k)
	}
	b.metrics.InitAPIs(keys)
	b.scrape = newCollector(b)
	if err := b.metrics.Register(b.scrape); err != nil {
		b.log.Warn("metrics: registering the broker collector", "err", err)
		b.scrape = nil
	}
	b.scrapeOps = newOpsCollector(b)
	if err := b.metrics.Register(b.scrapeOps); err != nil {
		b.log.Warn("metrics: registering the operations collector", "err", err)
		b.scrapeOps = nil
	}
}

func (b *Broker) unregisterMetrics() {
	if b.scrape != nil {
		b.metrics.Unregister(b.scrape)
	}
	if b.scrapeOps != nil {
		b.metrics.Unregister(b.scrapeOps)
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.storageBytes, c.partitions, c.logEnd, c.diskFree, c.diskTotal, c.groups,
		c.groupMembers, c.lag, c.committed, c.txns, c.reqMem, c.respMem, c.saslReauths, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.up, 1, b.clusterID)

	// Topics: storage bytes and high watermarks, from the partitions' own accessors.
	b.mu.RLock()
	topics := make([]*topic, 0, len(b.topics))
	for _, t := range b.topics {
		topics = append(topics, t)
	}
	b.mu.RUnlock()
	hwms := make(map[string][]int64, len(topics))
	for _, t := range topics {
		var size, hwmSum int64
		parts := t.partitions()
		hw := make([]int64, len(parts))
		for i, p := range parts {
			logStart, hwm := p.offsets()
			size += p.bytesFrom(logStart, 1<<62)
			hwmSum += hwm
			hw[i] = hwm
		}
		hwms[t.name] = hw
		gauge(c.storageBytes, float64(size), t.name)
		gauge(c.partitions, float64(len(parts)), t.name)
		gauge(c.logEnd, float64(hwmSum), t.name)
	}

	var st syscall.Statfs_t
	if err := syscall.Statfs(b.dataDir, &st); err == nil {
		gauge(c.diskFree, float64(st.Bavail)*float64(st.Bsize))
		gauge(c.diskTotal, float64(st.Blocks)*float64(st.Bsize))
	}

	// Groups and lag: a snapshot from the coordinator's loop, bounded in time so a stuck
	// loop cannot hang the scrape.
	if b.groups != nil {
		got := make(chan []group.Stat, 1)
		b.groups.Stats(func(s []group.Stat) { got <- s })
		var stats []group.Stat
		select {
		case stats = <-got:
		case <-time.After(2 * time.Second):
			b.log.Warn("metrics: group coordinator did not answer in time; group metrics skipped")
		}
		type typeState struct{ typ, state string }
		counts := map[typeState]int{}
		for _, g := range stats {
			counts[typeState{g.Type, g.State}]++
			gauge(c.groupMembers, float64(g.Members), g.ID)
			for _, o := range g.Offsets {
				hw := hwms[o.Topic]
				if o.Offset < 0 || int(o.Partition) >= len(hw) || o.Partition < 0 {
					continue
				}
				part := strconv.Itoa(int(o.Partition))
				gauge(c.committed, float64(o.Offset), g.ID, o.Topic, part)
				gauge(c.lag, float64(max(0, hw[o.Partition]-o.Offset)), g.ID, o.Topic, part)
			}
		}
		for k, n := range counts {
			gauge(c.groups, float64(n), k.typ, k.state)
		}
	}

	if b.txns != nil {
		byState := map[txn.State]int{}
		for _, in := range b.txns.List() {
			byState[in.State]++
		}
		for _, s := range []txn.State{txn.Empty, txn.Ongoing, txn.PrepareCommit, txn.PrepareAbort, txn.CompleteCommit, txn.CompleteAbort} {
			gauge(c.txns, float64(byState[s]), s.String())
		}
	}

	b.srvMu.Lock()
	srv := b.srv
	b.srvMu.Unlock()
	if srv != nil {
		s := srv.Stats()
		gauge(c.reqMem, float64(s.RequestBytes))
		gauge(c.respMem, float64(s.ResponseBytes))
	}
	ch <- prometheus.MustNewConstMetric(c.saslReauths, prometheus.CounterValue, float64(b.saslReauths.Load()))
}
