package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestCheckTopicConfigs(t *testing.T) {
	for _, c := range []struct {
		cfg map[string]string
		ok  bool
		msg string
	}{
		{map[string]string{"retention.ms": "-1", "cleanup.policy": "compact,delete", "min.cleanable.dirty.ratio": "0.1"}, true, ""},
		{map[string]string{"retention.ms": "soon"}, false, "Invalid value soon for configuration retention.ms: Not a number of type LONG"},
		{map[string]string{"retention.ms": "-7"}, false, "Invalid value -7 for configuration retention.ms: Value must be at least -1"},
		{map[string]string{"max.message.bytes": "3000000000"}, false, "Invalid value 3000000000 for configuration max.message.bytes: Not a number of type INT"},
		{map[string]string{"preallocate": "yes"}, false, "Invalid value yes for configuration preallocate: Expected value to be either true or false"},
		{map[string]string{"cleanup.policy": "delete,bogus"}, false, "Invalid value bogus for configuration cleanup.policy: String must be one of: compact, delete"},
		{map[string]string{"min.cleanable.dirty.ratio": "2"}, false, "Invalid value 2.0 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"},
		{map[string]string{"no.such": "1"}, false, "Unknown topic config name: no.such"},
	} {
		msg, ok := checkTopicConfigs(c.cfg)
		if ok != c.ok || msg != c.msg {
			t.Errorf("%v: got %v %q, want %v %q", c.cfg, ok, msg, c.ok, c.msg)
		}
	}
}

func TestIncrementalChange(t *testing.T) {
	s := func(v string) *string { return &v }
	op := func(name string, o kmsg.IncrementalAlterConfigOp, v *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = name, o, v
		return c
	}
	typeOf := func(n string) int8 { return topicConfigType[n] }
	cur := map[string]string{"retention.ms": "5", "cleanup.policy": "compact"}
	next, e, _ := incrementalChange(kmsg.ConfigResourceTypeTopic, cur, []kmsg.IncrementalAlterConfigsRequestResourceConfig{
		op("retention.ms", kmsg.IncrementalAlterConfigOpDelete, nil),
		op("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, s("delete,compact")),
		op("follower.replication.throttled.replicas", kmsg.IncrementalAlterConfigOpAppend, s("0:1")),
		op("segment.ms", kmsg.IncrementalAlterConfigOpSet, s("1000")),
	}, typeOf)
	if e != nil || len(next) != 3 || next["cleanup.policy"] != "compact,delete" || next["segment.ms"] != "1000" ||
		next["follower.replication.throttled.replicas"] != "0:1" {
		t.Fatalf("got %v %v", next, e)
	}
	if cur["retention.ms"] != "5" || len(cur) != 2 {
		t.Fatalf("the current set was modified: %v", cur)
	}
	// APPEND to the default when unset; then errors: SUBTRACT from a non-list, a name twice,
	// a null SET.
	next, e, _ = incrementalChange(kmsg.ConfigResourceTypeTopic, nil, []kmsg.IncrementalAlterConfigsRequestResourceConfig{
		op("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, s("compact")),
	}, typeOf)
	if e != nil || next["cleanup.policy"] != "delete,compact" {
		t.Fatalf("append to the default: %v %v", next, e)
	}
	for _, c := range []struct {
		ops  []kmsg.IncrementalAlterConfigsRequestResourceConfig
		want *kerr.Error
	}{
		{[]kmsg.IncrementalAlterConfigsRequestResourceConfig{op("retention.ms", kmsg.IncrementalAlterConfigOpSubtract, s("1"))}, kerr.InvalidConfig},
		{[]kmsg.IncrementalAlterConfigsRequestResourceConfig{op("retention.ms", kmsg.IncrementalAlterConfigOpSet, s("1")), op("retention.ms", kmsg.IncrementalAlterConfigOpDelete, nil)}, kerr.InvalidRequest},
		{[]kmsg.IncrementalAlterConfigsRequestResourceConfig{op("retention.ms", kmsg.IncrementalAlterConfigOpSet, nil)}, kerr.InvalidRequest},
	} {
		if _, e, _ := incrementalChange(kmsg.ConfigResourceTypeTopic, cur, c.ops, typeOf); e != c.want {
			t.Errorf("%+v: got %v, want %v", c.ops, e, c.want)
		}
	}
}
