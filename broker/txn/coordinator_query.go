package txn

// Read-side questions to the coordinator: produce checks, DescribeTransactions,
// ListTransactions and pending offsets.

import (
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ProduceCheck says whether a transactional batch of producer pid/epoch may be appended to
// tp: the partition must be in the producer's ongoing transaction (KIP-890 part 1's
// verification, done in-process since klite is its own coordinator).
func (c *Coordinator) ProduceCheck(pid int64, epoch int16, tp TP) *kerr.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.pids[pid]
	switch {
	case t == nil:
		return kerr.InvalidProducerIDMapping
	case epoch < t.epoch:
		return kerr.InvalidProducerEpoch
	case epoch > t.epoch: // Kafka's verification: any other epoch is fenced (answered as below)
		return kerr.InvalidProducerEpoch
	case t.state != Ongoing || !t.parts[tp]:
		return kerr.InvalidTxnState
	}
	return nil
}

// Info is a transaction as DescribeTransactions and ListTransactions show it.
type Info struct {
	ID      string
	PID     int64
	Epoch   int16
	State   State
	Timeout time.Duration
	Start   time.Time // the last transaction's start; zero before the first one and after InitProducerID
	Parts   []TP
	Groups  []string
}

// Describe returns the transactional ID's state, or false if unknown.
func (c *Coordinator) Describe(id string) (Info, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.txns[id]
	if t == nil {
		return Info{}, false
	}
	return t.info(), true
}

// List returns every transactional ID's state, sorted by ID.
func (c *Coordinator) List() []Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Info, 0, len(c.txns))
	for _, t := range c.txns {
		out = append(out, t.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (t *txnState) info() Info {
	in := Info{ID: t.id, PID: t.pid, Epoch: t.epoch, State: t.state, Timeout: t.timeout}
	if t.state != Empty && t.state != Dead {
		// A finished transaction keeps its start time until the next InitProducerID (Kafka's
		// txnStartTimestamp stays with CompleteCommit/CompleteAbort).
		in.Start = t.start
	}
	for tp := range t.parts {
		in.Parts = append(in.Parts, tp)
	}
	sort.Slice(in.Parts, func(i, j int) bool {
		if in.Parts[i].Topic != in.Parts[j].Topic {
			return in.Parts[i].Topic < in.Parts[j].Topic
		}
		return in.Parts[i].Partition < in.Parts[j].Partition
	})
	for g := range t.groups {
		in.Groups = append(in.Groups, g)
	}
	sort.Strings(in.Groups)
	return in
}

// PendingOffset reports whether a transaction not yet completed has staged an offset for
// the group's partition (OffsetFetch with RequireStable answers UNSTABLE_OFFSET_COMMIT).
func (c *Coordinator) PendingOffset(group string, tp TP) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.txns {
		if t.state != Ongoing && t.state != PrepareCommit {
			continue
		}
		if _, ok := t.offsets[group][tp]; ok {
			return true
		}
	}
	return false
}
