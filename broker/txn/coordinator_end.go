package txn

// Ending transactions: EndTxn, the implicit adds of transaction version 2, and the
// state machine that writes markers and completes (drive), with the timeout ticker.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
)

// EndTxn commits or aborts the ongoing transaction; respond runs once the markers are
// written (and, on commit, the offsets applied) with the producer ID and epoch to use next.
//
// tv2 selects KIP-890 part 2 semantics (EndTxn v5+): the epoch is bumped at the end of every
// transaction (markers carry the new epoch, fencing late writes of the old one); a request
// with the previous epoch is a retry (answered from the completed state, INVALID_TXN_STATE if
// it asks the other outcome, as after a timeout abort); aborting with no transaction open is
// allowed and just bumps the epoch.
func (c *Coordinator) EndTxn(id string, pid int64, epoch int16, commit, tv2 bool, respond func(pid int64, epoch int16, err *kerr.Error)) {
	c.mu.Lock()
	fail := func(e *kerr.Error) {
		c.mu.Unlock()
		respond(-1, -1, e)
	}
	if c.closed {
		fail(kerr.CoordinatorNotAvailable)
		return
	}
	t := c.txns[id]
	if t == nil || t.pid != pid {
		fail(kerr.InvalidProducerIDMapping)
		return
	}
	matches := t.state == CompleteCommit && commit || t.state == CompleteAbort && !commit
	preparing := t.state == PrepareCommit && commit || t.state == PrepareAbort && !commit
	if tv2 && epoch == t.lastEpoch && epoch != t.epoch {
		switch {
		case matches:
			p, e := t.pid, t.epoch
			c.mu.Unlock()
			respond(p, e, nil)
		case preparing:
			fail(kerr.ConcurrentTransactions)
		default:
			fail(kerr.InvalidTxnState)
		}
		return
	}
	if epoch != t.epoch {
		fail(kerr.ProducerFenced)
		return
	}
	switch {
	case t.state == Ongoing:
	case tv2 && !commit && (t.state == Empty || t.state == CompleteCommit || t.state == CompleteAbort):
		// TV2: aborting nothing bumps the epoch (clients do it to recover from an error).
		if err := c.changeLocked(t, func() {
			c.bumpLocked(t)
			t.state = CompleteAbort
			t.updated = c.cfg.Now()
		}); err != nil {
			fail(errLogWrite)
			return
		}
		p, e := t.pid, t.epoch
		c.mu.Unlock()
		respond(p, e, nil)
		return
	case !tv2 && matches:
		p, e := t.pid, t.epoch
		c.mu.Unlock()
		respond(p, e, nil) // a retry of an EndTxn that completed
		return
	case preparing:
		fail(kerr.ConcurrentTransactions)
		return
	default:
		fail(kerr.InvalidTxnState)
		return
	}
	if err := c.changeLocked(t, func() {
		if tv2 {
			c.bumpLocked(t)
		}
		if commit {
			t.state = PrepareCommit
		} else {
			t.state = PrepareAbort
		}
		t.updated = c.cfg.Now()
	}); err != nil {
		fail(errLogWrite)
		return
	}
	if !commit {
		t.offsets = nil
	}
	t.waiters = append(t.waiters, func(e *kerr.Error) {
		if e != nil {
			respond(-1, -1, e)
			return
		}
		c.mu.Lock()
		p, ep := t.pid, t.epoch
		c.mu.Unlock()
		respond(p, ep, nil)
	})
	c.mu.Unlock()
	c.drive(t)
}

// ImplicitAdd adds a partition to the producer's transaction on its first transactional
// produce (Produce v12+, KIP-890 part 2: TV2 clients send no AddPartitionsToTxn).
func (c *Coordinator) ImplicitAdd(pid int64, epoch int16, tp TP) *kerr.Error {
	c.mu.Lock()
	t := c.pids[pid]
	c.mu.Unlock()
	if t == nil {
		return kerr.InvalidProducerIDMapping
	}
	return c.AddPartitions(t.id, pid, epoch, []TP{tp})
}

// ImplicitAddGroup adds a group to the transaction on TxnOffsetCommit v5+ (TV2).
func (c *Coordinator) ImplicitAddGroup(id string, pid int64, epoch int16, group string) *kerr.Error {
	return c.AddGroup(id, pid, epoch, group)
}

// drive writes the markers and offsets of a prepared transaction, then completes it.
func (c *Coordinator) drive(t *txnState) {
	c.mu.Lock()
	if t.driving || c.closed || (t.state != PrepareCommit && t.state != PrepareAbort) {
		c.mu.Unlock()
		return
	}
	t.driving = true
	commit := t.state == PrepareCommit
	pid, epoch := t.pid, t.epoch
	parts := make([]TP, 0, len(t.parts))
	for tp := range t.parts {
		parts = append(parts, tp)
	}
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].Topic != parts[j].Topic {
			return parts[i].Topic < parts[j].Topic
		}
		return parts[i].Partition < parts[j].Partition
	})
	var offsets map[string]map[TP]Offset
	if commit {
		offsets = t.offsets
	}
	c.mu.Unlock()

	finish := func(err error) {
		c.mu.Lock()
		t.driving = false
		if err != nil || c.closed {
			c.mu.Unlock()
			if err != nil {
				c.log.Warn("completing transaction failed; retrying on the next tick", "transactional_id", t.id, "err", err)
			}
			return
		}
		if commit {
			t.state = CompleteCommit
		} else {
			t.state = CompleteAbort
		}
		t.parts, t.groups, t.offsets = nil, nil, nil
		t.updated = c.cfg.Now()
		if err := c.persistLocked(t); err != nil {
			// The markers are written; a restart re-drives from Prepare*, which is harmless.
			c.log.Error("persisting transaction completion failed", "transactional_id", t.id, "err", err)
		}
		waiters := t.waiters
		t.waiters = nil
		c.mu.Unlock()
		for _, w := range waiters {
			w(nil)
		}
	}
	c.fx.WriteMarkers(pid, epoch, commit, parts, func(err error) {
		if err != nil || len(offsets) == 0 {
			finish(err)
			return
		}
		groups := make([]string, 0, len(offsets))
		for g := range offsets {
			groups = append(groups, g)
		}
		sort.Strings(groups)
		var next func(i int)
		next = func(i int) {
			if i == len(groups) {
				finish(nil)
				return
			}
			c.fx.CommitOffsets(groups[i], offsets[groups[i]], func(err error) {
				if err != nil {
					finish(err)
					return
				}
				next(i + 1)
			})
		}
		next(0)
	})
}

// Tick aborts transactions that outlived their timeout (bumping the epoch, so the producer
// is fenced as in Kafka) and retries completions that failed.
func (c *Coordinator) Tick() {
	now := c.cfg.Now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	var todo []*txnState
	for _, t := range c.txns {
		switch {
		case t.state == Ongoing && now.Sub(t.start) > t.timeout:
			if err := c.changeLocked(t, func() {
				c.bumpLocked(t)
				t.state = PrepareAbort
				t.offsets = nil
				t.updated = now
			}); err != nil {
				continue
			}
			c.log.Info("aborting timed-out transaction", "transactional_id", t.id, "producer_id", t.pid, "timeout", t.timeout)
			todo = append(todo, t)
		case (t.state == PrepareCommit || t.state == PrepareAbort) && !t.driving:
			todo = append(todo, t)
		}
	}
	c.mu.Unlock()
	for _, t := range todo {
		c.drive(t)
	}
}
