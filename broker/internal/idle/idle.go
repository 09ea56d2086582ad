// Package idle lets a pool's free buffers go once nothing was taken from it for a while
// (the server's request frames, the partition tails' chunks).
package idle

import "time"

// Check is armed when a pool starts keeping free buffers. When its timer fires the pool asks
// Due: true if nothing was taken since the check last looked (the pool then drops its free
// buffers and the check stops), false otherwise (it looks again later). Its methods are
// called with the pool's own lock held; the timer's callback takes that lock to call Due.
type Check struct {
	after       time.Duration
	takes, seen uint64
	armed       bool
	timer       *time.Timer
}

// Took counts a buffer taken from the pool.
func (c *Check) Took() { c.takes++ }

// Arm starts the check unless it runs: fire is called after the given time on a goroutine
// of its own.
func (c *Check) Arm(after time.Duration, fire func()) {
	if c.armed {
		return
	}
	c.armed, c.after, c.seen = true, after, c.takes
	if c.timer == nil {
		c.timer = time.AfterFunc(after, fire)
	} else {
		c.timer.Reset(after)
	}
}

// Due reports whether nothing was taken since the check last looked; if something was, the
// check looks again after the same time.
func (c *Check) Due() bool {
	if c.takes != c.seen {
		c.seen = c.takes
		c.timer.Reset(c.after)
		return false
	}
	c.armed = false
	return true
}
