package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// groupConsumer is a kgo group member that records what it saw.
type groupConsumer struct {
	cl *kgo.Client

	mu       sync.Mutex
	seen     map[string]int
	owned    map[int32]bool
	revoked  []int32 // partitions taken away (cooperative: should only be ones given up)
	assigned int
}

func newGroupConsumer(t *testing.T, tb *testBroker, group, topic string, balancer kgo.GroupBalancer, extra ...kgo.Opt) *groupConsumer {
	t.Helper()
	gc := &groupConsumer{seen: map[string]int{}, owned: map[int32]bool{}}
	gc.cl = tb.client(t, append([]kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(balancer),
		kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(300 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.AutoCommitInterval(200 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			gc.mu.Lock()
			defer gc.mu.Unlock()
			gc.assigned++
			for _, p := range m[topic] {
				gc.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			// Commit what was consumed before giving partitions up (as kgo's default does).
			cl.CommitMarkedOffsets(ctx)
			gc.mu.Lock()
			defer gc.mu.Unlock()
			for _, p := range m[topic] {
				delete(gc.owned, p)
				gc.revoked = append(gc.revoked, p)
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			gc.mu.Lock()
			defer gc.mu.Unlock()
			for _, p := range m[topic] {
				delete(gc.owned, p)
				gc.revoked = append(gc.revoked, p)
			}
		}),
		kgo.AutoCommitMarks(),
	}, extra...)...)
	return gc
}

// poll consumes once (bounded wait) and marks what it consumed for commit.
func (gc *groupConsumer) poll(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	fs := gc.cl.PollFetches(pctx)
	fs.EachRecord(func(r *kgo.Record) {
		gc.mu.Lock()
		gc.seen[string(r.Value)]++
		gc.mu.Unlock()
	})
	gc.cl.MarkCommitRecords(fs.Records()...)
}

func (gc *groupConsumer) ownedCount() int {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	return len(gc.owned)
}

func produceValues(t *testing.T, cl *kgo.Client, topic string, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	if err := cl.ProduceSync(ctxT(t, 10*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// pollUntil polls the consumers until cond holds or the deadline passes.
func pollUntil(t *testing.T, d time.Duration, what string, cond func() bool, gcs ...*groupConsumer) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		var wg sync.WaitGroup
		for _, gc := range gcs {
			wg.Add(1)
			go func() { defer wg.Done(); gc.poll(context.Background()) }()
		}
		wg.Wait()
	}
}

func union(gcs ...*groupConsumer) map[string]bool {
	out := map[string]bool{}
	for _, gc := range gcs {
		gc.mu.Lock()
		for v := range gc.seen {
			out[v] = true
		}
		gc.mu.Unlock()
	}
	return out
}

func testGroupTwoConsumersOneLeaves(t *testing.T, balancer kgo.GroupBalancer, cooperative bool) {
	tb := startBroker(t, t.TempDir())
	const topic, group, parts = "gt", "grp", 4
	createTopic(t, tb.admin(t), topic, parts, nil)
	prod := tb.client(t)
	produceValues(t, prod, topic, 0, 100)

	a := newGroupConsumer(t, tb, group, topic, balancer)
	pollUntil(t, 20*time.Second, "a to own every partition", func() bool { return a.ownedCount() == parts }, a)
	b := newGroupConsumer(t, tb, group, topic, balancer)
	pollUntil(t, 30*time.Second, "partitions to be split", func() bool {
		return a.ownedCount() == parts/2 && b.ownedCount() == parts/2
	}, a, b)
	produceValues(t, prod, topic, 100, 200)
	pollUntil(t, 20*time.Second, "records 0-199", func() bool { return len(union(a, b)) == 200 }, a, b)

	a.mu.Lock()
	aOwned := map[int32]bool{}
	for p := range a.owned {
		aOwned[p] = true
	}
	revokedBefore := len(a.revoked)
	a.mu.Unlock()

	// b leaves (Close sends LeaveGroup after committing); a takes over everything.
	b.cl.Close()
	produceValues(t, prod, topic, 200, 300)
	pollUntil(t, 30*time.Second, "a to own every partition again", func() bool { return a.ownedCount() == parts }, a)
	pollUntil(t, 20*time.Second, "records 0-299", func() bool { return len(union(a, b)) == 300 }, a)

	if cooperative {
		// Cooperative: a gave nothing up when b left; its partitions stayed assigned.
		a.mu.Lock()
		defer a.mu.Unlock()
		if len(a.revoked) != revokedBefore {
			t.Fatalf("a had partitions revoked when b left: %v", a.revoked[revokedBefore:])
		}
		for p := range aOwned {
			if !a.owned[p] {
				t.Fatalf("a lost partition %d", p)
			}
		}
	}

	// The committed offsets reach the end of every partition.
	adm := tb.admin(t)
	if err := a.cl.CommitMarkedOffsets(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	offs, err := adm.FetchOffsets(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctxT(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	var committed, end int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	if committed != end || end != 300 {
		t.Fatalf("committed %d, end %d, want 300", committed, end)
	}
}

func TestGroupEagerRangeConsumers(t *testing.T) {
	testGroupTwoConsumersOneLeaves(t, kgo.RangeBalancer(), false)
}

func TestGroupCooperativeStickyConsumers(t *testing.T) {
	testGroupTwoConsumersOneLeaves(t, kgo.CooperativeStickyBalancer(), true)
}

func TestGroupAdmin(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	createTopic(t, adm, "ga", 2, nil)
	createTopic(t, adm, "gb", 1, nil)
	produceValues(t, tb.client(t), "ga", 0, 10)
	c := newGroupConsumer(t, tb, "live", "ga", kgo.RangeBalancer())
	pollUntil(t, 20*time.Second, "consumer to own ga", func() bool { return c.ownedCount() == 2 }, c)
	ctx := ctxT(t, 20*time.Second)

	// Simple commits to a group with no members.
	var os kadm.Offsets
	os.AddOffset("ga", 0, 5, -1)
	os.AddOffset("gb", 0, 3, -1)
	if r, err := adm.CommitOffsets(ctx, "simple", os); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	var bogus kadm.Offsets
	bogus.AddOffset("nope", 0, 1, -1)
	r, err := adm.CommitOffsets(ctx, "simple", bogus)
	if err != nil || !errors.Is(r.Error(), kerr.UnknownTopicOrPartition) {
		t.Fatalf("commit to unknown topic: %v %v", err, r.Error())
	}
	// "live" has the member's offsets too: commit one for gb, which it is not subscribed to.
	c.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"gb": {0: {Epoch: -1, Offset: 1}}}, nil)

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g := listed["live"]; g.State != "Stable" || g.ProtocolType != "consumer" {
		t.Fatalf("listed live %+v", g)
	}
	if g := listed["simple"]; g.State != "Empty" || g.ProtocolType != "" {
		t.Fatalf("listed simple %+v", g)
	}
	if stable, _ := adm.ListGroups(ctx, "Stable"); len(stable) != 1 {
		t.Fatalf("stable filter: %v", stable.Groups())
	}

	described, err := adm.DescribeGroups(ctx, "live", "unknown-group")
	if err != nil {
		t.Fatal(err)
	}
	live := described["live"]
	if live.State != "Stable" || live.Protocol != "range" || len(live.Members) != 1 || live.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("describe live %+v", live)
	}
	if a, ok := live.Members[0].Assigned.AsConsumer(); !ok || len(a.Topics) != 1 || len(a.Topics[0].Partitions) != 2 {
		t.Fatalf("assignment %+v", live.Members[0].Assigned)
	}
	if u := described["unknown-group"]; u.State != "Dead" {
		t.Fatalf("describe unknown %+v", u)
	}

	fetched, err := adm.FetchOffsets(ctx, "simple")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := fetched.Lookup("ga", 0); o.At != 5 {
		t.Fatalf("fetched %+v", o)
	}

	// OffsetDelete: subscribed topic refused, the other deleted.
	del, err := adm.DeleteOffsets(ctx, "live", kadm.TopicsSet{"ga": {0: {}}, "gb": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := del["ga"][0]; !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Fatalf("delete subscribed: %v", err)
	}
	if err := del["gb"][0]; err != nil {
		t.Fatalf("delete unsubscribed: %v", err)
	}

	// DeleteGroups: a group with members is refused; an empty one goes with its offsets.
	dr, err := adm.DeleteGroups(ctx, "live", "simple", "unknown-group")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(dr["live"].Err, kerr.NonEmptyGroup) || dr["simple"].Err != nil || !errors.Is(dr["unknown-group"].Err, kerr.GroupIDNotFound) {
		t.Fatalf("delete groups: live %v simple %v unknown %v", dr["live"].Err, dr["simple"].Err, dr["unknown-group"].Err)
	}
	fetched, err = adm.FetchOffsets(ctx, "simple")
	if err != nil || len(fetched) != 0 {
		t.Fatalf("offsets of a deleted group: %v %v", fetched, err)
	}
	c.cl.Close() // leaves the group
	described, err = adm.DescribeGroups(ctx, "live")
	if err != nil || described["live"].State != "Empty" {
		t.Fatalf("after leave: %+v %v", described["live"], err)
	}
	if dr, err := adm.DeleteGroups(ctx, "live"); err != nil || dr["live"].Err != nil {
		t.Fatalf("delete empty group: %v %v", err, dr["live"].Err)
	}
}

func TestGroupOffsetsSurviveRestartAndCrash(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	adm := tb.admin(t)
	createTopic(t, adm, "gr", 3, nil)
	commit := func(adm *kadm.Client, group string, off int64) {
		t.Helper()
		var os kadm.Offsets
		for p := int32(0); p < 3; p++ {
			os.Add(kadm.Offset{Topic: "gr", Partition: p, At: off + int64(p), LeaderEpoch: 0, Metadata: "m"})
		}
		if r, err := adm.CommitOffsets(ctxT(t, 10*time.Second), group, os); err != nil || r.Error() != nil {
			t.Fatalf("commit: %v %v", err, r.Error())
		}
	}
	check := func(adm *kadm.Client, group string, off int64) {
		t.Helper()
		got, err := adm.FetchOffsets(ctxT(t, 10*time.Second), group)
		if err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 3; p++ {
			o, ok := got.Lookup("gr", p)
			if !ok || o.At != off+int64(p) || o.Metadata != "m" || o.LeaderEpoch != 0 {
				t.Fatalf("%s partition %d: %+v", group, p, o)
			}
		}
	}
	commit(adm, "g1", 10)
	tb.Close()

	tb2 := startBroker(t, dir)
	adm2 := tb2.admin(t)
	check(adm2, "g1", 10)
	commit(adm2, "g2", 20)
	tb2.abandon() // like SIGKILL: no Close, nothing flushed beyond what was acknowledged

	tb3 := startBroker(t, dir)
	adm3 := tb3.admin(t)
	check(adm3, "g1", 10)
	check(adm3, "g2", 20)
}

func TestGroupStaticMemberRestartKeepsAssignment(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	const topic, group = "gs", "static"
	createTopic(t, tb.admin(t), topic, 4, nil)
	a := newGroupConsumer(t, tb, group, topic, kgo.RangeBalancer(), kgo.InstanceID("ia"))
	pollUntil(t, 20*time.Second, "a to own every partition", func() bool { return a.ownedCount() == 4 }, a)
	b := newGroupConsumer(t, tb, group, topic, kgo.RangeBalancer(), kgo.InstanceID("ib"))
	pollUntil(t, 30*time.Second, "split", func() bool { return a.ownedCount() == 2 && b.ownedCount() == 2 }, a, b)
	a.mu.Lock()
	aParts := fmt.Sprint(a.owned)
	a.mu.Unlock()
	b.mu.Lock()
	bRevoked, bAssigned := len(b.revoked), b.assigned
	b.mu.Unlock()

	// a restarts: a static member's Close does not leave the group, and its replacement with
	// the same instance ID is handed the old assignment without a rebalance.
	a.cl.Close()
	a2 := newGroupConsumer(t, tb, group, topic, kgo.RangeBalancer(), kgo.InstanceID("ia"))
	pollUntil(t, 20*time.Second, "a2 to own a's partitions", func() bool { return a2.ownedCount() == 2 }, a2, b)
	a2.mu.Lock()
	a2Parts := fmt.Sprint(a2.owned)
	a2.mu.Unlock()
	if a2Parts != aParts {
		t.Fatalf("restarted static member got %s, had %s", a2Parts, aParts)
	}
	for i := 0; i < 3; i++ { // let any rebalance show up
		b.poll(context.Background())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.revoked) != bRevoked || b.assigned != bAssigned {
		t.Fatalf("b saw a rebalance: revoked %v, assignments %d -> %d", b.revoked[bRevoked:], bAssigned, b.assigned)
	}
	d, err := tb.admin(t).DescribeGroups(ctxT(t, 10*time.Second), group)
	if err != nil {
		t.Fatal(err)
	}
	if g := d[group]; g.State != "Stable" || len(g.Members) != 2 {
		t.Fatalf("group %+v", g)
	}
}

// TestDescribeMissingGroupAuthorizedOperations: below v6 a group that does not exist is
// answered Dead without an error, and Kafka then lists the authorized operations (all the
// group's, without an authorizer); v6 answers GROUP_ID_NOT_FOUND without them.
func TestDescribeMissingGroupAuthorizedOperations(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	const allGroupOps = 1<<kmsg.ACLOperationRead | 1<<kmsg.ACLOperationDelete | 1<<kmsg.ACLOperationDescribe |
		1<<kmsg.ACLOperationDescribeConfigs | 1<<kmsg.ACLOperationAlterConfigs // 3400, as Kafka 4.0
	for _, c := range []struct {
		version int16
		code    int16
		ops     int32
	}{{3, 0, allGroupOps}, {5, 0, allGroupOps}, {6, kerr.GroupIDNotFound.Code, -2147483648}} {
		v := kversion.Stable()
		v.SetMaxKeyVersion(int16(kmsg.DescribeGroups), c.version)
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups, req.IncludeAuthorizedOperations = []string{"nobody-here"}, true
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), tb.client(t, kgo.MaxVersions(v)))
		if err != nil {
			t.Fatal(err)
		}
		g := resp.Groups[0]
		if g.ErrorCode != c.code || g.State != "Dead" || g.AuthorizedOperations != c.ops {
			t.Errorf("v%d: error %d state %q ops %d, want error %d, Dead, ops %d", c.version, g.ErrorCode, g.State, g.AuthorizedOperations, c.code, c.ops)
		}
	}
}
