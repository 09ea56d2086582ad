package group

import "time"

// Clock is the coordinator's source of time. Timers fire by calling f on any goroutine; the
// coordinator re-posts the work onto its own loop, so f never touches group state itself.
// Tests inject a fake clock and advance it by hand.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a stoppable pending call.
type Timer interface {
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(d, f)
}

// loopTimer wraps a Timer so that a callback already queued on the loop when the timer is
// stopped does not run: stop and the fired check both happen on the loop goroutine.
type loopTimer struct {
	t       Timer
	stopped bool
}

func (lt *loopTimer) stop() {
	if lt == nil {
		return
	}
	lt.stopped = true
	if lt.t != nil {
		lt.t.Stop()
	}
}

// after runs fn on the loop once d has passed, unless the returned timer is stopped first.
func (c *Coordinator) after(d time.Duration, fn func()) *loopTimer {
	lt := &loopTimer{}
	lt.t = c.clock.AfterFunc(d, func() {
		c.post(func() {
			if lt.stopped {
				return
			}
			lt.stopped = true
			fn()
		})
	})
	return lt
}
