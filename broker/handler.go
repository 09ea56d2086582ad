package broker

import (
	"sort"

	"github.com/klite/klite/broker/server"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ReqCtx is what a handler knows about the request beyond its body: who sent it and on which
// connection. The server fills it; SASL and TLS add the principal here later.
type ReqCtx struct {
	ClientID   string
	ClientHost string // remote IP, for DescribeGroups member hosts
	Version    int16
	ConnID     uint64
	Principal  string // "User:ANONYMOUS" until SASL authenticates the connection
	Size       int    // the request frame's size (producer byte-rate quotas count it)
	conn       *server.Conn
	// reqThrottle records the request's handler time against its request quota once and
	// returns the throttle ms (nil without quotas); throttleDone says a handler already
	// decided the answer's throttle with it (quota_throttle.go).
	reqThrottle  func() int64
	throttleDone bool
}

// HandlerFunc answers one request. It calls respond exactly once, either before returning or
// later from any goroutine (JoinGroup waits for the rebalance, Produce for the fsync, Fetch for
// data). respond(nil) means "send no response" (Produce with acks=0). Responses are written in
// request order per connection whatever order respond is called in.
type HandlerFunc func(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response))

type handlerSpec struct {
	key      int16
	min, max int16
	fn       HandlerFunc
}

// handlers is filled by each API's file in an init function (register), so ApiVersions
// advertises exactly the APIs and versions implemented, never more.
var handlers = map[int16]handlerSpec{}

// register declares that klite implements API key with versions [min, max].
func register(key, min, max int16, fn HandlerFunc) {
	if _, dup := handlers[key]; dup {
		panic("broker: API key registered twice")
	}
	handlers[key] = handlerSpec{key: key, min: min, max: max, fn: fn}
}

// supportedAPIs lists the registered APIs in key order.
func supportedAPIs() []handlerSpec {
	out := make([]handlerSpec, 0, len(handlers))
	for _, h := range handlers {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}
