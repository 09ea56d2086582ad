package group

// Offsets committed by transactions (for broker/txn): the transaction
// coordinator stages TxnOffsetCommit offsets and applies them here when the transaction
// commits, so they become visible only then.

import "github.com/twmb/franz-go/pkg/kerr"

// DirectOffset is one offset applied by CommitOffsetsDirect.
type DirectOffset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// CommitOffsetsDirect makes offsets the group's committed offsets without member or
// generation checks (they were checked when staged), creating the group if needed. done runs
// once they are durable (or failed).
func (c *Coordinator) CommitOffsetsDirect(groupID string, offsets []DirectOffset, done func(error)) {
	if !c.post(func() {
		now := c.clock.Now().UnixMilli()
		type pend struct {
			k tp
			o offset
		}
		pends := make([]pend, 0, len(offsets))
		for _, d := range offsets {
			k := tp{d.Topic, d.Partition}
			o := offset{offset: d.Offset, leaderEpoch: d.LeaderEpoch, metadata: d.Metadata, commitTime: now, expireTime: -1}
			pends = append(pends, pend{k, o})
			c.persist(encodeOffset(groupID, k, o), nil)
		}
		c.onDurable = append(c.onDurable, func(err error) {
			if err == nil {
				g := c.groups[groupID]
				if g == nil {
					g = newGroup(groupID, c.clock.Now())
					c.groups[groupID] = g
				}
				for _, p := range pends {
					g.offsets[p.k] = p.o
				}
			}
			c.reply(func() { done(err) })
		})
	}) {
		done(kerr.CoordinatorNotAvailable)
	}
}

// ValidateTxnCommit checks a TxnOffsetCommit's member, instance ID and generation against the
// group, with Kafka 4.0's rules for transactional commits: an unknown group accepts only
// generation -1 (ILLEGAL_GENERATION otherwise); a named member or generation >= 0 must match;
// commits during a rebalance are allowed.
func (c *Coordinator) ValidateTxnCommit(groupID, memberID string, instanceID *string, generation int32, done func(*kerr.Error)) {
	if !c.post(func() {
		var err *kerr.Error
		g := c.groups[groupID]
		switch {
		case g == nil:
			if generation >= 0 {
				err = kerr.IllegalGeneration
			}
		case g.state == Dead:
			err = kerr.CoordinatorNotAvailable
		case g.cg != nil:
			// KIP-848 groups: the generation is the member epoch; a mismatch in a
			// transaction is ILLEGAL_GENERATION (Kafka 4.0, ConsumerGroup.validateOffsetCommit).
			if generation >= 0 || memberID != "" {
				if m := g.cg.members[memberID]; m == nil {
					err = kerr.UnknownMemberID
				} else if generation != m.epoch {
					err = kerr.IllegalGeneration
				}
			}
		case generation < 0 && g.state == Empty:
		case generation >= 0 || memberID != "" || instanceID != nil:
			if _, e := g.validateMember(memberID, instanceID); e != nil {
				err = e
			} else if generation != g.generation {
				err = kerr.IllegalGeneration
			}
		}
		c.reply(func() { done(err) })
	}) {
		done(kerr.CoordinatorNotAvailable)
	}
}
