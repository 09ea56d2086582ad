package broker

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka handles one request per connection at a time: its socket server mutes a connection
// from reading a request until that request's response is sent. klite's server dispatches
// pipelined requests as they arrive and only orders the responses. For the group
// coordinator the difference shows: a Heartbeat, SyncGroup, OffsetCommit or LeaveGroup sent
// on the connection of a JoinGroup (or follower SyncGroup) that is waiting for the rebalance
// would be judged against the group before that rebalance completes, where Kafka judges it
// after. inGroupOrder therefore runs the group coordinator requests of one connection one at
// a time, in arrival order, each once the previous one has been answered.
//
// Only group requests are ordered among themselves: a group request behind a pending Fetch
// or Produce on the same connection still runs at once (Kafka would delay it until the
// earlier response; that changes when it runs, not what it answers).

type groupOrderKey struct {
	b    *Broker
	conn uint64
}

// groupOrderQueue holds the group requests of one connection that wait for an earlier one.
type groupOrderQueue struct {
	running int16 // API key of the request being handled
	waiting []func()
}

var groupOrder = struct {
	sync.Mutex
	conns map[groupOrderKey]*groupOrderQueue // present while a request of the connection runs
}{conns: map[groupOrderKey]*groupOrderQueue{}}

// inGroupOrder calls run once every group request read earlier on rc's connection has been
// answered; run answers through the respond it is given, which answers the client and lets
// the next waiting request of the connection run. Requests that come from no connection
// (ConnID 0, tests calling handlers directly) run at once.
func (b *Broker) inGroupOrder(rc *ReqCtx, apiKey int16, respond func(kmsg.Response), run func(respond func(kmsg.Response))) {
	if rc.ConnID == 0 {
		run(respond)
		return
	}
	key := groupOrderKey{b: b, conn: rc.ConnID}
	arrived := time.Now()
	start := func() {
		groupOrder.Lock()
		groupOrder.conns[key].running = apiKey
		groupOrder.Unlock()
		if waited := time.Since(arrived); waited > time.Millisecond {
			b.log.Debug("group request ran after waiting for an earlier one on its connection", "conn", rc.ConnID,
				"request", kmsg.NameForKey(apiKey), "waited", waited)
		}
		run(func(r kmsg.Response) {
			respond(r)
			groupOrderNext(key)
		})
	}
	groupOrder.Lock()
	if q := groupOrder.conns[key]; q != nil {
		q.waiting = append(q.waiting, start)
		n, behind := len(q.waiting), q.running
		groupOrder.Unlock()
		b.log.Debug("group request waits for an earlier one on its connection", "conn", rc.ConnID,
			"request", kmsg.NameForKey(apiKey), "behind", kmsg.NameForKey(behind), "waiting", n)
		return
	}
	groupOrder.conns[key] = &groupOrderQueue{}
	groupOrder.Unlock()
	start()
}

// groupOrderNext runs the next waiting group request of the connection, if any.
func groupOrderNext(key groupOrderKey) {
	groupOrder.Lock()
	q := groupOrder.conns[key]
	if q == nil || len(q.waiting) == 0 {
		delete(groupOrder.conns, key)
		groupOrder.Unlock()
		return
	}
	next := q.waiting[0]
	q.waiting = q.waiting[1:]
	groupOrder.Unlock()
	next()
}

// groupOrdered makes a group coordinator handler run in connection order (inGroupOrder).
func groupOrdered(h HandlerFunc) HandlerFunc {
	return func(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response)) {
		b.inGroupOrder(rc, req.Key(), respond, func(respond func(kmsg.Response)) { h(b, rc, req, respond) })
	}
}
