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
// framing, a few dozen bytes per partition). Unlike Kafka, a throttled Fetch still carries
// its records (Kafka answers it empty and takes the bytes back); the mute holds the next one
// back either way.

import (
	"strings"
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
// answer).
func (b *Broker) quotaProduce(rc *ReqCtx, respond func(kmsg.Response)) func(kmsg.Response) {
	if !b.quotas.Any() {
		return respond
	}
	ms := b.quotaMgr.Record(quota.ProducerByteRate, rc.quotaUser(), rc.ClientID, float64(rc.Size), b.now().UnixMilli())
	if ms <= 0 {
		return respond
	}
	if rc.conn != nil {
		rc.conn.Mute(time.Duration(ms) * time.Millisecond)
	}
	return func(resp kmsg.Response) {
		if resp == server.CloseConnection {
			respond(resp)
			return
		}
		if r, ok := resp.(*kmsg.ProduceResponse); ok {
			r.ThrottleMillis = max(r.ThrottleMillis, int32(min(ms, 1<<31-1)))
		}
		b.throttleAnswer(rc, resp, ms, rc.Version < 6, respond) // acks=0 (nil): muted all the same
	}
}

// quotaFetch wraps a Fetch handler's respond with consumer_byte_rate enforcement.
func (b *Broker) quotaFetch(rc *ReqCtx, respond func(kmsg.Response)) func(kmsg.Response) {
	if !b.quotas.Any() {
		return respond
	}
	return func(resp kmsg.Response) {
		r, zc := fetchOf(resp) // plain or file-backed (fetch_zerocopy.go)
		if r == nil {
			respond(resp)
			return
		}
		var size int
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				size += zc.recordBytes(p.RecordBatches)
			}
		}
		ms := b.quotaMgr.Record(quota.ConsumerByteRate, rc.quotaUser(), rc.ClientID, float64(size), b.now().UnixMilli())
		if ms > 0 {
			r.ThrottleMillis = max(r.ThrottleMillis, int32(min(ms, 1<<31-1)))
		}
		b.throttleAnswer(rc, resp, ms, rc.Version < 8, respond)
	}
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
// fsync is not busy meanwhile). handled must be called when the handler returns.
func (b *Broker) quotaRequest(rc *ReqCtx, key int16, respond func(kmsg.Response)) (wrapped func(kmsg.Response), handled func()) {
	if !b.quotas.Any() || key == 17 || key == 18 || key == 36 {
		return respond, func() {}
	}
	start := time.Now()
	var returned atomic.Int64 // handler time in ns once it returned
	return func(resp kmsg.Response) {
			d := time.Duration(returned.Load())
			if d == 0 {
				d = time.Since(start)
			}
			ms := b.quotaMgr.RecordRequestTime(rc.quotaUser(), rc.ClientID, d, b.now().UnixMilli())
			if r, ok := resp.(kmsg.SetThrottleResponse); ok && ms > 0 {
				if cur, _ := resp.(kmsg.ThrottleResponse).Throttle(); int64(cur) < ms {
					r.SetThrottle(int32(ms))
				}
			}
			b.throttleAnswer(rc, resp, ms, false, respond)
		}, func() {
			returned.Store(max(int64(time.Since(start)), 1))
		}
}
