package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describeConsumerGroup sends ConsumerGroupDescribe (69) for one group.
func describeConsumerGroup(t *testing.T, cl *kgo.Client, id string) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{id}
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Groups[0]
}

// TestConsumerProtocolGroup runs two franz-go consumers with the KIP-848 protocol
// (kgo.ServerSideBalancer): the first gets every partition, the second joins and the
// partitions are split (revoked by the first before the second gets them), no record is
// lost, the second leaves and the first takes everything back; offsets commit with member
// epochs, and the group is listed and described as a "consumer" group, across a restart.
func TestConsumerProtocolGroup(t *testing.T) {
	dir := t.TempDir()
	fast := func(c *Config) { c.Groups.HeartbeatInterval = 200 * time.Millisecond }
	tb := startBroker(t, dir, fast)
	const topic, grp, parts = "cp", "cpg", 4
	createTopic(t, tb.admin(t), topic, parts, nil)
	prod := tb.client(t)
	produceValues(t, prod, topic, 0, 100)

	a := newGroupConsumer(t, tb, grp, topic, kgo.RangeBalancer(), kgo.ServerSideBalancer())
	pollUntil(t, 20*time.Second, "a to own every partition", func() bool { return a.ownedCount() == parts }, a)
	admCl := tb.client(t)
	d := describeConsumerGroup(t, admCl, grp)
	if d.ErrorCode != 0 || len(d.Members) != 1 || d.AssignorName != "range" {
		t.Fatalf("describe after a joined: err %d, %d members, assignor %q", d.ErrorCode, len(d.Members), d.AssignorName)
	}

	b := newGroupConsumer(t, tb, grp, topic, kgo.RangeBalancer(), kgo.ServerSideBalancer())
	pollUntil(t, 30*time.Second, "partitions to be split", func() bool {
		return a.ownedCount() == parts/2 && b.ownedCount() == parts/2
	}, a, b)
	a.mu.Lock()
	for p := range a.owned {
		if b.owned[p] {
			t.Fatalf("partition %d owned by both members", p)
		}
	}
	a.mu.Unlock()
	produceValues(t, prod, topic, 100, 200)
	pollUntil(t, 20*time.Second, "records 0-199", func() bool { return len(union(a, b)) == 200 }, a, b)

	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.TypesFilter = []string{"consumer"}
	lresp, err := lreq.RequestWith(ctxT(t, 10*time.Second), admCl)
	if err != nil {
		t.Fatal(err)
	}
	if len(lresp.Groups) != 1 || lresp.Groups[0].Group != grp || lresp.Groups[0].GroupType != "consumer" || lresp.Groups[0].GroupState != "Stable" {
		t.Fatalf("ListGroups type consumer: %+v", lresp.Groups)
	}
	d = describeConsumerGroup(t, admCl, grp)
	if d.State != "Stable" || len(d.Members) != 2 || d.Epoch != d.AssignmentEpoch {
		t.Fatalf("describe with two members: state %s, %d members, epoch %d/%d", d.State, len(d.Members), d.Epoch, d.AssignmentEpoch)
	}

	b.cl.Close() // leaves with epoch -1
	produceValues(t, prod, topic, 200, 300)
	pollUntil(t, 30*time.Second, "a to own every partition again", func() bool { return a.ownedCount() == parts }, a)
	pollUntil(t, 20*time.Second, "records 0-299", func() bool { return len(union(a, b)) == 300 }, a)
	if err := a.cl.CommitMarkedOffsets(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	a.cl.Close()

	// Restart: the group and its offsets are still there.
	tb.Close()
	tb.abandoned = true
	tb2 := startBroker(t, dir, fast)
	adm := tb2.admin(t)
	offs, err := adm.FetchOffsets(ctxT(t, 10*time.Second), grp)
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != 300 {
		t.Fatalf("committed %d after restart, want 300", committed)
	}
	d = describeConsumerGroup(t, tb2.client(t), grp)
	if d.ErrorCode != 0 || d.State != "Empty" {
		t.Fatalf("describe after restart: err %d state %s", d.ErrorCode, d.State)
	}
	// An empty consumer group can be deleted.
	if _, err := adm.DeleteGroup(ctxT(t, 10*time.Second), grp); err != nil {
		t.Fatal(err)
	}
}

// TestConsumerProtocolCrash: a KIP-848 group's members, epochs, assignment and committed
// offsets survive a crash (the broker abandoned without Close); a member heartbeating with
// its epoch after the restart carries on without rejoining.
func TestConsumerProtocolCrash(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	createTopic(t, tb.admin(t), "cc", 3, nil)
	cl := tb.client(t)
	hb := func(cl *kgo.Client, epoch int32, mod func(*kmsg.ConsumerGroupHeartbeatRequest)) *kmsg.ConsumerGroupHeartbeatResponse {
		t.Helper()
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.MemberEpoch = "ccg", "member-one-0000000000", epoch
		if mod != nil {
			mod(req)
		}
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != 0 {
			t.Fatalf("heartbeat epoch %d: error %d", epoch, resp.ErrorCode)
		}
		return resp
	}
	r := hb(cl, 0, func(req *kmsg.ConsumerGroupHeartbeatRequest) {
		req.RebalanceTimeoutMillis = 30000
		req.SubscribedTopicNames = []string{"cc"}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	})
	if r.MemberEpoch != 1 || r.Assignment == nil || len(r.Assignment.Topics) != 1 || len(r.Assignment.Topics[0].Partitions) != 3 {
		t.Fatalf("join: epoch %d assignment %+v", r.MemberEpoch, r.Assignment)
	}
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.MemberID, oc.Generation = "ccg", "member-one-0000000000", 1
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = "cc"
	op := kmsg.NewOffsetCommitRequestTopicPartition()
	op.Partition, op.Offset = 2, 77
	ot.Partitions = append(ot.Partitions, op)
	oc.Topics = append(oc.Topics, ot)
	ocr, err := oc.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil || ocr.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %v %+v", err, ocr)
	}

	tb.abandon()
	tb2 := startBroker(t, dir)
	cl2 := tb2.client(t)
	d := describeConsumerGroup(t, cl2, "ccg")
	if d.ErrorCode != 0 || d.State != "Stable" || d.Epoch != 1 || len(d.Members) != 1 || d.Members[0].MemberEpoch != 1 ||
		len(d.Members[0].Assignment.TopicPartitions) != 1 || len(d.Members[0].Assignment.TopicPartitions[0].Partitions) != 3 {
		t.Fatalf("after the crash: %+v", d)
	}
	if r := hb(cl2, 1, nil); r.MemberEpoch != 1 {
		t.Fatalf("heartbeat after the crash: epoch %d", r.MemberEpoch)
	}
	offs, err := kadm.NewClient(cl2).FetchOffsets(ctxT(t, 10*time.Second), "ccg")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("cc", 2); !ok || o.At != 77 {
		t.Fatalf("offset after the crash: %+v", o)
	}
}

// TestGroupConfigResources: DescribeConfigs and IncrementalAlterConfigs on GROUP resources
// answer as Kafka 4.0.2 does (names, order, sources, errors and messages as probed on it).
func TestGroupConfigResources(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	cl := tb.client(t)
	describe := func(name string) *kmsg.DescribeConfigsResponseResource {
		t.Helper()
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, name
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		return &resp.Resources[0]
	}
	alter := func(name, key, value string) (int16, string) {
		t.Helper()
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, name
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = key, &value
		rr.Configs = append(rr.Configs, c)
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		msg := ""
		if resp.Resources[0].ErrorMessage != nil {
			msg = *resp.Resources[0].ErrorMessage
		}
		return resp.Resources[0].ErrorCode, msg
	}
	list := func(r *kmsg.DescribeConfigsResponseResource) string {
		var s []string
		for _, c := range r.Configs {
			s = append(s, fmt.Sprintf("%s=%s/%d", c.Name, *c.Value, c.Source))
		}
		return strings.Join(s, " ")
	}
	want := "consumer.session.timeout.ms=45000/5 share.auto.offset.reset=latest/5 share.record.lock.duration.ms=30000/5 " +
		"consumer.heartbeat.interval.ms=5000/5 share.session.timeout.ms=45000/5 share.heartbeat.interval.ms=5000/5"
	if got := list(describe("any-group")); got != want {
		t.Fatalf("defaults:\n got %s\nwant %s", got, want)
	}
	if r := describe(""); r.ErrorCode != kerr.InvalidRequest.Code || *r.ErrorMessage != "Group name must not be empty" {
		t.Fatalf("empty name: %+v", r)
	}
	for _, c := range []struct {
		name, key, value string
		code             int16
		msg              string
	}{
		{"g", "consumer.session.timeout.ms", "10", kerr.InvalidConfig.Code, "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"},
		{"g", "consumer.heartbeat.interval.ms", "abc", kerr.InvalidConfig.Code, "Invalid value abc for configuration consumer.heartbeat.interval.ms: Not a number of type INT"},
		{"g", "foo.bar", "1", kerr.InvalidConfig.Code, "Unknown group config name: foo.bar"},
		{"", "consumer.session.timeout.ms", "50000", kerr.InvalidRequest.Code, "Default group resources are not allowed."},
		{"g", "consumer.session.timeout.ms", "50000", 0, ""},
	} {
		if code, msg := alter(c.name, c.key, c.value); code != c.code || msg != c.msg {
			t.Fatalf("set %s=%s on %q: %d %q, want %d %q", c.key, c.value, c.name, code, msg, c.code, c.msg)
		}
	}
	if got := list(describe("g")); !strings.HasPrefix(got, "consumer.session.timeout.ms=50000/8 ") {
		t.Fatalf("after set: %s", got)
	}
}
