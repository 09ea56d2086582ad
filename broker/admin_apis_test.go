package broker

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describeTopic returns one topic's configs by name, failing on errors.
func describeTopic(t *testing.T, adm *kadm.Client, topic string) map[string]kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctxT(t, 5*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, rc.Err)
	}
	out := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		out[c.Key] = c
	}
	return out
}

func wantConfig(t *testing.T, cs map[string]kadm.Config, name, value string, src kmsg.ConfigSource) {
	t.Helper()
	c, ok := cs[name]
	if !ok {
		t.Fatalf("config %s missing", name)
	}
	if c.MaybeValue() != value || c.Source != src {
		t.Fatalf("config %s = %q (%v), want %q (%v)", name, c.MaybeValue(), c.Source, value, src)
	}
}

func alterTopic(t *testing.T, adm *kadm.Client, topic string, ops ...kadm.AlterConfig) error {
	t.Helper()
	resps, err := adm.AlterTopicConfigs(ctxT(t, 5*time.Second), ops, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(resps) != 1 {
		t.Fatalf("%d alter responses", len(resps))
	}
	return resps[0].Err
}

func TestDescribeTopicConfigs(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	compact := "compact"
	createTopic(t, adm, "dc", 1, map[string]*string{"cleanup.policy": &compact})
	cs := describeTopic(t, adm, "dc")
	if len(cs) != len(topicConfigDefaults) || len(cs) != 33 {
		t.Fatalf("%d configs, want Kafka 4.0's 33", len(cs))
	}
	wantConfig(t, cs, "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cs, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cs, "max.message.bytes", "1048588", kmsg.ConfigSourceDefaultConfig)
	// Synonyms (kadm asks for them): the topic value first, then the broker default.
	syn := cs["cleanup.policy"].Synonyms
	if len(syn) != 2 || syn[0].Key != "cleanup.policy" || syn[0].Source != kmsg.ConfigSourceDynamicTopicConfig ||
		syn[1].Key != "log.cleanup.policy" || *syn[1].Value != "delete" || syn[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("cleanup.policy synonyms %+v", syn)
	}
	if syn := cs["max.message.bytes"].Synonyms; len(syn) != 1 || syn[0].Key != "message.max.bytes" {
		t.Fatalf("max.message.bytes synonyms %+v", syn)
	}
	if syn := cs["retention.ms"].Synonyms; len(syn) != 0 {
		t.Fatalf("retention.ms synonyms %+v, Kafka lists none", syn)
	}

	// Raw: config types, name filter, unknown topic, bad broker ID.
	cl := tb.client(t)
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, r := range []struct {
		typ   kmsg.ConfigResourceType
		name  string
		names []string
	}{
		{kmsg.ConfigResourceTypeTopic, "dc", []string{"retention.ms", "cleanup.policy", "no.such.config"}},
		{kmsg.ConfigResourceTypeTopic, "missing", nil},
		{kmsg.ConfigResourceTypeBroker, "7", nil},
		{kmsg.ConfigResourceTypeBroker, "0", []string{"broker.id", "log.retention.ms", "message.max.bytes"}},
	} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = r.typ, r.name, r.names
		req.Resources = append(req.Resources, rr)
	}
	kresp, err := cl.Broker(0).Request(ctxT(t, 5*time.Second), req)
	if err != nil {
		t.Fatal(err)
	}
	rs := kresp.(*kmsg.DescribeConfigsResponse).Resources
	if len(rs) != 4 {
		t.Fatalf("%d resources", len(rs))
	}
	if len(rs[0].Configs) != 2 || rs[0].Configs[0].Name != "cleanup.policy" || rs[0].Configs[0].ConfigType != kmsg.ConfigTypeList ||
		rs[0].Configs[1].Name != "retention.ms" || rs[0].Configs[1].ConfigType != kmsg.ConfigTypeLong || rs[0].Configs[1].Documentation != nil {
		t.Fatalf("filtered topic configs %+v", rs[0].Configs)
	}
	if rs[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: code %d", rs[1].ErrorCode)
	}
	if rs[2].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("broker 7: code %d", rs[2].ErrorCode)
	}
	bc := rs[3].Configs
	if rs[3].ErrorCode != 0 || len(bc) != 3 {
		t.Fatalf("broker configs: code %d, %+v", rs[3].ErrorCode, bc)
	}
	if bc[0].Name != "broker.id" || *bc[0].Value != "0" || bc[0].Source != kmsg.ConfigSourceStaticBrokerConfig || !bc[0].ReadOnly {
		t.Fatalf("broker.id %+v", bc[0])
	}
	if bc[1].Name != "log.retention.ms" || bc[1].Value != nil || bc[1].ReadOnly {
		t.Fatalf("log.retention.ms %+v", bc[1])
	}
}

func TestAlterTopicConfigsIncremental(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	adm := tb.admin(t)
	createTopic(t, adm, "ac", 1, nil)
	s := func(v string) *string { return &v }

	if err := alterTopic(t, adm, "ac",
		kadm.AlterConfig{Name: "retention.ms", Value: s("3600000")},
		kadm.AlterConfig{Name: "cleanup.policy", Op: kadm.AppendConfig, Value: s("compact")},
		kadm.AlterConfig{Name: "max.message.bytes", Value: s("2000")},
		kadm.AlterConfig{Name: "message.timestamp.type", Value: s("LogAppendTime")},
	); err != nil {
		t.Fatal(err)
	}
	cs := describeTopic(t, adm, "ac")
	wantConfig(t, cs, "retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cs, "cleanup.policy", "delete,compact", kmsg.ConfigSourceDynamicTopicConfig)

	// Effective at once: a 3000-byte record is too large, and timestamps are the broker's.
	cl := tb.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()))
	big := &kgo.Record{Topic: "ac", Key: []byte("k"), Value: bytes.Repeat([]byte("x"), 3000)} // keyed: the topic is compacted
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), big).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("3000-byte record with max.message.bytes=2000: %v", err)
	}
	old := time.UnixMilli(1_600_000_000_000)
	before := time.Now().Add(-time.Second)
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "ac", Key: []byte("k"), Value: []byte("v"), Timestamp: old}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeN(t, tb, "ac", 1)
	if got[0].Timestamp.Before(before) {
		t.Fatalf("record timestamp %v: LogAppendTime not applied", got[0].Timestamp)
	}

	// Errors: invalid value, unknown name, APPEND to a non-list, unknown topic.
	for _, c := range []struct {
		op   kadm.AlterConfig
		want error
	}{
		{kadm.AlterConfig{Name: "retention.ms", Value: s("soon")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Name: "retention.ms", Value: s("-7")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Name: "no.such.config", Value: s("1")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Name: "retention.ms", Op: kadm.AppendConfig, Value: s("1")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Name: "message.timestamp.type", Value: s("logappendtime")}, kerr.InvalidConfig},
	} {
		if err := alterTopic(t, adm, "ac", c.op); !errors.Is(err, c.want) {
			t.Fatalf("%+v: got %v, want %v", c.op, err, c.want)
		}
	}
	if err := alterTopic(t, adm, "missing", kadm.AlterConfig{Name: "retention.ms", Value: s("1")}); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v", err)
	}

	// Validate-only changes nothing; DELETE and SUBTRACT.
	vr, err := adm.ValidateAlterTopicConfigs(ctxT(t, 5*time.Second), []kadm.AlterConfig{{Name: "retention.ms", Value: s("1")}}, "ac")
	if err != nil || vr[0].Err != nil {
		t.Fatal(err, vr[0].Err)
	}
	if err := alterTopic(t, adm, "ac",
		kadm.AlterConfig{Name: "max.message.bytes", Op: kadm.DeleteConfig},
		kadm.AlterConfig{Name: "cleanup.policy", Op: kadm.SubtractConfig, Value: s("delete")},
	); err != nil {
		t.Fatal(err)
	}
	cs = describeTopic(t, adm, "ac")
	wantConfig(t, cs, "retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cs, "max.message.bytes", "1048588", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cs, "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), big).FirstErr(); err != nil {
		t.Fatalf("3000-byte record after deleting max.message.bytes: %v", err)
	}

	// Legacy AlterConfigs replaces the whole set.
	lr, err := adm.AlterTopicConfigsState(ctxT(t, 5*time.Second), []kadm.AlterConfig{{Name: "segment.ms", Value: s("60000")}}, "ac")
	if err != nil || lr[0].Err != nil {
		t.Fatal(err, lr[0].Err)
	}
	cs = describeTopic(t, adm, "ac")
	wantConfig(t, cs, "segment.ms", "60000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cs, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	wantConfig(t, cs, "message.timestamp.type", "CreateTime", kmsg.ConfigSourceDefaultConfig)

	// Restart: the configs come back from the metadata log.
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	tb = startBroker(t, dir)
	cs = describeTopic(t, tb.admin(t), "ac")
	wantConfig(t, cs, "segment.ms", "60000", kmsg.ConfigSourceDynamicTopicConfig)
	wantConfig(t, cs, "cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig)
}

func TestAlterBrokerConfigs(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	adm := tb.admin(t)
	s := func(v string) *string { return &v }
	resps, err := adm.AlterBrokerConfigs(ctxT(t, 5*time.Second), []kadm.AlterConfig{{Name: "log.retention.ms", Value: s("100000000")}}, 0)
	if err != nil || resps[0].Err != nil {
		t.Fatal(err, resps[0].Err)
	}
	resps, err = adm.AlterBrokerConfigs(ctxT(t, 5*time.Second), []kadm.AlterConfig{{Name: "broker.id", Value: s("3")}}, 0)
	if err != nil || !errors.Is(resps[0].Err, kerr.InvalidRequest) {
		t.Fatalf("changing broker.id: %v %v", err, resps[0].Err)
	}
	check := func(adm *kadm.Client) {
		t.Helper()
		rcs, err := adm.DescribeBrokerConfigs(ctxT(t, 5*time.Second), 0)
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := rcs.On("0", nil)
		for _, c := range rc.Configs {
			if c.Key == "log.retention.ms" {
				if c.MaybeValue() != "100000000" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig {
					t.Fatalf("log.retention.ms %+v", c)
				}
				return
			}
		}
		t.Fatal("log.retention.ms not described")
	}
	check(adm)

	// Topic defaults: the cluster-wide value applies to topics without their own, this
	// broker's value wins over it, and message.max.bytes is enforced at once.
	createTopic(t, adm, "bd", 1, nil)
	def, err := adm.AlterBrokerConfigs(ctxT(t, 5*time.Second), []kadm.AlterConfig{{Name: "message.max.bytes", Value: s("5000")}})
	if err != nil || def[0].Err != nil {
		t.Fatal(err, def[0].Err)
	}
	resps, err = adm.AlterBrokerConfigs(ctxT(t, 5*time.Second), []kadm.AlterConfig{{Name: "message.max.bytes", Value: s("2000")}}, 0)
	if err != nil || resps[0].Err != nil {
		t.Fatal(err, resps[0].Err)
	}
	for _, bad := range []kadm.AlterConfig{{Name: "message.max.bytes", Value: s("-5")}, {Name: "log.message.timestamp.type", Value: s("bogus")}} {
		resps, err = adm.AlterBrokerConfigs(ctxT(t, 5*time.Second), []kadm.AlterConfig{bad}, 0)
		if err != nil || !errors.Is(resps[0].Err, kerr.InvalidRequest) {
			t.Fatalf("%s=%s: %v %v", bad.Name, *bad.Value, err, resps[0].Err)
		}
	}
	checkTopic := func(tb *testBroker) {
		t.Helper()
		cs := describeTopic(t, tb.admin(t), "bd")
		wantConfig(t, cs, "max.message.bytes", "2000", kmsg.ConfigSourceDynamicBrokerConfig)
		wantConfig(t, cs, "retention.ms", "100000000", kmsg.ConfigSourceDynamicBrokerConfig)
		wantConfig(t, cs, "segment.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
		syn := cs["max.message.bytes"].Synonyms
		if len(syn) != 3 || *syn[0].Value != "2000" || *syn[1].Value != "5000" || syn[1].Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig ||
			syn[2].Key != "message.max.bytes" || syn[2].Source != kmsg.ConfigSourceDefaultConfig {
			t.Fatalf("max.message.bytes synonyms %+v", syn)
		}
		cl := tb.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()))
		big := &kgo.Record{Topic: "bd", Value: bytes.Repeat([]byte("x"), 3000)}
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), big).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatalf("3000-byte record with broker message.max.bytes=2000: %v", err)
		}
	}
	checkTopic(tb)
	// CreateTopics answers the new topic's configs as DescribeConfigs does.
	ct, err := adm.CreateTopic(ctxT(t, 5*time.Second), 1, 1, map[string]*string{"retention.ms": s("1000")}, "bd2")
	if err != nil || ct.Err != nil {
		t.Fatal(err, ct.Err)
	}
	if c := ct.Configs["max.message.bytes"]; c.MaybeValue() != "2000" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig || len(ct.Configs) != 33 {
		t.Fatalf("create topic configs: max.message.bytes %+v, %d configs", c, len(ct.Configs))
	}
	if c := ct.Configs["retention.ms"]; c.MaybeValue() != "1000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("create topic configs: retention.ms %+v", c)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	tb = startBroker(t, dir)
	check(tb.admin(t))
	checkTopic(tb)
}

func TestCreatePartitions(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	adm := tb.admin(t)
	createTopic(t, adm, "cp", 1, nil)
	ctx := ctxT(t, 10*time.Second)

	if r, err := adm.ValidateUpdatePartitions(ctx, 5, "cp"); err != nil || r["cp"].Err != nil {
		t.Fatal(err, r["cp"].Err)
	}
	if r, err := adm.UpdatePartitions(ctx, 3, "cp"); err != nil || r["cp"].Err != nil {
		t.Fatal(err, r["cp"].Err)
	}
	for _, n := range []int{3, 2} {
		r, err := adm.UpdatePartitions(ctx, n, "cp")
		if err != nil || !errors.Is(r["cp"].Err, kerr.InvalidPartitions) {
			t.Fatalf("update to %d: %v %v", n, err, r["cp"].Err)
		}
	}
	if r, err := adm.UpdatePartitions(ctx, 2, "missing"); err != nil || !errors.Is(r["missing"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("unknown topic: %v %v", err, r["missing"].Err)
	}
	td, err := adm.ListTopics(ctx, "cp")
	if err != nil || len(td["cp"].Partitions) != 3 {
		t.Fatalf("after growing: %v %d partitions", err, len(td["cp"].Partitions))
	}
	cl := tb.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "cp", Partition: 2, Value: []byte("p2")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	tb = startBroker(t, dir)
	td, err = tb.admin(t).ListTopics(ctxT(t, 5*time.Second), "cp")
	if err != nil || len(td["cp"].Partitions) != 3 {
		t.Fatalf("after restart: %v %d partitions", err, len(td["cp"].Partitions))
	}
	if _, hwm := tb.partitionOffsets(t, "cp", 2); hwm != 1 {
		t.Fatalf("partition 2 high watermark %d after restart", hwm)
	}
}

func deleteRecords(t *testing.T, adm *kadm.Client, topic string, offset int64) kadm.DeleteRecordsResponse {
	t.Helper()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: offset})
	r, err := adm.DeleteRecords(ctxT(t, 5*time.Second), os)
	if err != nil {
		t.Fatal(err)
	}
	dr, ok := r.Lookup(topic, 0)
	if !ok {
		t.Fatal("no delete records response")
	}
	return dr
}

func startOffset(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	so, err := adm.ListStartOffsets(ctxT(t, 5*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := so.Lookup(topic, 0)
	if o.Err != nil {
		t.Fatal(o.Err)
	}
	return o.Offset
}

func TestDeleteRecords(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	adm := tb.admin(t)
	createTopic(t, adm, "dr", 1, nil)
	cl := tb.client(t)
	for i := 0; i < 2; i++ { // two produce calls: at least two batches
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), testRecords("dr", 5)...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	sizeBefore := logDirSize(t, adm, "dr")

	if dr := deleteRecords(t, adm, "dr", 4); dr.Err != nil || dr.LowWatermark != 4 {
		t.Fatalf("delete to 4: %+v", dr)
	}
	if dr := deleteRecords(t, adm, "dr", 2); dr.Err != nil || dr.LowWatermark != 4 {
		t.Fatalf("delete to 2 after 4: %+v", dr)
	}
	if dr := deleteRecords(t, adm, "dr", 11); !errors.Is(dr.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete beyond the high watermark: %+v", dr)
	}
	if so := startOffset(t, adm, "dr"); so != 4 {
		t.Fatalf("start offset %d", so)
	}
	got := consumeN(t, tb, "dr", 6)
	if got[0].Offset != 4 || got[5].Offset != 9 {
		t.Fatalf("consumed offsets %d..%d, want 4..9", got[0].Offset, got[5].Offset)
	}
	// Fetching below the log start is OFFSET_OUT_OF_RANGE, with unknown offsets (-1) as Kafka
	// answers a failed read; at the log start it works.
	fr, err := tb.fetchReq("dr", 2, 0, 1, 1<<20, 1<<20).RequestWith(ctxT(t, 5*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	if p := fr.Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code || p.LogStartOffset != -1 || p.HighWatermark != -1 {
		t.Fatalf("fetch at 2: code %d log start %d hwm %d", p.ErrorCode, p.LogStartOffset, p.HighWatermark)
	}
	fr, err = tb.fetchReq("dr", 4, 0, 1, 1<<20, 1<<20).RequestWith(ctxT(t, 5*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	if p := fr.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LogStartOffset != 4 {
		t.Fatalf("fetch at 4: code %d log start %d", p.ErrorCode, p.LogStartOffset)
	}

	// Restart keeps the log start, also after the metadata log is compacted to a snapshot.
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	tb = startBroker(t, dir)
	adm = tb.admin(t)
	if so := startOffset(t, adm, "dr"); so != 4 {
		t.Fatalf("start offset %d after restart", so)
	}
	if dr := deleteRecords(t, adm, "dr", -1); dr.Err != nil || dr.LowWatermark != 10 {
		t.Fatalf("delete to -1: %+v", dr)
	}
	if sz := logDirSize(t, adm, "dr"); sz != 0 || sizeBefore == 0 {
		t.Fatalf("log dir size %d after deleting everything (before: %d)", sz, sizeBefore)
	}
	tb.mu.Lock()
	err = tb.meta.Compact(tb.metaSnapshotLocked())
	tb.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	tb.abandon()
	tb = startBroker(t, dir)
	adm = tb.admin(t)
	if so := startOffset(t, adm, "dr"); so != 10 {
		t.Fatalf("start offset %d after compaction and crash", so)
	}
	ends, err := adm.ListEndOffsets(ctxT(t, 5*time.Second), "dr")
	if o, _ := ends.Lookup("dr", 0); err != nil || o.Offset != 10 {
		t.Fatalf("end offset %d (%v)", o.Offset, err)
	}
	// Producing continues after the log start.
	if err := tb.client(t).ProduceSync(ctxT(t, 10*time.Second), testRecords("dr", 1)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := consumeN(t, tb, "dr", 1); got[0].Offset != 10 {
		t.Fatalf("first offset after deleting everything: %d", got[0].Offset)
	}
}

// TestDeleteRecordsLogStartAboveReplayedData: when every batch of a partition lay below its log start
// and the WAL lost them (segments removed), the partition resumes at the log start.
func TestDeleteRecordsLogStartAboveReplayedData(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	adm := tb.admin(t)
	createTopic(t, adm, "dg", 1, nil)
	if err := tb.client(t).ProduceSync(ctxT(t, 10*time.Second), testRecords("dg", 3)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if dr := deleteRecords(t, adm, "dg", -1); dr.Err != nil || dr.LowWatermark != 3 {
		t.Fatalf("delete: %+v", dr)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	// Remove the WAL segments (as retention would once they lie below every log start):
	// only the metadata log remains.
	if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}
	tb = startBroker(t, dir)
	ls, hwm := tb.partitionOffsets(t, "dg", 0)
	if ls != 3 || hwm != 3 {
		t.Fatalf("log start %d, high watermark %d", ls, hwm)
	}
	if err := tb.client(t).ProduceSync(ctxT(t, 10*time.Second), testRecords("dg", 1)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := consumeN(t, tb, "dg", 1); got[0].Offset != 3 {
		t.Fatalf("first offset after the WAL was emptied: %d", got[0].Offset)
	}
}

func logDirSize(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	ds, err := adm.DescribeAllLogDirs(ctxT(t, 5*time.Second), kadm.TopicsSet{topic: {0: struct{}{}}})
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	var dirs int
	ds.Each(func(d kadm.DescribedLogDir) {
		dirs++
		if d.Err != nil || !filepath.IsAbs(d.Dir) || d.TotalBytes <= 0 {
			t.Fatalf("log dir %+v", d)
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) { size += p.Size })
	})
	if dirs != 1 {
		t.Fatalf("%d log dirs", dirs)
	}
	return size
}

func TestDescribeClusterAndLogDirs(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	createTopic(t, adm, "ld", 2, nil)
	cl := tb.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), testRecords("ld", 4)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ds, err := adm.DescribeAllLogDirs(ctxT(t, 5*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[int32]int64{}
	ds.Each(func(d kadm.DescribedLogDir) {
		if abs, _ := filepath.Abs(tb.dir); d.Dir != abs {
			t.Fatalf("log dir %q, want %q", d.Dir, abs)
		}
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == "ld" {
				sizes[p.Partition] = p.Size
			}
		})
	})
	if len(sizes) != 2 || sizes[0] <= 0 || sizes[1] != 0 {
		t.Fatalf("partition sizes %v: want partition 0 > 0, partition 1 empty", sizes)
	}

	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeClusterAuthorizedOperations = true
	resp, err := req.RequestWith(ctxT(t, 5*time.Second), tb.client(t))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 || resp.ClusterID != tb.ClusterID() || resp.ControllerID != 0 || len(resp.Brokers) != 1 ||
		resp.Brokers[0].Host+":"+itoa32(resp.Brokers[0].Port) != tb.addr || resp.ClusterAuthorizedOperations != 8096 {
		t.Fatalf("describe cluster %+v", resp)
	}
	req.EndpointType = 2
	if resp, err = req.RequestWith(ctxT(t, 5*time.Second), tb.client(t)); err != nil || resp.ErrorCode != kerr.MismatchedEndpointType.Code {
		t.Fatalf("controller endpoint: %v %+v", err, resp)
	}
}

func itoa32(n int32) string { return joinHostPort("", n)[1:] }

func TestOffsetForLeaderEpoch(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	createTopic(t, adm, "le", 1, nil)
	if err := tb.client(t).ProduceSync(ctxT(t, 10*time.Second), testRecords("le", 7)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var r kadm.OffsetForLeaderEpochRequest
	r.Add("le", 0, 0)
	res, err := adm.OffsetForLeaderEpoch(ctxT(t, 5*time.Second), r)
	if err != nil {
		t.Fatal(err)
	}
	if o := res["le"][0]; o.Err != nil || o.LeaderEpoch != 0 || o.EndOffset != 7 {
		t.Fatalf("epoch 0: %+v", o)
	}

	// Raw: a later epoch is unknown (-1/-1), and the current-epoch fence.
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "le"
	for _, c := range [][2]int32{{-1, 5}, {-1, -1}, {1, 0}, {-2, 0}, {0, 0}} {
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LeaderEpoch = c[0], c[1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	rt = kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "missing"
	rt.Partitions = append(rt.Partitions, kmsg.NewOffsetForLeaderEpochRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp, err := tb.client(t).Broker(0).Request(ctxT(t, 5*time.Second), req)
	if err != nil {
		t.Fatal(err)
	}
	oresp := resp.(*kmsg.OffsetForLeaderEpochResponse)
	if p := oresp.Topics[1].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code || p.EndOffset != -1 {
		t.Fatalf("unknown topic: %+v", p)
	}
	ps := oresp.Topics[0].Partitions
	want := []struct {
		code  int16
		epoch int32
		end   int64
	}{
		{0, -1, -1}, {0, -1, -1}, {kerr.UnknownLeaderEpoch.Code, -1, -1}, {kerr.FencedLeaderEpoch.Code, -1, -1}, {0, 0, 7},
	}
	for i, w := range want {
		if p := ps[i]; p.ErrorCode != w.code || p.LeaderEpoch != w.epoch || p.EndOffset != w.end {
			t.Fatalf("case %d: %+v, want %+v", i, p, w)
		}
	}
}

func walSegments(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, "wal"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if filepath.Ext(e.Name()) == ".wal" {
			n++
		}
	}
	return n
}

// TestDeleteRecordsRemovesDeadSegments: WAL segments are removed once the partition logs
// hold their batches (the tails in them sealed), whatever the log starts; the data after the
// log start stays readable from the partition segments, also the batch of the other topic
// that was in the first WAL segment, and a restart still finds the log start and the end
// offsets.
func TestDeleteRecordsRemovesDeadSegments(t *testing.T) {
	dir := t.TempDir()
	small := func(c *Config) { c.WALSegmentBytes = 4096 }
	tb := startBroker(t, dir, small)
	adm := tb.admin(t)
	createTopic(t, adm, "keep", 1, nil)
	createTopic(t, adm, "drop", 1, nil)
	cl := tb.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	produce := func(topic string, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			r := &kgo.Record{Topic: topic, Value: bytes.Repeat([]byte{'v'}, 1000)}
			if err := cl.ProduceSync(ctxT(t, 10*time.Second), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce("keep", 1) // one live batch in the first segment
	produce("drop", 30)
	segs := walSegments(t, dir)
	if segs < 5 {
		t.Fatalf("only %d WAL segments; the test needs several", segs)
	}
	if dr := deleteRecords(t, adm, "drop", 25); dr.Err != nil || dr.LowWatermark != 25 {
		t.Fatalf("delete: %+v", dr)
	}
	if n := walSegments(t, dir); n >= segs-2 {
		t.Fatalf("%d WAL segments after the delete trimmed the WAL (from %d)", n, segs)
	}
	if got := consumeN(t, tb, "keep", 1); got[0].Offset != 0 || len(got[0].Value) != 1000 {
		t.Fatalf("keep after the WAL trim: offset %d, %d bytes", got[0].Offset, len(got[0].Value))
	}
	if dr := deleteRecords(t, adm, "keep", -1); dr.Err != nil || dr.LowWatermark != 1 {
		t.Fatalf("delete keep: %+v", dr)
	}
	got := consumeN(t, tb, "drop", 5)
	if got[0].Offset != 25 || got[4].Offset != 29 {
		t.Fatalf("consumed %d..%d after removal, want 25..29", got[0].Offset, got[4].Offset)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	tb = startBroker(t, dir, small)
	for topic, want := range map[string][2]int64{"keep": {1, 1}, "drop": {25, 30}} {
		ls, hwm := tb.partitionOffsets(t, topic, 0)
		if ls != want[0] || hwm != want[1] {
			t.Fatalf("%s after restart: log start %d, high watermark %d, want %v", topic, ls, hwm, want)
		}
	}
	if got := consumeN(t, tb, "drop", 5); got[0].Offset != 25 {
		t.Fatalf("first offset after restart %d", got[0].Offset)
	}
}

// TestDeleteTopicRemovesDeadSegments: deleting a topic frees the WAL segments that held only
// its batches; the other topic's data and offsets survive, also across a restart.
func TestDeleteTopicRemovesDeadSegments(t *testing.T) {
	dir := t.TempDir()
	small := func(c *Config) { c.WALSegmentBytes = 4096 }
	tb := startBroker(t, dir, small)
	adm := tb.admin(t)
	createTopic(t, adm, "gone", 1, nil)
	createTopic(t, adm, "stay", 1, nil)
	cl := tb.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	for i := 0; i < 31; i++ {
		topic := "gone"
		if i == 30 {
			topic = "stay" // the only live batch, in the newest segment
		}
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: topic, Value: bytes.Repeat([]byte{'v'}, 1000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	segs := walSegments(t, dir)
	if segs < 5 {
		t.Fatalf("only %d WAL segments; the test needs several", segs)
	}
	if r, err := adm.DeleteTopics(ctxT(t, 5*time.Second), "gone"); err != nil || r["gone"].Err != nil {
		t.Fatal(err, r["gone"].Err)
	}
	if n := walSegments(t, dir); n > 2 {
		t.Fatalf("%d segments left after deleting the topic (from %d)", n, segs)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	tb = startBroker(t, dir, small)
	if got := consumeN(t, tb, "stay", 1); got[0].Offset != 0 || len(got[0].Value) != 1000 {
		t.Fatalf("stay after restart: offset %d, %d bytes", got[0].Offset, len(got[0].Value))
	}
}

// The periodic trim seals a tail only once it pins a WAL segment walKeepSegments rotations
// old: a partition writes one segment per few rotations instead of one per rotation, and the
// WAL keeps at most walKeepSegments segments before the newest (DeleteRecords and shutdown
// still trim at once: the tests above).
func TestPeriodicTrimKeepsRecentWALSegments(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir, func(c *Config) { c.WALSegmentBytes = 4096; c.WALTrimInterval = time.Hour })
	adm := tb.admin(t)
	createTopic(t, adm, "k", 1, nil)
	cl := tb.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	first := walSegments(t, dir)
	for i := 0; i < 60; i++ {
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "k", Value: bytes.Repeat([]byte{'v'}, 1000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := tb.trimWAL(walKeepSegments); err != nil { // as the periodic trim, after every record
			t.Fatal(err)
		}
		if n := walSegments(t, dir); n > walKeepSegments+1 {
			t.Fatalf("record %d: %d WAL segments, want at most %d", i, n, walKeepSegments+1)
		}
	}
	rotations := int(tb.drain.LastSegment()) - first
	matches, err := filepath.Glob(filepath.Join(dir, "segments", "*", "0", "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	if rotations < 12 || len(matches) == 0 || len(matches) > rotations/(walKeepSegments+1)+1 {
		t.Fatalf("%d partition segments over %d WAL rotations, want at most one per %d rotations", len(matches), rotations, walKeepSegments+1)
	}
	if got := consumeN(t, tb, "k", 60); got[0].Offset != 0 || got[59].Offset != 59 {
		t.Fatalf("consumed %d..%d", got[0].Offset, got[59].Offset)
	}
}

// max.connections is enforced as it changes: at the limit a new connection is not served (it
// waits in the listen backlog, as with Kafka), connections already served go on, and raising
// the limit serves the waiting one. Values below 1 are refused: klite has no controller
// listener from which a lock-out could be undone.
func TestMaxConnectionsBrokerConfig(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	s := func(v string) *string { return &v }
	alter := func(v string) error {
		t.Helper()
		resps, err := adm.AlterBrokerConfigs(ctxT(t, 10*time.Second), []kadm.AlterConfig{{Name: "max.connections", Value: s(v)}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return resps[0].Err
	}
	for _, bad := range []string{"-1", "0"} {
		if err := alter(bad); !errors.Is(err, kerr.InvalidRequest) {
			t.Fatalf("max.connections=%s: %v, want INVALID_REQUEST", bad, err)
		}
	}
	// The admin client's connection (at least one) is served already and goes on.
	if err := alter("1"); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := kmsg.NewPtrApiVersionsRequest()
	if _, err := c.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")).AppendRequest(nil, req, 7)); err != nil {
		t.Fatal(err)
	}
	var sz [4]byte
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := io.ReadFull(c, sz[:]); err == nil {
		t.Fatal("a new connection was served at max.connections")
	}
	if err := alter("1000"); err != nil { // the admin's connection was served before: it goes on
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, sz[:]); err != nil {
		t.Fatalf("the waiting connection after max.connections was raised: %v", err)
	}
	rcs, err := adm.DescribeBrokerConfigs(ctxT(t, 5*time.Second), 0)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On("0", nil)
	for _, cfg := range rc.Configs {
		if cfg.Key == "max.connections" && (cfg.MaybeValue() != "1000" || cfg.Source != kmsg.ConfigSourceDynamicBrokerConfig) {
			t.Fatalf("max.connections described as %+v", cfg)
		}
	}
}
