package broker

// Client quota enforcement (KIP-13, KIP-124, KIP-219) as Kafka does it: a Produce request's
// bytes count against the connection's producer_byte_rate quota, a Fetch answer's against
// consumer_byte_rate, and every request's handler time against request_percentage
// (broker/quota resolves which quota and which group of connections shares it). Over the
// quota, the answer carries the throttle time and is sent at once, and the connection is
// then muted for that time (server.Conn.Mute): the next request waits. Clients of versions
// before KIP-219 (Produce v6, Fetch v8) get the answer itself delayed by the throttle time
// instead, as Kafka does.
//
// Kafka counts a Produce request's size and a Fetch response's size; klite counts the same
// request size, and a Fetch response's record bytes (Kafka also counts the response's
// framing, a few dozen bytes per partition). A throttled Fetch is answered as Kafka answers
// it: the throttle time and no partitions, the bytes taken back from the consumer quota, the
// fetch session left as it was (the client asks again for the same offsets). A Fetch's
// MaxBytes is capped at what the consumer quota admits over the quota window.
//
// Every throttle is counted, for /metrics, against the quota that decided it
// (quota.Manager.Throttled; metrics_ops.go exports them).

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klite/klite/broker/quota"
	"github.com/klite/klite/broker/server"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// quotaUser is the name user quotas match: the principal's name ("ANONYMOUS" unauthenticated).
func (rc *ReqCtx) quotaUser() string {
	_, name, ok := strings.Cut(rc.Principal, ":")
	if !ok {
		return rc.Principal
	}
	return name
}

// quotaProduce counts a Produce request against producer_byte_rate when it is dispatched and
// wraps its respond to carry the throttle time. Kafka reads one request of a connection at a
// time, so a throttle it decides holds back the client's next request; klite reads pipelined
// requests ahead, so the connection is muted at once (the following requests wait before
// they are dispatched) and again from the answer on (KIP-219: the throttle runs from the
// answer). The answer carries the larger of this and the request quota's throttle, and only
// the quota that decided it counts it in the metrics, as Kafka's KafkaApis.handleProduceRequest.
func (b *Broker) quotaProduce(rc *ReqCtx, respond func(kmsg.Response)) func(kmsg.Response) {
	if !b.quotas.Any() {
		return respond
	}
	user := rc.quotaUser()
	ms := b.quotaMgr.Record(quota.ProducerByteRate, user, rc.ClientID, float64(rc.Size), b.now().UnixMilli())
	if ms > 0 && rc.conn != nil {
		rc.conn.Mute(time.Duration(ms) * time.Millisecond)
	}
	return func(resp kmsg.Response) {
		if resp == server.CloseConnection {
			respond(resp)
			return
		}
		total := b.decideThrottle(rc, quota.ProducerByteRate, ms)
		if r, ok := resp.(*kmsg.ProduceResponse); ok && total > 0 {
			r.ThrottleMillis = max(r.ThrottleMillis, int32(min(total, 1<<31-1)))
		}
		b.throttleAnswer(rc, resp, total, rc.Version < 6, respond) // acks=0 (nil): muted all the same
	}
}

// decideThrottle combines a bandwidth (or mutation) quota's throttle ms with the request
// quota's (recorded now, once) as Kafka does: the larger wins and is counted against its
// own quota's metrics. The request quota's wrapper then leaves the answer alone.
func (b *Broker) decideThrottle(rc *ReqCtx, key string, ms int64) int64 {
	var reqMs int64
	if rc.reqThrottle != nil {
		reqMs = rc.reqThrottle()
		rc.throttleDone = true
	}
	now := b.now().UnixMilli()
	if ms > reqMs {
		b.quotaMgr.Throttled(key, rc.quotaUser(), rc.ClientID, ms, now)
		return ms
	}
	b.quotaMgr.Throttled(quota.RequestPercentage, rc.quotaUser(), rc.ClientID, reqMs, now)
	return reqMs
}

// fetchThrottle records a Fetch answer's size against consumer_byte_rate (and the request's
// time against request_percentage) as Kafka's KafkaApis.handleFetchRequest does before it
// builds the answer. When either quota is violated the answer is throttled: it carries the
// throttle time and no partitions (the caller answers with sessionFetch.throttled), the
// bytes are taken back from the consumer quota, and the connection is muted. size is the
// record bytes the answer would carry.
func (b *Broker) fetchThrottle(rc *ReqCtx, size int) int64 {
	if !b.quotas.Any() {
		return 0
	}
	user, now := rc.quotaUser(), b.now().UnixMilli()
	bw := b.quotaMgr.Record(quota.ConsumerByteRate, user, rc.ClientID, float64(size), now)
	ms := b.decideThrottle(rc, quota.ConsumerByteRate, bw)
	if ms > 0 {
		b.quotaMgr.Unrecord(quota.ConsumerByteRate, user, rc.ClientID, float64(size), now)
	}
	return ms
}

// maxFetchBytes caps a Fetch's MaxBytes at what the consumer quota admits in one quota
// span, as Kafka does (ClientQuotaManager.getMaxValueInQuotaWindow: quota * (samples - 1) *
// window), so one answer alone cannot earn a throttle far beyond the window.
func (b *Broker) maxFetchBytes(rc *ReqCtx, maxBytes int32) int32 {
	if !b.quotas.Any() || maxBytes <= 0 {
		return maxBytes
	}
	bound, _, ok := b.quotas.Resolve(quota.ConsumerByteRate, rc.quotaUser(), rc.ClientID)
	if !ok {
		return maxBytes
	}
	w := bound * float64(b.quotaMgr.Samples()-1) * float64(b.quotaMgr.WindowMs()) / 1000
	if w < float64(maxBytes) {
		return int32(max(w, 0))
	}
	return maxBytes
}

// throttleAnswer sends resp and mutes the connection for ms; delay sends resp only once
// the time has passed (clients from before KIP-219 do not back off themselves).
func (b *Broker) throttleAnswer(rc *ReqCtx, resp kmsg.Response, ms int64, delay bool, respond func(kmsg.Response)) {
	if ms <= 0 {
		respond(resp)
		return
	}
	d := time.Duration(ms) * time.Millisecond
	if rc.conn != nil {
		rc.conn.Mute(d)
	}
	if delay && resp != nil {
		time.AfterFunc(d, func() { respond(resp) })
		return
	}
	respond(resp)
}

// quotaRequest wraps respond with request_percentage enforcement (Kafka's request quota, which
// applies to every API but the ones a client needs to connect: ApiVersions and SASL). The
// time counted is the handler's own time on the request's goroutine: until it returned, or
// until it answered if that was sooner (a long-polling Fetch or a Produce waiting for its
// fsync is not busy meanwhile). handled must be called when the handler returns. Handlers
// with a quota of their own (Produce, Fetch, the topic mutations) record the request time
// themselves through rc.reqThrottle and decide the throttle (decideThrottle).
func (b *Broker) quotaRequest(rc *ReqCtx, key int16, respond func(kmsg.Response)) (wrapped func(kmsg.Response), handled func()) {
	if !b.quotas.Any() || key == 17 || key == 18 || key == 36 {
		return respond, func() {}
	}
	start := time.Now()
	var returned atomic.Int64 // handler time in ns once it returned
	var once sync.Once
	var reqMs int64
	rc.reqThrottle = func() int64 {
		once.Do(func() {
			d := time.Duration(returned.Load())
			if d == 0 {
				d = time.Since(start)
			}
			reqMs = b.quotaMgr.RecordRequestTime(rc.quotaUser(), rc.ClientID, d, b.now().UnixMilli())
		})
		return reqMs
	}
	return func(resp kmsg.Response) {
			if rc.throttleDone || resp == server.CloseConnection {
				respond(resp)
				return
			}
			ms := rc.reqThrottle()
			if r, ok := resp.(kmsg.SetThrottleResponse); ok && ms > 0 {
				if cur, _ := resp.(kmsg.ThrottleResponse).Throttle(); int64(cur) < ms {
					r.SetThrottle(int32(ms))
				}
			}
			b.quotaMgr.Throttled(quota.RequestPercentage, rc.quotaUser(), rc.ClientID, ms, b.now().UnixMilli())
			b.throttleAnswer(rc, resp, ms, false, respond)
		}, func() {
			returned.Store(max(int64(time.Since(start)), 1))
		}
}

// fetchRecordBytes is what a Fetch answer counts against consumer_byte_rate: its record
// bytes (see the top of this file), in memory or in file ranges (zc, nil for none).
func fetchRecordBytes(r *kmsg.FetchResponse, zc *zeroCopy) int {
	var size int
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			size += zc.recordBytes(r.Topics[i].Partitions[j].RecordBatches)
		}
	}
	return size
}
