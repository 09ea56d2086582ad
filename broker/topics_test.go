package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCreateTopicsValidation covers name rules, duplicates, partition counts, replication
// factor, validate-only and stored configs.
func TestCreateTopicsValidation(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	cl := tb.client(t)
	create := func(validateOnly bool, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsResponse {
		t.Helper()
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 5000
		req.ValidateOnly = validateOnly
		req.Topics = topics
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	topic := func(name string, parts int32, rf int16, configs ...string) kmsg.CreateTopicsRequestTopic {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, rf
		for i := 0; i+1 < len(configs); i += 2 {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
			rt.Configs = append(rt.Configs, c)
		}
		return rt
	}
	cases := []struct {
		rt   kmsg.CreateTopicsRequestTopic
		want *kerr.Error
	}{
		{topic("ok-1", 3, 1), nil},
		{topic("ok-default", -1, -1), nil},
		{topic("ok-1", 1, 1), kerr.TopicAlreadyExists},
		{topic("bad name", 1, 1), kerr.InvalidTopicException},
		{topic(".", 1, 1), kerr.InvalidTopicException},
		{topic("..", 1, 1), kerr.InvalidTopicException},
		{topic("", 1, 1), kerr.InvalidTopicException},
		{topic(strings.Repeat("x", 250), 1, 1), kerr.InvalidTopicException},
		{topic("zero-parts", 0, 1), kerr.InvalidPartitions},
		{topic("rf3", 1, 3), kerr.InvalidReplicationFactor},
		{topic("badcfg", 1, 1, "message.timestamp.type", "Sometimes"), kerr.InvalidConfig},
		{topic("unknowncfg", 1, 1, "no.such.config", "1"), kerr.InvalidConfig},
		{topic("cfg", 2, 1, "retention.ms", "1000", "cleanup.policy", "compact"), nil},
	}
	for _, c := range cases {
		resp := create(false, c.rt)
		st := resp.Topics[0]
		if (c.want == nil && st.ErrorCode != 0) || (c.want != nil && st.ErrorCode != c.want.Code) {
			t.Errorf("create %q: error %d, want %v", c.rt.Topic, st.ErrorCode, c.want)
		}
		if c.want == nil && (st.TopicID == [16]byte{} || st.NumPartitions != max(c.rt.NumPartitions, 1)) {
			t.Errorf("create %q: id %x partitions %d", c.rt.Topic, st.TopicID, st.NumPartitions)
		}
	}
	// A name listed twice is refused, and answered once (as Kafka).
	resp := create(false, topic("dup", 1, 1), topic("dup", 1, 1))
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("duplicate names: %+v", resp.Topics)
	}
	// Validate only creates nothing.
	if resp := create(true, topic("vo", 4, 1)); resp.Topics[0].ErrorCode != 0 {
		t.Errorf("validate only: error %d", resp.Topics[0].ErrorCode)
	} else if resp.Topics[0].TopicID == ([16]byte{}) {
		t.Error("validate only: zero topic ID (Kafka 4.0 answers one)")
	}
	if tb.topic("vo") != nil {
		t.Error("validate-only request created the topic")
	}
	if c := tb.topic("cfg"); c == nil || c.configs()["retention.ms"] != "1000" || c.configs()["cleanup.policy"] != "compact" {
		t.Errorf("configs not stored: %+v", c)
	}
	// Configs survive a restart.
	tb.Close()
	tb = startBroker(t, tb.dir)
	if c := tb.topic("cfg"); c == nil || c.configs()["retention.ms"] != "1000" || len(c.partitions()) != 2 {
		t.Errorf("configs after restart: %+v", c)
	}
}

// TestMetadataAutoCreateAndDelete: auto-creation on and off, unknown topics, DeleteTopics by
// name, and a re-created topic starting afresh with a new ID.
func TestMetadataAutoCreateAndDelete(t *testing.T) {
	tb := startBroker(t, t.TempDir(), func(c *Config) { c.AutoCreateTopics = false })
	cl := tb.client(t)
	meta := func(allow bool, names ...string) *kmsg.MetadataResponse {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		req.AllowAutoTopicCreation = allow
		for _, n := range names {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := meta(true, "auto"); r.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("auto-create off: error %d", r.Topics[0].ErrorCode)
	}
	if len(meta(true).Brokers) != 1 || *meta(true).ClusterID != tb.ClusterID() {
		t.Fatal("metadata brokers/cluster id wrong")
	}

	tb2 := startBroker(t, t.TempDir(), func(c *Config) { c.AutoCreateTopics = true; c.DefaultPartitions = 3 })
	cl = tb2.client(t)
	if r := meta(false, "auto"); r.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("request disallowing auto-create: error %d", r.Topics[0].ErrorCode)
	}
	// As Kafka 4.0: the creating request answers UNKNOWN_TOPIC_OR_PARTITION, no partitions;
	// the next one finds the topic.
	r := meta(true, "auto")
	if r.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || len(r.Topics[0].Partitions) != 0 || r.Topics[0].TopicID != [16]byte{} {
		t.Fatalf("auto-creating request: %+v", r.Topics[0])
	}
	r = meta(true, "auto")
	if r.Topics[0].ErrorCode != 0 || len(r.Topics[0].Partitions) != 3 || r.Topics[0].Partitions[2].Leader != 0 {
		t.Fatalf("auto-created: %+v", r.Topics[0])
	}
	oldID := r.Topics[0].TopicID
	if r := rawProduce(t, cl, "auto", rawBatch(-1, -1, -1, 4, 1000, 1)); r.ErrorCode != 0 {
		t.Fatal(r.ErrorCode)
	}
	dreq := kmsg.NewPtrDeleteTopicsRequest()
	dreq.TopicNames = []string{"auto", "missing"}
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr("auto")
	dreq.Topics = append(dreq.Topics, dt)
	dt.Topic = kmsg.StringPtr("missing")
	dreq.Topics = append(dreq.Topics, dt)
	dresp, err := dreq.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int16{} // Kafka shuffles the rows: look them up by name
	for _, st := range dresp.Topics {
		codes[*st.Topic] = st.ErrorCode
	}
	if len(dresp.Topics) != 2 || codes["auto"] != 0 || codes["missing"] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("delete: %+v", dresp.Topics)
	}
	r = meta(true, "auto")
	if r.Topics[0].TopicID == oldID {
		t.Fatal("re-created topic kept the old id")
	}
	tb2.Close()
	tb2 = startBroker(t, tb2.dir)
	p, kerrv := tb2.partition("auto", 0)
	if kerrv != nil {
		t.Fatal(kerrv)
	}
	if _, hwm := p.offsets(); hwm != 0 {
		t.Fatalf("re-created topic has old data after restart: hwm %d", hwm)
	}
}

// TestCreateTopicsCheckOrder: a topic failing several checks gets the first in Kafka's
// controller order: name, existence, configs, then partitions and replication factor.
func TestCreateTopicsCheckOrder(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "order-exists", 1, nil)
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 5000
	add := func(name string, parts int32, rf int16, config string) {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, parts, rf
		if config != "" {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = config, kmsg.StringPtr("1")
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
	}
	add("bad name!", 0, 3, "")                   // name before partitions and replication
	add("order-exists", 0, 0, "no.such.config")  // existence before the rest
	add("order-configs", 0, 0, "no.such.config") // configs before partitions and replication
	add("order-rf", 1, 0, "")                    // then the replication factor
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), tb.client(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int16{"bad name!": kerr.InvalidTopicException.Code, "order-exists": kerr.TopicAlreadyExists.Code,
		"order-configs": kerr.InvalidConfig.Code, "order-rf": kerr.InvalidReplicationFactor.Code}
	for _, st := range resp.Topics {
		if st.ErrorCode != want[st.Topic] {
			t.Errorf("%s: error %d, want %d", st.Topic, st.ErrorCode, want[st.Topic])
		}
	}
}
