package broker

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/klite/klite/broker/metrics"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchQuotaThrottles: a consumer over its client-id's consumer_byte_rate is answered as
// Kafka answers it (KafkaApis.handleFetchRequest, FetchContext.getThrottledResponse): no error,
// the throttle time, no partitions, no fetch session created, and the bytes taken back from
// its quota; another client-id gets the records. An incremental fetch throttled keeps its
// session ID and leaves the session where it was, so the next fetch of the session returns
// the records the throttled one did not. The quota metrics count exactly that.
func TestFetchQuotaThrottles(t *testing.T) {
	reg := metrics.New()
	tb := startBroker(t, t.TempDir(), func(c *Config) {
		c.QuotaWindowNum, c.QuotaWindow = 2, 100*time.Millisecond
		c.Metrics = reg
	})
	hs := httptest.NewServer(reg.Handler())
	defer hs.Close()
	cl := tb.client(t)
	createTopic(t, tb.admin(t), "fq", 1, nil)
	setRate := func(v float64) {
		t.Helper()
		if r := alterQuotas(t, cl, false, quotaEntry(map[string]float64{"consumer_byte_rate": v}, "client-id", "reader")); r.Entries[0].ErrorCode != 0 {
			t.Fatal(r.Entries)
		}
	}
	setRate(1000)
	batch := rawBatch(-1, -1, -1, 200, time.Now().UnixMilli(), 0)
	if p := rawProduce(t, cl, "fq", batch); p.ErrorCode != 0 {
		t.Fatalf("produce: %d", p.ErrorCode)
	}
	// fetch sends one Fetch v11 on a connection of its own (a throttled one is muted).
	fetch := func(clientID string, sessionID, epoch int32, offset int64, withPartition bool) *kmsg.FetchResponse {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxBytes, req.SessionID, req.SessionEpoch = 11, 1<<20, sessionID, epoch
		if withPartition {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = "fq"
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes, rp.FetchOffset = 1<<20, offset
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		c := dialRaw(t, tb.addr)
		sendAs(t, c, clientID, req, 1)
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = 11
		readResponse(t, c, resp, false)
		return resp
	}
	// len(batch) bytes over a window padded to 100 ms, against 1000 B/s. (MaxBytes is capped
	// at the quota's 100 B per window, but the first batch is returned whatever its size.)
	want := int32((float64(len(batch))/0.1 - 1000) / 1000 * 100)
	r := fetch("reader", 0, 0, 0, true) // a full fetch that would create a session
	if r.ErrorCode != 0 || len(r.Topics) != 0 || r.SessionID != 0 || r.ThrottleMillis < want-1 || r.ThrottleMillis > want+1 {
		t.Fatalf("throttled fetch: error %d, session %d, throttle %d ms (want %d), topics %+v", r.ErrorCode, r.SessionID, r.ThrottleMillis, want, r.Topics)
	}
	throttled := r.ThrottleMillis
	o := fetch("other", 0, -1, 0, true)
	if o.ThrottleMillis != 0 || len(o.Topics) != 1 || len(o.Topics[0].Partitions[0].RecordBatches) != len(batch) {
		t.Fatalf("unquoted consumer: throttle %d ms, %+v", o.ThrottleMillis, o.Topics)
	}
	s := scrapeMetrics(t, hs.URL+"/metrics")
	q := []string{"quota", "fetch", "user", "", "client_id", "reader"}
	if v := s.must(t, "klite_quota_throttled_total", q...); v != 1 {
		t.Fatalf("throttled answers %v, want 1", v)
	}
	if v := s.must(t, "klite_quota_throttle_time_seconds_total", q...); v != float64(throttled)/1000 {
		t.Fatalf("throttle time %v s, want %v", v, float64(throttled)/1000)
	}
	if v := s.must(t, "klite_quota_bytes_total", q...); v != 0 {
		t.Fatalf("bytes counted %v after the throttled answer took them back, want 0", v)
	}
	if v := s.must(t, "klite_quota_limit", q...); v != 1000 {
		t.Fatalf("limit %v", v)
	}
	if v := s.must(t, "klite_topic_bytes_out_total", "topic", "fq"); v != float64(len(batch)) {
		t.Fatalf("bytes out %v: only the unthrottled answer's %d B were sent", v, len(batch))
	}

	// A session, started while the quota allows it.
	setRate(1e9)
	full := fetch("reader", 0, 0, 0, true)
	if full.ThrottleMillis != 0 || full.SessionID == 0 || len(full.Topics) != 1 || len(full.Topics[0].Partitions[0].RecordBatches) != len(batch) {
		t.Fatalf("session start: throttle %d, session %d, %+v", full.ThrottleMillis, full.SessionID, full.Topics)
	}
	setRate(1000)
	batch2 := rawBatch(-1, -1, -1, 200, time.Now().UnixMilli(), 0)
	if p := rawProduce(t, cl, "fq", batch2); p.ErrorCode != 0 {
		t.Fatalf("produce: %d", p.ErrorCode)
	}
	inc := fetch("reader", full.SessionID, 1, 200, true)
	if inc.ThrottleMillis <= 0 || inc.SessionID != full.SessionID || len(inc.Topics) != 0 || inc.ErrorCode != 0 {
		t.Fatalf("throttled incremental fetch: throttle %d, session %d (want %d), error %d, %+v", inc.ThrottleMillis, inc.SessionID, full.SessionID, inc.ErrorCode, inc.Topics)
	}
	setRate(1e9)
	next := fetch("reader", full.SessionID, 2, 0, false)
	if next.ThrottleMillis != 0 || next.SessionID != full.SessionID || len(next.Topics) != 1 ||
		len(next.Topics[0].Partitions[0].RecordBatches) != len(batch2) || next.Topics[0].Partitions[0].HighWatermark != 400 {
		t.Fatalf("the session's next fetch: throttle %d, session %d, %+v", next.ThrottleMillis, next.SessionID, next.Topics)
	}
}

// TestQuotaMetricsProduceAndRequest: the produce and request quota metrics count exactly
// what the answers carried: one throttled Produce (its request size in bytes, its throttle
// time), and a throttled Metadata and Fetch of a client-id with a request quota (the Fetch
// answered without records, as Kafka).
func TestQuotaMetricsProduceAndRequest(t *testing.T) {
	reg := metrics.New()
	tb := startBroker(t, t.TempDir(), func(c *Config) {
		c.QuotaWindowNum, c.QuotaWindow = 2, 100*time.Millisecond
		c.Metrics = reg
	})
	hs := httptest.NewServer(reg.Handler())
	defer hs.Close()
	cl := tb.client(t)
	createTopic(t, tb.admin(t), "pq", 1, nil)
	for _, e := range []kmsg.AlterClientQuotasRequestEntry{
		quotaEntry(map[string]float64{"producer_byte_rate": 10000}, "user", "ANONYMOUS", "client-id", "slow"),
		quotaEntry(map[string]float64{"request_percentage": 1e-9}, "client-id", "busy"),
	} {
		if r := alterQuotas(t, cl, false, e); r.Entries[0].ErrorCode != 0 {
			t.Fatal(r.Entries)
		}
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, 1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "pq"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = rawBatch(-1, -1, -1, 200, time.Now().UnixMilli(), 0)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	size := len(kmsg.NewRequestFormatter(kmsg.FormatterClientID("slow")).AppendRequest(nil, req, 1)) - 4
	c := dialRaw(t, tb.addr)
	sendAs(t, c, "slow", req, 1)
	pr := kmsg.NewPtrProduceResponse()
	pr.Version = 9
	readResponse(t, c, pr, true)
	if pr.ThrottleMillis <= 0 {
		t.Fatalf("produce not throttled")
	}
	m := kmsg.NewPtrMetadataRequest()
	m.Version = 12
	bc := dialRaw(t, tb.addr)
	sendAs(t, bc, "busy", m, 1)
	mr := kmsg.NewPtrMetadataResponse()
	mr.Version = 12
	readResponse(t, bc, mr, true)
	if mr.ThrottleMillis <= 0 {
		t.Fatalf("metadata not throttled")
	}

	// A Fetch over the request quota is answered as one over the consumer quota: throttled,
	// without its records (Kafka's handleFetchRequest takes the larger of both throttles).
	f := kmsg.NewPtrFetchRequest()
	f.Version, f.MaxBytes, f.SessionEpoch = 11, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "pq"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	fc := dialRaw(t, tb.addr)
	sendAs(t, fc, "busy", f, 1)
	fr := kmsg.NewPtrFetchResponse()
	fr.Version = 11
	readResponse(t, fc, fr, false)
	if fr.ThrottleMillis <= 0 || len(fr.Topics) != 0 || fr.ErrorCode != 0 {
		t.Fatalf("fetch over the request quota: throttle %d, error %d, %+v", fr.ThrottleMillis, fr.ErrorCode, fr.Topics)
	}

	s := scrapeMetrics(t, hs.URL+"/metrics")
	p := []string{"quota", "produce", "user", "ANONYMOUS", "client_id", "slow"}
	if v := s.must(t, "klite_quota_bytes_total", p...); v != float64(size) {
		t.Fatalf("produce bytes %v, want the request's %d", v, size)
	}
	if v := s.must(t, "klite_quota_throttled_total", p...); v != 1 {
		t.Fatalf("produce throttled %v", v)
	}
	if v := s.must(t, "klite_quota_throttle_time_seconds_total", p...); v != float64(pr.ThrottleMillis)/1000 {
		t.Fatalf("produce throttle time %v, want %v", v, float64(pr.ThrottleMillis)/1000)
	}
	if v := s.must(t, "klite_quota_limit", p...); v != 10000 {
		t.Fatalf("produce limit %v", v)
	}
	if v := s.must(t, "klite_quota_rate", p...); v <= 10000 {
		t.Fatalf("produce rate %v, want above the quota it was throttled for", v)
	}
	r := []string{"quota", "request", "user", "", "client_id", "busy"}
	if v := s.must(t, "klite_quota_throttled_total", r...); v != 2 {
		t.Fatalf("request throttled %v, want 2 (Metadata, Fetch)", v)
	}
	if v, w := s.must(t, "klite_quota_throttle_time_seconds_total", r...), float64(mr.ThrottleMillis+fr.ThrottleMillis)/1000; v != w {
		t.Fatalf("request throttle time %v, want %v", v, w)
	}
	if v := s.must(t, "klite_quota_request_time_seconds_total", r...); v <= 0 {
		t.Fatalf("request time %v", v)
	}
	if _, ok := s.value("klite_quota_throttled_total", "quota", "produce", "client_id", "busy"); ok {
		t.Fatal("a produce series for a client without a produce quota")
	}
}
