package broker

// Integration tests of ACLs (acls.go, authorize.go) over SASL: the super user "admin" grants
// alice ACLs through CreateAcls; bob has none. Each family (admin, produce, consume, group,
// transactional) checks an allowed and a denied principal against Kafka 4.0's error codes.

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func aclOn(c *Config) {
	saslOn(mechPlain, mechScramSHA256)(c)
	c.ACL = ACLConfig{Enabled: true, SuperUsers: []string{"User:admin"}}
}

// aclBroker starts an ACL-enabled broker with SCRAM users alice and bob (password user+"-pw").
func aclBroker(t *testing.T, dir string) *testBroker {
	t.Helper()
	tb := startBroker(t, dir, aclOn)
	adm := kadm.NewClient(tb.as(t, "admin"))
	res, err := adm.AlterUserSCRAMs(ctxT(t, 10*time.Second), nil, []kadm.UpsertSCRAM{
		{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "alice-pw"},
		{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "bob-pw"},
	})
	if err != nil || res.Error() != nil {
		t.Fatalf("creating users: %v %v", err, res.Error())
	}
	return tb
}

// as is a client logged in as user (SCRAM-SHA-256; admin with PLAIN).
func (tb *testBroker) as(t *testing.T, user string, opts ...kgo.Opt) *kgo.Client {
	m := mechanism(mechScramSHA256, user, user+"-pw")
	if user == "admin" {
		m = mechanism(mechPlain, "admin", "admin-secret")
	}
	return tb.client(t, append([]kgo.Opt{kgo.SASL(m)}, opts...)...)
}

// grant creates ALLOW (or DENY) bindings for a principal as the super user.
func grant(t *testing.T, tb *testBroker, perm kmsg.ACLPermissionType, principal string, rt kmsg.ACLResourceType, name string, pt kmsg.ACLResourcePatternType, ops ...kmsg.ACLOperation) {
	t.Helper()
	req := kmsg.NewPtrCreateACLsRequest()
	for _, op := range ops {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = rt, name, pt
		c.Principal, c.Host, c.Operation, c.PermissionType = principal, "*", op, perm
		req.Creations = append(req.Creations, c)
	}
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), tb.as(t, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Results {
		if r.ErrorCode != 0 {
			t.Fatalf("CreateAcls: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
		}
	}
}

func allowTopic(t *testing.T, tb *testBroker, principal, name string, ops ...kmsg.ACLOperation) {
	grant(t, tb, kmsg.ACLPermissionTypeAllow, principal, kmsg.ACLResourceTypeTopic, name, kmsg.ACLResourcePatternTypeLiteral, ops...)
}

// direct sends a request straight to the broker.
func direct(cl *kgo.Client) *kgo.Broker { return cl.SeedBrokers()[0] }

func code(t *testing.T, c int16, want *kerr.Error, what string) {
	t.Helper()
	if got := kerr.ErrorForCode(c); got != want && !(want == nil && c == 0) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
}

// TestACLAdmin: ACL administration needs the cluster permissions, Kafka's validation and
// filters apply, bindings survive a restart; topic administration is authorized per topic.
func TestACLAdmin(t *testing.T) {
	dir := t.TempDir()
	tb := aclBroker(t, dir)
	admin, bob := tb.as(t, "admin"), tb.as(t, "bob")
	ctx := ctxT(t, 30*time.Second)

	// bob may neither describe nor create ACLs.
	d := kmsg.NewPtrDescribeACLsRequest()
	d.ResourceType, d.ResourcePatternType, d.Operation, d.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	dr, err := d.RequestWith(ctx, direct(bob))
	if err != nil {
		t.Fatal(err)
	}
	code(t, dr.ErrorCode, kerr.ClusterAuthorizationFailed, "bob DescribeAcls")
	c := kmsg.NewPtrCreateACLsRequest()
	cr := kmsg.NewCreateACLsRequestCreation()
	cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, "x", kmsg.ACLResourcePatternTypeLiteral
	cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:bob", "*", kmsg.ACLOperationAll, kmsg.ACLPermissionTypeAllow
	c.Creations = append(c.Creations, cr)
	crr, err := c.RequestWith(ctx, direct(bob))
	if err != nil {
		t.Fatal(err)
	}
	code(t, crr.Results[0].ErrorCode, kerr.ClusterAuthorizationFailed, "bob CreateAcls")

	// Invalid creations get INVALID_REQUEST; valid ones in the same request are created.
	bad := cr
	bad.ResourceType, bad.ResourceName = kmsg.ACLResourceTypeCluster, "not-the-cluster"
	bad2 := cr
	bad2.ResourcePatternType = kmsg.ACLResourcePatternTypeMatch
	c.Creations = []kmsg.CreateACLsRequestCreation{bad, cr, bad2}
	if crr, err = c.RequestWith(ctx, direct(admin)); err != nil {
		t.Fatal(err)
	}
	code(t, crr.Results[0].ErrorCode, kerr.InvalidRequest, "cluster ACL with a wrong name")
	code(t, crr.Results[1].ErrorCode, nil, "valid creation")
	code(t, crr.Results[2].ErrorCode, kerr.InvalidRequest, "MATCH pattern")

	allowTopic(t, tb, "User:alice", "orders", kmsg.ACLOperationRead, kmsg.ACLOperationWrite)
	grant(t, tb, kmsg.ACLPermissionTypeAllow, "User:alice", kmsg.ACLResourceTypeTopic, "alice-", kmsg.ACLResourcePatternTypePrefixed, kmsg.ACLOperationAll)
	grant(t, tb, kmsg.ACLPermissionTypeAllow, "User:alice", kmsg.ACLResourceTypeGroup, "g", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationRead)

	// MATCH on topic "alice-x" finds the prefixed binding only; LITERAL "orders" both its ops.
	d.ResourceType, d.ResourceName, d.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.StringPtr("alice-x"), kmsg.ACLResourcePatternTypeMatch
	if dr, err = d.RequestWith(ctx, direct(admin)); err != nil {
		t.Fatal(err)
	}
	if len(dr.Resources) != 1 || dr.Resources[0].ResourceName != "alice-" || dr.Resources[0].ResourcePatternType != kmsg.ACLResourcePatternTypePrefixed || len(dr.Resources[0].ACLs) != 1 {
		t.Fatalf("MATCH alice-x: %+v", dr.Resources)
	}
	d.ResourceName, d.ResourcePatternType = kmsg.StringPtr("orders"), kmsg.ACLResourcePatternTypeLiteral
	if dr, err = d.RequestWith(ctx, direct(admin)); err != nil {
		t.Fatal(err)
	}
	if len(dr.Resources) != 1 || len(dr.Resources[0].ACLs) != 2 {
		t.Fatalf("LITERAL orders: %+v", dr.Resources)
	}
	uf := *d
	uf.Operation = kmsg.ACLOperationUnknown
	if dr, err = uf.RequestWith(ctx, direct(admin)); err != nil {
		t.Fatal(err)
	}
	code(t, dr.ErrorCode, kerr.InvalidRequest, "filter with UNKNOWN")

	// Topic administration: alice creates under her prefix only, may not delete orders.
	alice := kadm.NewClient(tb.as(t, "alice"))
	ct, err := alice.CreateTopics(ctx, 1, 1, nil, "alice-t", "bobs-t")
	if err != nil {
		t.Fatal(err)
	}
	if ct["alice-t"].Err != nil || !errors.Is(ct["bobs-t"].Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("create: alice-t %v, bobs-t %v", ct["alice-t"].Err, ct["bobs-t"].Err)
	}
	createTopic(t, kadm.NewClient(admin), "orders", 1, nil)
	dt, err := alice.DeleteTopics(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(dt["orders"].Err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("delete orders: %v", dt["orders"].Err)
	}
	// A topic alice may DESCRIBE but that does not exist is unknown; one she may not is denied.
	dtr := kmsg.NewPtrDeleteTopicsRequest()
	dtr.TopicNames = []string{"alice-ghost", "ghost"}
	for _, n := range dtr.TopicNames {
		dtt := kmsg.NewDeleteTopicsRequestTopic()
		dtt.Topic = kmsg.StringPtr(n)
		dtr.Topics = append(dtr.Topics, dtt)
	}
	dtrr, err := dtr.RequestWith(ctx, direct(tb.as(t, "alice")))
	if err != nil {
		t.Fatal(err)
	}
	code(t, dtrr.Topics[0].ErrorCode, kerr.UnknownTopicOrPartition, "delete alice-ghost")
	code(t, dtrr.Topics[1].ErrorCode, kerr.TopicAuthorizationFailed, "delete ghost")
	dc := kmsg.NewPtrDescribeConfigsRequest()
	for _, name := range []string{"orders", "alice-t"} {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, name
		dc.Resources = append(dc.Resources, r)
	}
	dcr, err := dc.RequestWith(ctx, direct(tb.as(t, "alice")))
	if err != nil {
		t.Fatal(err)
	}
	code(t, dcr.Resources[0].ErrorCode, kerr.TopicAuthorizationFailed, "describe configs orders")
	code(t, dcr.Resources[1].ErrorCode, nil, "describe configs alice-t")
	dc.Resources = dc.Resources[:1]
	dc.Resources[0].ResourceType, dc.Resources[0].ResourceName = kmsg.ConfigResourceTypeBroker, "0"
	if dcr, err = dc.RequestWith(ctx, direct(bob)); err != nil {
		t.Fatal(err)
	}
	code(t, dcr.Resources[0].ErrorCode, kerr.ClusterAuthorizationFailed, "bob describe broker configs")
	// Altering needs ALTER_CONFIGS: alice has it (ALL) on alice-t only.
	ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for _, name := range []string{"orders", "alice-t"} {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, name
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("60000")
		r.Configs = append(r.Configs, c)
		ia.Resources = append(ia.Resources, r)
	}
	iar, err := ia.RequestWith(ctx, direct(tb.as(t, "alice")))
	if err != nil {
		t.Fatal(err)
	}
	code(t, iar.Resources[0].ErrorCode, kerr.TopicAuthorizationFailed, "alter orders' configs")
	code(t, iar.Resources[1].ErrorCode, nil, "alter alice-t's configs")

	// DeleteAcls removes what its filter matches; bindings are durable across a restart.
	del := kmsg.NewPtrDeleteACLsRequest()
	f := kmsg.NewDeleteACLsRequestFilter()
	f.ResourceType, f.ResourceName, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.StringPtr("x"), kmsg.ACLResourcePatternTypeAny
	f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	del.Filters = append(del.Filters, f)
	delr, err := del.RequestWith(ctx, direct(admin))
	if err != nil {
		t.Fatal(err)
	}
	if delr.Results[0].ErrorCode != 0 || len(delr.Results[0].MatchingACLs) != 1 || delr.Results[0].MatchingACLs[0].Principal != "User:bob" {
		t.Fatalf("DeleteAcls: %+v", delr.Results)
	}
	want := tb.acls.All()
	if len(want) != 4 {
		t.Fatalf("%d bindings before restart: %v", len(want), want)
	}
	tb.Close()
	tb2 := startBroker(t, dir, aclOn)
	got := tb2.acls.All()
	if len(got) != len(want) {
		t.Fatalf("after restart %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("after restart %v, want %v", got, want)
		}
	}
	if !tb2.authz.Authorize("User:alice", "127.0.0.1", kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, "alice-t") {
		t.Fatal("alice lost DESCRIBE on alice-t across the restart")
	}
	// Compaction rewrites the metadata log as a snapshot: the bindings survive it, the deleted
	// one stays deleted.
	tb2.mu.Lock()
	err = tb2.meta.Compact(tb2.metaSnapshotLocked())
	tb2.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	tb2.Close()
	tb3 := startBroker(t, dir, aclOn)
	if got := tb3.acls.All(); len(got) != len(want) || got[0] != want[0] || got[3] != want[3] {
		t.Fatalf("after compaction and restart %v, want %v", got, want)
	}
}

// TestACLProduce: WRITE on a topic lets alice produce (idempotently, so InitProducerId is
// authorized by her topic WRITE); a topic without it, and bob anywhere, get
// TOPIC_AUTHORIZATION_FAILED; bob's InitProducerId CLUSTER_AUTHORIZATION_FAILED; Metadata
// hides topics and refuses auto-creation without CREATE.
func TestACLProduce(t *testing.T) {
	tb := aclBroker(t, t.TempDir())
	ctx := ctxT(t, 30*time.Second)
	adm := kadm.NewClient(tb.as(t, "admin"))
	createTopic(t, adm, "orders", 1, nil)
	createTopic(t, adm, "secret", 1, nil)
	allowTopic(t, tb, "User:alice", "orders", kmsg.ACLOperationWrite)

	alice := tb.as(t, "alice")
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("a")}).FirstErr(); err != nil {
		t.Fatalf("alice produce orders: %v", err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "secret", Value: []byte("a")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produce secret: %v", err)
	}
	bob := tb.as(t, "bob", kgo.DisableIdempotentWrite())
	if err := bob.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("b")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob produce orders: %v", err)
	}
	ip := kmsg.NewPtrInitProducerIDRequest()
	ipr, err := ip.RequestWith(ctx, direct(bob))
	if err != nil {
		t.Fatal(err)
	}
	code(t, ipr.ErrorCode, kerr.ClusterAuthorizationFailed, "bob InitProducerId")
	if ipr, err = ip.RequestWith(ctx, direct(alice)); err != nil {
		t.Fatal(err)
	}
	code(t, ipr.ErrorCode, nil, "alice InitProducerId")

	// Metadata: all topics shows alice only orders (WRITE implies DESCRIBE), with her
	// authorized operations; secret by name is denied; a new topic is not auto-created.
	md := kmsg.NewPtrMetadataRequest()
	md.IncludeTopicAuthorizedOperations = true
	mr, err := md.RequestWith(ctx, direct(alice))
	if err != nil {
		t.Fatal(err)
	}
	if len(mr.Topics) != 1 || *mr.Topics[0].Topic != "orders" {
		t.Fatalf("alice sees %d topics", len(mr.Topics))
	}
	if ops := mr.Topics[0].AuthorizedOperations; ops != 1<<kmsg.ACLOperationWrite|1<<kmsg.ACLOperationDescribe {
		t.Fatalf("alice's operations on orders: %b", ops)
	}
	for _, name := range []string{"secret", "brand-new"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		md.Topics = []kmsg.MetadataRequestTopic{mt}
		md.AllowAutoTopicCreation = true
		if mr, err = md.RequestWith(ctx, direct(alice)); err != nil {
			t.Fatal(err)
		}
		code(t, mr.Topics[0].ErrorCode, kerr.TopicAuthorizationFailed, "alice metadata "+name)
	}
	// DESCRIBE without CREATE: still no auto-creation.
	allowTopic(t, tb, "User:alice", "brand-new", kmsg.ACLOperationDescribe)
	if mr, err = md.RequestWith(ctx, direct(alice)); err != nil {
		t.Fatal(err)
	}
	code(t, mr.Topics[0].ErrorCode, kerr.TopicAuthorizationFailed, "alice auto-create without CREATE")
	if tb.topic("brand-new") != nil {
		t.Fatal("brand-new was created")
	}
	allowTopic(t, tb, "User:alice", "brand-new", kmsg.ACLOperationCreate)
	if mr, err = md.RequestWith(ctx, direct(alice)); err != nil {
		t.Fatal(err)
	}
	// Created; the creating request is answered UNKNOWN_TOPIC_OR_PARTITION, as Kafka 4.0.
	code(t, mr.Topics[0].ErrorCode, kerr.UnknownTopicOrPartition, "alice auto-create with CREATE")
	if tb.topic("brand-new") == nil {
		t.Fatal("brand-new was not created")
	}
	if mr, err = md.RequestWith(ctx, direct(alice)); err != nil {
		t.Fatal(err)
	}
	code(t, mr.Topics[0].ErrorCode, nil, "alice metadata of the auto-created topic")
}

// TestACLConsume: READ on the topic and the group lets alice consume in a group and commit;
// bob's Fetch and ListOffsets get TOPIC_AUTHORIZATION_FAILED; a DENY for alice wins.
func TestACLConsume(t *testing.T) {
	tb := aclBroker(t, t.TempDir())
	ctx := ctxT(t, 30*time.Second)
	admin := tb.as(t, "admin")
	createTopic(t, kadm.NewClient(admin), "orders", 1, nil)
	if err := admin.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	allowTopic(t, tb, "User:alice", "orders", kmsg.ACLOperationRead)
	grant(t, tb, kmsg.ACLPermissionTypeAllow, "User:alice", kmsg.ACLResourceTypeGroup, "g", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationRead)

	alice := tb.as(t, "alice", kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("g"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	var got int
	for got == 0 {
		fs := alice.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("alice consumed nothing before the deadline")
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("alice fetch %s/%d: %v", tp, p, err) })
		got += len(fs.Records())
	}
	if err := alice.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("alice commit: %v", err)
	}

	bob := tb.as(t, "bob")
	f := kmsg.NewPtrFetchRequest()
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "orders", tb.topic("orders").id
	fp := kmsg.NewFetchRequestTopicPartition()
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	f.MaxBytes = 1 << 20
	fr, err := f.RequestWith(ctx, direct(bob))
	if err != nil {
		t.Fatal(err)
	}
	code(t, fr.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed, "bob fetch")
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "orders"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	lor, err := lo.RequestWith(ctx, direct(bob))
	if err != nil {
		t.Fatal(err)
	}
	code(t, lor.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed, "bob list offsets")

	// Deny wins over the allow.
	grant(t, tb, kmsg.ACLPermissionTypeDeny, "User:alice", kmsg.ACLResourceTypeTopic, "ord", kmsg.ACLResourcePatternTypePrefixed, kmsg.ACLOperationRead)
	if fr, err = f.RequestWith(ctx, direct(tb.as(t, "alice"))); err != nil {
		t.Fatal(err)
	}
	code(t, fr.Topics[0].Partitions[0].ErrorCode, kerr.TopicAuthorizationFailed, "alice fetch after DENY")
}

// TestACLGroups: group APIs need READ (join, commit), DESCRIBE (describe, offsets, find
// coordinator) or DELETE on the group, with GROUP_AUTHORIZATION_FAILED where Kafka answers it.
func TestACLGroups(t *testing.T) {
	tb := aclBroker(t, t.TempDir())
	ctx := ctxT(t, 30*time.Second)
	createTopic(t, kadm.NewClient(tb.as(t, "admin")), "orders", 1, nil)
	allowTopic(t, tb, "User:alice", "orders", kmsg.ACLOperationRead)
	grant(t, tb, kmsg.ACLPermissionTypeAllow, "User:alice", kmsg.ACLResourceTypeGroup, "g", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationRead)
	alice, bob := tb.as(t, "alice"), tb.as(t, "bob")

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys = []string{"g", "other"}
	fcr, err := fc.RequestWith(ctx, direct(alice))
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]int16{}
	for _, c := range fcr.Coordinators {
		byKey[c.Key] = c.ErrorCode
	}
	code(t, byKey["g"], nil, "find coordinator g")
	code(t, byKey["other"], kerr.GroupAuthorizationFailed, "find coordinator other")

	for _, cl := range []*kgo.Client{alice, bob} {
		j := kmsg.NewPtrJoinGroupRequest()
		j.Group, j.ProtocolType, j.SessionTimeoutMillis, j.RebalanceTimeoutMillis = "other", "consumer", 10000, 10000
		j.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
		jr, err := j.RequestWith(ctx, direct(cl))
		if err != nil {
			t.Fatal(err)
		}
		code(t, jr.ErrorCode, kerr.GroupAuthorizationFailed, "join other")
	}

	// Commit: group g allowed, but a topic without READ fails per partition.
	createTopic(t, kadm.NewClient(tb.as(t, "admin")), "secret", 1, nil)
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = "g", -1
	for _, topic := range []string{"orders", "secret"} {
		ot := kmsg.NewOffsetCommitRequestTopic()
		ot.Topic = topic
		op := kmsg.NewOffsetCommitRequestTopicPartition()
		op.Offset = 0
		ot.Partitions = append(ot.Partitions, op)
		oc.Topics = append(oc.Topics, ot)
	}
	ocr, err := oc.RequestWith(ctx, direct(alice))
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int16{}
	for _, rt := range ocr.Topics {
		codes[rt.Topic] = rt.Partitions[0].ErrorCode
	}
	code(t, codes["orders"], nil, "commit orders")
	code(t, codes["secret"], kerr.TopicAuthorizationFailed, "commit secret")
	if ocr, err = oc.RequestWith(ctx, direct(bob)); err != nil {
		t.Fatal(err)
	}
	code(t, ocr.Topics[0].Partitions[0].ErrorCode, kerr.GroupAuthorizationFailed, "bob commit")

	// Describe with authorized operations; offsets; list filtered by DESCRIBE.
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups, dg.IncludeAuthorizedOperations = []string{"g"}, true
	dgr, err := dg.RequestWith(ctx, direct(alice))
	if err != nil {
		t.Fatal(err)
	}
	if g := dgr.Groups[0]; g.ErrorCode != 0 || g.AuthorizedOperations != 1<<kmsg.ACLOperationRead|1<<kmsg.ACLOperationDescribe {
		t.Fatalf("alice describes g: %v ops %b", kerr.ErrorForCode(g.ErrorCode), g.AuthorizedOperations)
	}
	if dgr, err = dg.RequestWith(ctx, direct(bob)); err != nil {
		t.Fatal(err)
	}
	code(t, dgr.Groups[0].ErrorCode, kerr.GroupAuthorizationFailed, "bob describes g")
	fo, err := kadm.NewClient(alice).FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatalf("alice fetch offsets: %v", err)
	}
	if o, ok := fo.Lookup("orders", 0); !ok || o.At != 0 {
		t.Fatalf("alice offsets: %+v", fo)
	}
	if _, err := kadm.NewClient(bob).FetchOffsets(ctx, "g"); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("bob fetch offsets: %v", err)
	}
	lg, err := kadm.NewClient(bob).ListGroups(ctx)
	if err != nil || len(lg) != 0 {
		t.Fatalf("bob lists groups: %v %v", lg.Groups(), err)
	}
	lg, err = kadm.NewClient(alice).ListGroups(ctx)
	if err != nil || len(lg) != 1 {
		t.Fatalf("alice lists groups: %v %v", lg.Groups(), err)
	}
	// Delete needs DELETE.
	dl, err := kadm.NewClient(alice).DeleteGroups(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(dl["g"].Err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("alice deletes g: %v", dl["g"].Err)
	}
}

// TestACLTransactions: WRITE on the transactional ID (with WRITE on the topic and READ on the
// group) lets alice run a transaction with offsets; another ID gets
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED from FindCoordinator and InitProducerId.
func TestACLTransactions(t *testing.T) {
	tb := aclBroker(t, t.TempDir())
	ctx := ctxT(t, 30*time.Second)
	createTopic(t, kadm.NewClient(tb.as(t, "admin")), "orders", 1, nil)
	allowTopic(t, tb, "User:alice", "orders", kmsg.ACLOperationWrite, kmsg.ACLOperationRead)
	grant(t, tb, kmsg.ACLPermissionTypeAllow, "User:alice", kmsg.ACLResourceTypeTransactionalId, "tx-a", kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLOperationWrite)

	alice := tb.as(t, "alice", kgo.TransactionalID("tx-a"))
	if err := alice.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("t")}).FirstErr(); err != nil {
		t.Fatalf("alice transactional produce: %v", err)
	}
	// AddOffsetsToTxn for a group alice may not READ.
	pid, epoch, err := alice.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "tx-a", pid, epoch, "g"
	aor, err := ao.RequestWith(ctx, direct(alice))
	if err != nil {
		t.Fatal(err)
	}
	code(t, aor.ErrorCode, kerr.GroupAuthorizationFailed, "AddOffsetsToTxn without group READ")
	if err := alice.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("alice commit: %v", err)
	}

	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionalID, ip.TransactionTimeoutMillis = kmsg.StringPtr("tx-b"), 10000
	ipr, err := ip.RequestWith(ctx, direct(tb.as(t, "alice")))
	if err != nil {
		t.Fatal(err)
	}
	code(t, ipr.ErrorCode, kerr.TransactionalIDAuthorizationFailed, "alice InitProducerId tx-b")
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType, fc.CoordinatorKeys = 1, []string{"tx-a", "tx-b"}
	fcr, err := fc.RequestWith(ctx, direct(tb.as(t, "alice")))
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]int16{}
	for _, c := range fcr.Coordinators {
		byKey[c.Key] = c.ErrorCode
	}
	code(t, byKey["tx-a"], nil, "find coordinator tx-a") // WRITE implies DESCRIBE
	code(t, byKey["tx-b"], kerr.TransactionalIDAuthorizationFailed, "find coordinator tx-b")
	et := kmsg.NewPtrEndTxnRequest()
	et.TransactionalID, et.ProducerID, et.ProducerEpoch = "tx-a", pid, epoch
	etr, err := et.RequestWith(ctx, direct(tb.as(t, "bob")))
	if err != nil {
		t.Fatal(err)
	}
	code(t, etr.ErrorCode, kerr.TransactionalIDAuthorizationFailed, "bob EndTxn tx-a")
}
