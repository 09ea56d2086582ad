package broker

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/klite/klite/broker/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// mutate sends req as clientID on a connection of its own (a throttled one is muted) and
// returns the answer.
func mutate[R kmsg.Response](t *testing.T, addr, clientID string, req kmsg.Request) R {
	t.Helper()
	c := dialRaw(t, addr)
	sendAs(t, c, clientID, req, 1)
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	readResponse(t, c, resp, resp.IsFlexible())
	return resp.(R)
}

func createTopicsReq(version int16, validateOnly bool, topics map[string]int32, order ...string) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.TimeoutMillis, req.ValidateOnly = version, 5000, validateOnly
	for _, name := range order {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, topics[name], 1
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// TestControllerMutationQuota: controller_mutation_rate as Kafka 4.0 enforces it (KIP-599)
// on CreateTopics, CreatePartitions and DeleteTopics, with a 1 partition/s quota per
// client-id over 2 one-second samples (a bucket of 2 tokens): strict versions refuse a topic
// met with the bucket in debt (THROTTLING_QUOTA_EXCEEDED, the throttle time in the answer),
// older versions go through and are throttled; validate_only counts; another client-id has
// its own bucket; the quota metrics count the mutations and throttles.
func TestControllerMutationQuota(t *testing.T) {
	reg := metrics.New()
	tb := startBroker(t, t.TempDir(), func(c *Config) {
		c.ControllerQuotaWindowNum, c.ControllerQuotaWindow = 2, time.Second
		c.Metrics = reg
	})
	hs := httptest.NewServer(reg.Handler())
	defer hs.Close()
	cl := tb.client(t)
	if r := alterQuotas(t, cl, false, quotaEntry(map[string]float64{"controller_mutation_rate": 1}, "client-id", "<default>")); r.Entries[0].ErrorCode != 0 {
		t.Fatal(r.Entries)
	}
	const msg = "The throttling quota has been exceeded."
	// Strict (v7): "a" takes 3 of the 2 tokens (admitted: the bucket had tokens), "b" meets
	// a debt of about 1 token: refused, throttled about 1 s; "c" fails validation first and
	// is not counted.
	ct := mutate[*kmsg.CreateTopicsResponse](t, tb.addr, "admin1", createTopicsReq(7, false, map[string]int32{"a": 3, "b": 1, "c": 0}, "a", "b", "c"))
	if len(ct.Topics) != 3 || ct.Topics[0].ErrorCode != 0 || ct.Topics[1].ErrorCode != kerr.ThrottlingQuotaExceeded.Code ||
		ct.Topics[1].ErrorMessage == nil || *ct.Topics[1].ErrorMessage != msg || ct.Topics[2].ErrorCode != kerr.InvalidPartitions.Code {
		t.Fatalf("strict CreateTopics: %+v", ct.Topics)
	}
	if ct.ThrottleMillis < 900 || ct.ThrottleMillis > 1000 {
		t.Fatalf("strict CreateTopics throttle %d ms, want about 1000", ct.ThrottleMillis)
	}
	if tb.topic("a") == nil || tb.topic("b") != nil {
		t.Fatal("a should exist and b not")
	}
	throttleSum, throttles := int64(ct.ThrottleMillis), 1

	// Permissive (v5, before KIP-599's strict versions): created all the same, the debt
	// (about 2 tokens) throttles the answer.
	old := mutate[*kmsg.CreateTopicsResponse](t, tb.addr, "admin1", createTopicsReq(5, false, map[string]int32{"d": 1}, "d"))
	if old.Topics[0].ErrorCode != 0 || tb.topic("d") == nil || old.ThrottleMillis < 1800 || old.ThrottleMillis > 2000 {
		t.Fatalf("permissive CreateTopics: throttle %d ms, %+v", old.ThrottleMillis, old.Topics)
	}
	throttleSum += int64(old.ThrottleMillis)
	throttles++

	// CreatePartitions v3 and DeleteTopics v6 are strict: refused while in debt.
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Version, cp.TimeoutMillis = 3, 5000
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "a", 4
	cp.Topics = append(cp.Topics, cpt)
	cpr := mutate[*kmsg.CreatePartitionsResponse](t, tb.addr, "admin1", cp)
	if cpr.Topics[0].ErrorCode != kerr.ThrottlingQuotaExceeded.Code || cpr.ThrottleMillis <= 0 || len(tb.topic("a").partitions()) != 3 {
		t.Fatalf("strict CreatePartitions: throttle %d, %+v", cpr.ThrottleMillis, cpr.Topics)
	}
	throttleSum += int64(cpr.ThrottleMillis)
	throttles++
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Version, dt.TimeoutMillis = 6, 5000
	dtt := kmsg.NewDeleteTopicsRequestTopic()
	dtt.Topic = kmsg.StringPtr("d")
	dt.Topics = append(dt.Topics, dtt)
	dtr := mutate[*kmsg.DeleteTopicsResponse](t, tb.addr, "admin1", dt)
	if dtr.Topics[0].ErrorCode != kerr.ThrottlingQuotaExceeded.Code || dtr.Topics[0].ErrorMessage == nil || *dtr.Topics[0].ErrorMessage != msg ||
		dtr.ThrottleMillis <= 0 || tb.topic("d") == nil {
		t.Fatalf("strict DeleteTopics: throttle %d, %+v", dtr.ThrottleMillis, dtr.Topics)
	}
	throttleSum += int64(dtr.ThrottleMillis)
	throttles++

	// Another client-id has a full bucket of its own; validate_only counts against it.
	v := mutate[*kmsg.CreateTopicsResponse](t, tb.addr, "admin2", createTopicsReq(7, true, map[string]int32{"v1": 2, "v2": 1, "v3": 1}, "v1", "v2", "v3"))
	if v.Topics[0].ErrorCode != 0 || v.Topics[1].ErrorCode != 0 || v.Topics[2].ErrorCode != kerr.ThrottlingQuotaExceeded.Code || tb.topic("v1") != nil {
		t.Fatalf("validate-only CreateTopics of another client-id: %+v", v.Topics)
	}
	throttleSum2 := int64(v.ThrottleMillis)

	s := scrapeMetrics(t, hs.URL+"/metrics")
	q := []string{"quota", "controller_mutation", "user", "", "client_id", "admin1"}
	if got := s.must(t, "klite_quota_partition_mutations_total", q...); got != 4 { // a (3) and d (1)
		t.Fatalf("admin1 mutations %v, want 4", got)
	}
	if got := s.must(t, "klite_quota_throttled_total", q...); got != float64(throttles) {
		t.Fatalf("admin1 throttled answers %v, want %d", got, throttles)
	}
	if got := s.must(t, "klite_quota_throttle_time_seconds_total", q...); got != float64(throttleSum)/1000 {
		t.Fatalf("admin1 throttle time %v s, want %v", got, float64(throttleSum)/1000)
	}
	if got := s.must(t, "klite_quota_limit", q...); got != 1 {
		t.Fatalf("limit %v", got)
	}
	if got := s.must(t, "klite_quota_mutation_tokens", q...); got >= 0 || got < -2 {
		t.Fatalf("admin1 tokens %v, want a debt of up to 2", got)
	}
	q2 := []string{"quota", "controller_mutation", "user", "", "client_id", "admin2"}
	if got := s.must(t, "klite_quota_partition_mutations_total", q2...); got != 3 {
		t.Fatalf("admin2 mutations %v, want 3 (validate_only counts)", got)
	}
	if got := s.must(t, "klite_quota_throttle_time_seconds_total", q2...); got != float64(throttleSum2)/1000 {
		t.Fatalf("admin2 throttle time %v s, want %v", got, float64(throttleSum2)/1000)
	}
}
