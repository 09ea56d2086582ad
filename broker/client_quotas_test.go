package broker

import (
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func alterQuotas(t *testing.T, cl *kgo.Client, validateOnly bool, entries ...kmsg.AlterClientQuotasRequestEntry) *kmsg.AlterClientQuotasResponse {
	t.Helper()
	req := kmsg.NewPtrAlterClientQuotasRequest()
	req.Entries, req.ValidateOnly = entries, validateOnly
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func quotaEntry(ops map[string]float64, parts ...string) kmsg.AlterClientQuotasRequestEntry {
	e := kmsg.NewAlterClientQuotasRequestEntry()
	for i := 0; i+1 < len(parts); i += 2 {
		ed := kmsg.NewAlterClientQuotasRequestEntryEntity()
		ed.Type = parts[i]
		if parts[i+1] != "<default>" {
			ed.Name = kmsg.StringPtr(parts[i+1])
		}
		e.Entity = append(e.Entity, ed)
	}
	for k, v := range ops {
		op := kmsg.NewAlterClientQuotasRequestEntryOp()
		op.Key, op.Value, op.Remove = k, v, v < 0 && v == -1
		e.Ops = append(e.Ops, op)
	}
	return e
}

func describeQuotas(t *testing.T, cl *kgo.Client, strict bool, comps ...kmsg.DescribeClientQuotasRequestComponent) *kmsg.DescribeClientQuotasResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeClientQuotasRequest()
	req.Components, req.Strict = comps, strict
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func quotaComp(typ string, mt kmsg.QuotasMatchType, match *string) kmsg.DescribeClientQuotasRequestComponent {
	c := kmsg.NewDescribeClientQuotasRequestComponent()
	c.EntityType, c.MatchType, c.Match = typ, mt, match
	return c
}

// TestClientQuotasAPIs alters and describes quotas over the wire (both versions), checks
// Kafka's validation errors and validate_only, and that the quotas survive a restart, also
// after the metadata log is compacted.
func TestClientQuotasAPIs(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	cl := tb.client(t)

	resp := alterQuotas(t, cl, false,
		quotaEntry(map[string]float64{"producer_byte_rate": 1024, "request_percentage": 12.5}, "client-id", "app"),
		quotaEntry(map[string]float64{"consumer_byte_rate": 2048}, "user", "<default>"),
		quotaEntry(map[string]float64{"producer_byte_rate": 4096}, "user", "alice", "client-id", "<default>"),
		quotaEntry(map[string]float64{"bogus_key": 1}, "client-id", "bad"),
		quotaEntry(map[string]float64{"producer_byte_rate": -1.5}, "client-id", "neg"),
		quotaEntry(map[string]float64{"producer_byte_rate": 10.5}, "client-id", "frac"),
		quotaEntry(map[string]float64{"producer_byte_rate": 1}, "group", "g"),
	)
	want := []struct {
		code int16
		msg  string
	}{{0, ""}, {0, ""}, {0, ""},
		{kerr.InvalidRequest.Code, "Invalid configuration key bogus_key"},
		{kerr.InvalidRequest.Code, "Quota producer_byte_rate must be greater than 0"},
		{kerr.InvalidRequest.Code, "producer_byte_rate cannot be a fractional value."},
		{kerr.InvalidRequest.Code, "Unhandled client quota entity type: group"},
	}
	if len(resp.Entries) != len(want) {
		t.Fatalf("%d entries: %+v", len(resp.Entries), resp.Entries)
	}
	for i, w := range want {
		e := resp.Entries[i]
		if e.ErrorCode != w.code || w.msg != "" && (e.ErrorMessage == nil || *e.ErrorMessage != w.msg) || w.msg == "" && e.ErrorMessage != nil {
			t.Errorf("entry %d: code %d msg %v, want %d %q", i, e.ErrorCode, e.ErrorMessage, w.code, w.msg)
		}
	}
	// validate_only: accepted, not stored.
	if r := alterQuotas(t, cl, true, quotaEntry(map[string]float64{"producer_byte_rate": 99}, "client-id", "dry")); r.Entries[0].ErrorCode != 0 {
		t.Fatalf("validate_only: %+v", r.Entries)
	}

	check := func(cl *kgo.Client) {
		t.Helper()
		all := describeQuotas(t, cl, false)
		if all.ErrorCode != 0 || len(all.Entries) != 3 {
			t.Fatalf("describe all: code %d, %d entries %+v", all.ErrorCode, len(all.Entries), all.Entries)
		}
		app := describeQuotas(t, cl, true, quotaComp("client-id", kmsg.QuotasMatchTypeExact, kmsg.StringPtr("app")))
		if len(app.Entries) != 1 || len(app.Entries[0].Values) != 2 ||
			app.Entries[0].Values[0].Key != "producer_byte_rate" || app.Entries[0].Values[0].Value != 1024 ||
			app.Entries[0].Values[1].Key != "request_percentage" || app.Entries[0].Values[1].Value != 12.5 {
			t.Fatalf("describe client-id app: %+v", app.Entries)
		}
		def := describeQuotas(t, cl, true, quotaComp("user", kmsg.QuotasMatchTypeDefault, nil))
		if len(def.Entries) != 1 || def.Entries[0].Entity[0].Name != nil || def.Entries[0].Values[0].Value != 2048 {
			t.Fatalf("describe default user: %+v", def.Entries)
		}
		// user alice + any client-id, strict: the combination entity only.
		combo := describeQuotas(t, cl, true, quotaComp("user", kmsg.QuotasMatchTypeExact, kmsg.StringPtr("alice")), quotaComp("client-id", kmsg.QuotasMatchTypeAny, nil))
		if len(combo.Entries) != 1 || len(combo.Entries[0].Entity) != 2 {
			t.Fatalf("describe alice+any: %+v", combo.Entries)
		}
		if dry := describeQuotas(t, cl, false, quotaComp("client-id", kmsg.QuotasMatchTypeExact, kmsg.StringPtr("dry"))); len(dry.Entries) != 0 || dry.Entries == nil {
			t.Fatalf("validate_only stored, or null entries: %+v", dry.Entries)
		}
	}
	check(cl)
	// Errors of a filter Kafka refuses.
	if r := describeQuotas(t, cl, false, quotaComp("client-id", kmsg.QuotasMatchTypeExact, nil)); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("exact without name: %d", r.ErrorCode)
	}
	if r := describeQuotas(t, cl, false, quotaComp("group", kmsg.QuotasMatchTypeAny, nil)); r.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("unknown entity type: %d", r.ErrorCode)
	}
	// v0 (not flexible) answers the same.
	req := kmsg.NewPtrDescribeClientQuotasRequest()
	req.Version = 0
	r0, err := req.RequestWith(ctxT(t, 5*time.Second), cl)
	if err != nil || len(r0.Entries) != 3 {
		t.Fatalf("v0: %v %+v", err, r0)
	}
	// Remove one key.
	if r := alterQuotas(t, cl, false, quotaEntry(map[string]float64{"request_percentage": -1}, "client-id", "app")); r.Entries[0].ErrorCode != 0 {
		t.Fatalf("remove: %+v", r.Entries)
	}
	app := describeQuotas(t, cl, true, quotaComp("client-id", kmsg.QuotasMatchTypeExact, kmsg.StringPtr("app")))
	if len(app.Entries) != 1 || len(app.Entries[0].Values) != 1 {
		t.Fatalf("after remove: %+v", app.Entries)
	}
	alterQuotas(t, cl, false, quotaEntry(map[string]float64{"request_percentage": 12.5}, "client-id", "app"))

	// Restart: the quotas come back from the metadata log.
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	tb = startBroker(t, dir)
	check(tb.client(t))
	// And from a compacted snapshot of it.
	tb.mu.Lock()
	if err := tb.meta.Compact(tb.metaSnapshotLocked()); err != nil {
		t.Fatal(err)
	}
	tb.mu.Unlock()
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	tb = startBroker(t, dir)
	check(tb.client(t))
}

// TestClientQuotasACL: with ACLs, describing needs DESCRIBE_CONFIGS and altering
// ALTER_CONFIGS on the cluster, as in Kafka.
func TestClientQuotasACL(t *testing.T) {
	tb := startBroker(t, t.TempDir(), func(c *Config) { c.ACL = ACLConfig{Enabled: true} })
	cl := tb.client(t) // ANONYMOUS, no ACLs
	if r := describeQuotas(t, cl, false); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("describe without ACL: %d", r.ErrorCode)
	}
	r := alterQuotas(t, cl, false, quotaEntry(map[string]float64{"producer_byte_rate": 10}, "client-id", "x"))
	if len(r.Entries) != 1 || r.Entries[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("alter without ACL: %+v", r.Entries)
	}
	if n := len(tb.quotas.Snapshot()); n != 0 {
		t.Fatalf("stored %d quotas without permission", n)
	}
}

// sendAs writes req on c with the given client ID.
func sendAs(t *testing.T, c net.Conn, clientID string, req kmsg.Request, corr int32) {
	t.Helper()
	if _, err := c.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID)).AppendRequest(nil, req, corr)); err != nil {
		t.Fatal(err)
	}
}

// TestProduceQuotaThrottles: a producer over its client-id's producer_byte_rate gets the
// throttle time in the Produce answer at once, and the next request on its connection is not
// answered before that time has passed (the connection is muted); another client-id is not
// throttled.
func TestProduceQuotaThrottles(t *testing.T) {
	tb := startBroker(t, t.TempDir(), func(c *Config) { c.QuotaWindowNum, c.QuotaWindow = 2, 100*time.Millisecond })
	cl := tb.client(t)
	createTopic(t, tb.admin(t), "q", 1, nil)
	if r := alterQuotas(t, cl, false, quotaEntry(map[string]float64{"producer_byte_rate": 10000}, "client-id", "slow")); r.Entries[0].ErrorCode != 0 {
		t.Fatal(r.Entries)
	}
	produce := func(v int16) *kmsg.ProduceRequest {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = v, 1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "q"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = rawBatch(-1, -1, -1, 200, time.Now().UnixMilli(), 0) // ~2.7 KB
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	// The first request is counted over a window padded to one sample (100 ms): its rate is
	// size / 0.1 s, the throttle (rate - quota) / quota * 100 ms.
	rc := dialRaw(t, tb.addr)
	req := produce(9)
	sizeReq := len(kmsg.NewRequestFormatter(kmsg.FormatterClientID("slow")).AppendRequest(nil, req, 1)) - 4
	wantMs := int32((float64(sizeReq)/0.1 - 10000) / 10000 * 100)
	start := time.Now()
	sendAs(t, rc, "slow", req, 1)
	pr := req.ResponseKind().(*kmsg.ProduceResponse)
	readResponse(t, rc, pr, pr.IsFlexible())
	got := time.Since(start)
	if pr.Topics[0].Partitions[0].ErrorCode != 0 || pr.ThrottleMillis < wantMs-1 || pr.ThrottleMillis > wantMs+1 {
		t.Fatalf("produce answer: error %d, throttle %d ms, want %d (request %d B)", pr.Topics[0].Partitions[0].ErrorCode, pr.ThrottleMillis, wantMs, sizeReq)
	}
	if got > time.Duration(pr.ThrottleMillis)*time.Millisecond {
		t.Logf("produce answer took %v (slow machine?)", got)
	}
	// A client that ignores the throttle time and sends at once waits all the same.
	sendAs(t, rc, "slow", kmsg.NewPtrMetadataRequest(), 2)
	mr := kmsg.NewPtrMetadataResponse()
	readResponse(t, rc, mr, mr.IsFlexible())
	if waited := time.Since(start); waited < time.Duration(pr.ThrottleMillis-20)*time.Millisecond {
		t.Fatalf("the request after a throttled produce was answered after %v, before the %d ms mute ended", waited, pr.ThrottleMillis)
	}
	// Another client-id has no quota.
	other := dialRaw(t, tb.addr)
	sendAs(t, other, "fast", produce(9), 1)
	op := kmsg.NewPtrProduceResponse()
	op.Version = 9
	readResponse(t, other, op, true)
	if op.ThrottleMillis != 0 {
		t.Fatalf("unquoted client throttled %d ms", op.ThrottleMillis)
	}
	// A pre-KIP-219 version (v5) gets its answer delayed by the throttle instead.
	old := dialRaw(t, tb.addr)
	start = time.Now()
	sendAs(t, old, "slow", produce(5), 1)
	or := kmsg.NewPtrProduceResponse()
	or.Version = 5
	readResponse(t, old, or, false)
	if or.ThrottleMillis <= 0 || time.Since(start) < time.Duration(or.ThrottleMillis-20)*time.Millisecond {
		t.Fatalf("v5: throttle %d ms, answered after %v", or.ThrottleMillis, time.Since(start))
	}
}

// TestRequestQuotaThrottles: with a request_percentage quota far below any handler's time,
// every request of that client-id is throttled (at most one quota window, as Kafka caps it);
// ApiVersions is exempt.
func TestRequestQuotaThrottles(t *testing.T) {
	tb := startBroker(t, t.TempDir(), func(c *Config) { c.QuotaWindowNum, c.QuotaWindow = 2, 100*time.Millisecond })
	cl := tb.client(t)
	if r := alterQuotas(t, cl, false, quotaEntry(map[string]float64{"request_percentage": 1e-9}, "client-id", "busy")); r.Entries[0].ErrorCode != 0 {
		t.Fatal(r.Entries)
	}
	c := dialRaw(t, tb.addr)
	sendAs(t, c, "busy", kmsg.NewPtrApiVersionsRequest(), 1)
	av := kmsg.NewPtrApiVersionsResponse()
	readResponse(t, c, av, false)
	if av.ThrottleMillis != 0 {
		t.Fatalf("ApiVersions throttled %d ms", av.ThrottleMillis)
	}
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.Version = 12
	sendAs(t, c, "busy", mreq, 2)
	md := kmsg.NewPtrMetadataResponse()
	md.Version = 12
	readResponse(t, c, md, md.IsFlexible())
	if md.ThrottleMillis <= 0 || md.ThrottleMillis > 100 {
		t.Fatalf("Metadata throttle %d ms, want 1..100", md.ThrottleMillis)
	}
	other := dialRaw(t, tb.addr)
	sendAs(t, other, "idle", mreq, 1)
	mo := kmsg.NewPtrMetadataResponse()
	mo.Version = 12
	readResponse(t, other, mo, mo.IsFlexible())
	if mo.ThrottleMillis != 0 {
		t.Fatalf("unquoted client throttled %d ms", mo.ThrottleMillis)
	}
}
