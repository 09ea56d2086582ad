package broker

import (
	"strconv"
	"strings"

	"github.com/klite/klite/broker/logstore"
)

// logConfig is the topic's configuration as the partition segment store (broker/logstore)
// applies it: segment roll, retention, cleanup policy and the compaction settings, each
// the topic's value, else the dynamic broker default, else Kafka's default.
func (t *topic) logConfig() logstore.Config {
	cfg := logstore.Config{
		SegmentBytes:       t.int64Config("segment.bytes"),
		SegmentMs:          t.int64Config("segment.ms"),
		RetentionMs:        t.int64Config("retention.ms"),
		RetentionBytes:     t.int64Config("retention.bytes"),
		DeleteRetentionMs:  t.int64Config("delete.retention.ms"),
		MinCompactionLagMs: t.int64Config("min.compaction.lag.ms"),
		MaxCompactionLagMs: t.int64Config("max.compaction.lag.ms"),
		IndexIntervalBytes: int(t.int64Config("index.interval.bytes")),
	}
	ratio, _ := strconv.ParseFloat(topicConfigDefaults["min.cleanable.dirty.ratio"], 64)
	if v, ok := t.config("min.cleanable.dirty.ratio"); ok {
		if r, err := strconv.ParseFloat(v, 64); err == nil {
			ratio = r
		}
	}
	cfg.MinCleanableDirtyRatio = ratio
	policy, ok := t.config("cleanup.policy")
	if !ok {
		policy = topicConfigDefaults["cleanup.policy"]
	}
	for _, p := range strings.Split(policy, ",") {
		switch strings.TrimSpace(p) {
		case "delete":
			cfg.Delete = true
		case "compact":
			cfg.Compact = true
		}
	}
	return cfg
}
