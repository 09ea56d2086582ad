package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceDuplicatePartition: a partition listed twice in one Produce request is written
// once (the last batch given) and answered once, as Kafka does; also across two entries of
// the same topic.
func TestProduceDuplicatePartition(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "dp", 2, nil)
	cl := tb.client(t)
	now := time.Now().UnixMilli()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	part := func(p int32, n int) kmsg.ProduceRequestTopicPartition {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, rawBatch(-1, -1, -1, n, now, 1)
		return rp
	}
	t1 := kmsg.NewProduceRequestTopic()
	t1.Topic = "dp"
	t1.Partitions = []kmsg.ProduceRequestTopicPartition{part(0, 1), part(0, 2), part(1, 1)}
	t2 := kmsg.NewProduceRequestTopic()
	t2.Topic = "dp"
	t2.Partitions = []kmsg.ProduceRequestTopicPartition{part(1, 3)}
	req.Topics = []kmsg.ProduceRequestTopic{t1, t2}
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
		t.Fatalf("answer shape %+v, want one topic with partitions 0 and 1 once each", resp.Topics)
	}
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 || p.BaseOffset != 0 {
			t.Errorf("partition %d: error %d base %d", p.Partition, p.ErrorCode, p.BaseOffset)
		}
	}
	for p, want := range map[int32]int64{0: 2, 1: 3} { // the last batch given for each
		if _, hwm := tb.partitionOffsets(t, "dp", p); hwm != want {
			t.Errorf("partition %d: high watermark %d, want %d (one batch, the last)", p, hwm, want)
		}
	}
}

func createTopicsRaw(t *testing.T, cl *kgo.Client, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsResponse {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 5000
	req.Topics = topics
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func creatable(name string, partitions int32, configs ...kmsg.CreateTopicsRequestTopicConfig) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor, rt.Configs = name, partitions, 1, configs
	return rt
}

// TestCreateTopicsKafkaRules: the per-request partition cap (POLICY_VIOLATION on every row,
// nothing created), a duplicated name answered once with INVALID_REQUEST, a null config value
// (INVALID_CONFIG) and '.'/'_' collisions (INVALID_TOPIC_EXCEPTION), as Kafka 4.0.
func TestCreateTopicsKafkaRules(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	cl := tb.client(t)

	resp := createTopicsRaw(t, cl, creatable("cap-a", 6000), creatable("cap-b", 4001), creatable("cap-b", 1))
	// cap-b is listed twice: left out (its 4001 partitions do not count) and answered once.
	if len(resp.Topics) != 2 || resp.Topics[0].ErrorCode != 0 || resp.Topics[1].Topic != "cap-b" ||
		resp.Topics[1].ErrorCode != kerr.InvalidRequest.Code || resp.Topics[1].ErrorMessage == nil || *resp.Topics[1].ErrorMessage != "Duplicate topic name." {
		t.Fatalf("duplicate name: %+v", resp.Topics)
	}
	if tb.topic("cap-b") != nil {
		t.Fatal("duplicated topic was created")
	}

	resp = createTopicsRaw(t, cl, creatable("over-a", 5000), creatable("over-b", 5000), creatable("over-c", 1))
	if len(resp.Topics) != 3 {
		t.Fatalf("over the cap: %d rows, want 3", len(resp.Topics))
	}
	for _, st := range resp.Topics {
		if st.ErrorCode != kerr.PolicyViolation.Code || st.ErrorMessage == nil || *st.ErrorMessage != "Excessively large number of partitions per request." {
			t.Errorf("over the cap: %s: error %d %v", st.Topic, st.ErrorCode, st.ErrorMessage)
		}
		if tb.topic(st.Topic) != nil {
			t.Errorf("over the cap: %s was created", st.Topic)
		}
	}
	if resp := createTopicsRaw(t, cl, creatable("at-cap", 4000)); resp.Topics[0].ErrorCode != 0 {
		t.Errorf("10000 partitions in one request (6000 earlier + 4000 now is fine): error %d", resp.Topics[0].ErrorCode)
	}

	nullCfg := kmsg.NewCreateTopicsRequestTopicConfig()
	nullCfg.Name = "retention.ms"
	resp = createTopicsRaw(t, cl, creatable("nullcfg", 1, nullCfg))
	if st := resp.Topics[0]; st.ErrorCode != kerr.InvalidConfig.Code || st.ErrorMessage == nil || *st.ErrorMessage != "Null value not supported for topic configs: retention.ms" || tb.topic("nullcfg") != nil {
		t.Errorf("null config value: error %d %v", st.ErrorCode, st.ErrorMessage)
	}

	if resp := createTopicsRaw(t, cl, creatable("a.b", 1)); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("a.b: error %d", resp.Topics[0].ErrorCode)
	}
	resp = createTopicsRaw(t, cl, creatable("a_b", 1))
	if st := resp.Topics[0]; st.ErrorCode != kerr.InvalidTopicException.Code || st.ErrorMessage == nil || *st.ErrorMessage != "Topic 'a_b' collides with existing topic: a.b" || tb.topic("a_b") != nil {
		t.Errorf("a_b after a.b: error %d %v", st.ErrorCode, st.ErrorMessage)
	}
	// In one request, Kafka checks collisions against the topics existing before it only:
	// x.y and x_y are both created (the differential case create-topics-colliding-in-one-request);
	// a third colliding with an existing topic is still refused.
	resp = createTopicsRaw(t, cl, creatable("x.y", 1), creatable("x_y", 1), creatable("a.b.", 1), creatable("a_b", 1))
	for _, st := range resp.Topics {
		want := int16(0)
		if st.Topic == "a_b" {
			want = kerr.InvalidTopicException.Code
		}
		if st.ErrorCode != want {
			t.Errorf("one request with x.y, x_y, a.b., a_b: %s: error %d %v, want %d", st.Topic, st.ErrorCode, st.ErrorMessage, want)
		}
	}
	if tb.topic("x.y") == nil || tb.topic("x_y") == nil {
		t.Errorf("x.y and x_y in one request: not both created")
	}
}

// TestMetadataDuplicateTopics: a topic asked for twice (by name or by ID) is answered once,
// and once any topic ID is given Kafka answers by ID only (the names are ignored).
func TestMetadataDuplicateTopics(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "md", 1, nil)
	cl := tb.client(t)
	id := tb.topic("md").id
	ask := func(names []string, ids ...[16]byte) *kmsg.MetadataResponse {
		t.Helper()
		req := kmsg.NewPtrMetadataRequest()
		for _, n := range names {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(n)
			req.Topics = append(req.Topics, rt)
		}
		for _, id := range ids {
			rt := kmsg.NewMetadataRequestTopic()
			rt.TopicID = id
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	count := func(resp *kmsg.MetadataResponse) map[string]int {
		c := map[string]int{}
		for _, mt := range resp.Topics {
			if mt.Topic != nil {
				c[*mt.Topic]++
			} else {
				c[fmt.Sprintf("id %x error %d", mt.TopicID, mt.ErrorCode)]++
			}
		}
		return c
	}
	if c := count(ask([]string{"md", "md", "nope", "nope"})); len(c) != 2 || c["md"] != 1 || c["nope"] != 1 {
		t.Errorf("by name: answered %v, want md and nope once each", c)
	}
	if c := count(ask(nil, id, id)); len(c) != 1 || c["md"] != 1 {
		t.Errorf("by ID: answered %v, want md once", c)
	}
	unknown := [16]byte{15: 0xa1}
	resp := ask([]string{"md", "nope"}, id, unknown, id)
	c := count(resp)
	if want := fmt.Sprintf("id %x error %d", unknown, kerr.UnknownTopicID.Code); len(resp.Topics) != 2 || c["md"] != 1 || c[want] != 1 {
		t.Errorf("names and IDs: answered %v, want md (by its ID) and the unknown ID only", c)
	}
}

// TestDeleteTopicsAmbiguous: a topic named twice, by name and ID in one entry, or once by
// name and once by ID is refused with INVALID_REQUEST and not deleted; other topics in the
// same request are deleted (Kafka 4.0's ControllerApis).
func TestDeleteTopicsAmbiguous(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	for _, n := range []string{"twice", "both", "mixed", "idtwice", "plain"} {
		createTopic(t, adm, n, 1, nil)
	}
	cl := tb.client(t)
	byName := func(n string) kmsg.DeleteTopicsRequestTopic {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		return rt
	}
	byID := func(n string) kmsg.DeleteTopicsRequestTopic {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.TopicID = tb.topic(n).id
		return rt
	}
	both := byName("both")
	both.TopicID = tb.topic("both").id
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 5000
	req.Topics = []kmsg.DeleteTopicsRequestTopic{byName("twice"), byName("twice"), both, byID("mixed"), byName("mixed"),
		byID("idtwice"), byID("idtwice"), byName("plain")}
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"twice":   "Duplicate topic name.",
		"both":    "You may not specify both topic name and topic id.",
		"mixed":   "The provided topic name maps to an ID that was already supplied.",
		"idtwice": "Duplicate topic id.",
	}
	idName := map[[16]byte]string{tb.topic("idtwice").id: "idtwice"}
	got := map[string]int{}
	for _, st := range resp.Topics {
		name := idName[st.TopicID]
		if st.Topic != nil {
			name = *st.Topic
		}
		got[name]++
		if msg, ok := want[name]; ok {
			if st.ErrorCode != kerr.InvalidRequest.Code || st.ErrorMessage == nil || *st.ErrorMessage != msg {
				t.Errorf("%s: error %d %v, want INVALID_REQUEST %q", name, st.ErrorCode, st.ErrorMessage, msg)
			}
		} else if name != "plain" || st.ErrorCode != 0 {
			t.Errorf("unexpected row %s error %d", name, st.ErrorCode)
		}
	}
	for n := range want {
		if got[n] != 1 {
			t.Errorf("%s answered %d times, want once", n, got[n])
		}
		if tb.topic(n) == nil {
			t.Errorf("%s was deleted", n)
		}
	}
	if got["plain"] != 1 || tb.topic("plain") != nil {
		t.Errorf("plain: answered %d times, deleted %v", got["plain"], tb.topic("plain") == nil)
	}
}
