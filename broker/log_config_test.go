package broker

import (
	"testing"

	"github.com/klite/klite/broker/logstore"
)

func TestTopicLogConfig(t *testing.T) {
	// Kafka's defaults are logstore's defaults.
	plain := &topic{name: "plain"}
	plain.setConfigs(nil)
	if got, want := plain.logConfig(), logstore.DefaultConfig(); got != want {
		t.Fatalf("default topic: %+v, want %+v", got, want)
	}
	cmp := &topic{name: "cmp"}
	cmp.setConfigs(map[string]string{
		"cleanup.policy": "compact", "segment.bytes": "1048576", "segment.ms": "60000",
		"retention.ms": "-1", "retention.bytes": "5000000", "delete.retention.ms": "100",
		"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "20000",
		"min.cleanable.dirty.ratio": "0.01", "index.interval.bytes": "128",
	})
	want := logstore.Config{SegmentBytes: 1 << 20, SegmentMs: 60000, RetentionMs: -1, RetentionBytes: 5000000,
		Compact: true, DeleteRetentionMs: 100, MinCompactionLagMs: 10, MaxCompactionLagMs: 20000,
		MinCleanableDirtyRatio: 0.01, IndexIntervalBytes: 128}
	if got := cmp.logConfig(); got != want {
		t.Fatalf("compacted topic: %+v, want %+v", got, want)
	}
	both := &topic{name: "both"}
	both.setConfigs(map[string]string{"cleanup.policy": "delete, compact"})
	if c := both.logConfig(); !c.Delete || !c.Compact {
		t.Fatalf("compact,delete: %+v", c)
	}
}
