package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestConfigSynonymChains: DescribeConfigs' synonyms follow Kafka 4.0's chains. An unset
// log.retention.ms lists none (Kafka drops the synonyms before its own name); once set
// dynamically it is followed by log.retention.hours=168 (DEFAULT_CONFIG), on the broker and on
// a topic's retention.ms; a static setting lists Kafka's default before it.
func TestConfigSynonymChains(t *testing.T) {
	tb := startBroker(t, t.TempDir(), func(c *Config) { c.DefaultPartitions = 3 })
	adm := tb.admin(t)
	cl := tb.client(t)
	createTopic(t, adm, "syn", 1, nil)
	describe := func(typ kmsg.ConfigResourceType, name string, names ...string) []kmsg.DescribeConfigsResponseResourceConfig {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.IncludeSynonyms = true
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = typ, name, names
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctxT(t, 5*time.Second), cl)
		if err != nil || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("describe %s: %v %+v", name, err, resp)
		}
		return resp.Resources[0].Configs
	}
	type syn struct {
		name, value string
		src         kmsg.ConfigSource
	}
	chain := func(c kmsg.DescribeConfigsResponseResourceConfig) []syn {
		var out []syn
		for _, s := range c.ConfigSynonyms {
			out = append(out, syn{s.Name, *s.Value, s.Source})
		}
		return out
	}
	same := func(what string, got, want []syn) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: synonyms %+v, want %+v", what, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: synonyms %+v, want %+v", what, got, want)
			}
		}
	}

	cs := describe(kmsg.ConfigResourceTypeBroker, "0", "log.retention.ms", "log.retention.hours", "num.partitions")
	same("unset log.retention.ms", chain(cs[1]), nil)
	same("log.retention.hours", chain(cs[0]), []syn{{"log.retention.hours", "168", kmsg.ConfigSourceDefaultConfig}})
	same("static num.partitions", chain(cs[2]), []syn{{"num.partitions", "1", kmsg.ConfigSourceDefaultConfig}, {"num.partitions", "3", kmsg.ConfigSourceStaticBrokerConfig}})
	if *cs[2].Value != "3" || cs[2].Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("num.partitions %+v", cs[2])
	}

	s := "7200000"
	if r, err := adm.AlterBrokerConfigs(ctxT(t, 5*time.Second), []kadm.AlterConfig{{Name: "log.retention.ms", Value: &s}}); err != nil || r[0].Err != nil {
		t.Fatal(err, r[0].Err)
	}
	cs = describe(kmsg.ConfigResourceTypeBroker, "0", "log.retention.ms")
	same("dynamic default log.retention.ms", chain(cs[0]), []syn{
		{"log.retention.ms", s, kmsg.ConfigSourceDynamicDefaultBrokerConfig}, {"log.retention.hours", "168", kmsg.ConfigSourceDefaultConfig}})
	if *cs[0].Value != s || cs[0].Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("log.retention.ms %+v", cs[0])
	}
	cs = describe(kmsg.ConfigResourceTypeTopic, "syn", "retention.ms")
	same("topic retention.ms", chain(cs[0]), []syn{
		{"log.retention.ms", s, kmsg.ConfigSourceDynamicDefaultBrokerConfig}, {"log.retention.hours", "168", kmsg.ConfigSourceDefaultConfig}})
	if *cs[0].Value != s || cs[0].Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("topic retention.ms %+v", cs[0])
	}
	// Applied: the topic's effective retention is the dynamic default.
	if got := tb.topic("syn").int64Config("retention.ms"); got != 7200000 {
		t.Fatalf("effective retention.ms %d", got)
	}
}

// TestDynamicCleanerBackoff: log.cleaner.backoff.ms is a dynamic broker config as in Kafka and
// the jobs loop applies it: with a static backoff of an hour nothing would be compacted during
// the test; the cluster-wide dynamic 20 ms gets the cleaner running.
func TestDynamicCleanerBackoff(t *testing.T) {
	tb := startBroker(t, t.TempDir(), func(c *Config) { c.CompactionBackoff = time.Hour; c.WALTrimInterval = 20 * time.Millisecond })
	adm := tb.admin(t)
	s := func(v string) *string { return &v }
	createTopic(t, adm, "dcb", 1, map[string]*string{"cleanup.policy": s("compact"), "segment.bytes": s("2048"),
		"min.cleanable.dirty.ratio": s("0.01")})
	cl := tb.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	for i := 0; i < 100; i++ {
		r := &kgo.Record{Topic: "dcb", Key: []byte(fmt.Sprintf("k%d", i%5)), Value: []byte(fmt.Sprintf("v%03d", i))}
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := adm.AlterBrokerConfigs(ctxT(t, 5*time.Second), []kadm.AlterConfig{{Name: "log.cleaner.backoff.ms", Value: s("20")}}); err != nil || r[0].Err != nil {
		t.Fatal(err, r[0].Err)
	}
	p, _ := tb.partition("dcb", 0)
	waitFor(t, "the cleaner to compact after the dynamic backoff", func() bool {
		for _, sg := range p.log().Segments() {
			if sg.Cleaned {
				return true
			}
		}
		return false
	})
	rcs, err := adm.DescribeBrokerConfigs(ctxT(t, 5*time.Second), 0)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On("0", nil)
	for _, c := range rc.Configs {
		if c.Key == "log.cleaner.backoff.ms" && (c.MaybeValue() != "20" || c.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig) {
			t.Fatalf("log.cleaner.backoff.ms %+v", c)
		}
	}
}
