package server

import (
	"sync/atomic"
	"time"
)

// Muting (KIP-219): a client over its quota is answered at once, with the throttle time in
// the response, and its connection is then muted for that time: no further request of it is
// dispatched until the time has passed, so a client that ignores the throttle time is held
// back as well as one that honours it.

// connMute is a Conn's mute state: the unix nanoseconds until which it is muted (0: not).
type connMute struct{ until atomic.Int64 }

// Mute stops dispatching requests read from c until d from now (a later Mute extends it,
// an earlier end never shortens it). Safe from any goroutine.
func (c *Conn) Mute(d time.Duration) {
	if d <= 0 {
		return
	}
	end := time.Now().Add(d).UnixNano()
	for {
		cur := c.mute.until.Load()
		if cur >= end || c.mute.until.CompareAndSwap(cur, end) {
			return
		}
	}
}

// waitUnmuted returns once c is not muted (at once when it is not), or false when stop or
// broken closes first.
func (c *Conn) waitUnmuted(stop, broken <-chan struct{}) bool {
	for {
		until := c.mute.until.Load()
		if until == 0 { // never muted: no clock read on the hot path
			return true
		}
		d := time.Until(time.Unix(0, until))
		if d <= 0 {
			return true
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return false
		case <-broken:
			t.Stop()
			return false
		}
	}
}
