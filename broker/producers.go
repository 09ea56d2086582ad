package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
)

// Idempotent producer state, per partition and producer ID, as Kafka keeps it: the current
// epoch and the last producerWindow batches (their sequence ranges and assigned offsets), so a
// retried batch is answered with its original offset and a gap is detected. It is rebuilt from
// the batches in the WAL on start, so deduplication survives a crash.
//
// Transactions will add the producer's open transaction (first offset, coordinator epoch) here.

// producerWindow is how many recent batches are remembered per producer and partition; it
// matches max.in.flight.requests.per.connection=5, the most an idempotent producer may have
// outstanding.
const producerWindow = 5

// producerExpiryMs is Kafka's producer.id.expiration.ms default: the state of a producer not
// heard from for a day is dropped (bounding memory as short-lived producers come and go).
// Unlike Kafka, which uses the max timestamp of the producer's last batch, "heard from" is
// the broker's time of its last append (or the start-up time for state rebuilt from the
// WAL), so producers writing old CreateTime timestamps keep their deduplication state.
const producerExpiryMs = 24 * 60 * 60 * 1000

// producerSweepMs is how often a partition looks for expired producers (on append).
const producerSweepMs = 60 * 1000

type producerState struct {
	epoch    int16
	txn      bool        // seen in a transactional batch (producer-state snapshot, txns.log check)
	batches  []*seqBatch // oldest first, at most producerWindow
	lastSeen int64       // broker time of its newest append (ms)
}

// seqBatch is one appended batch of an idempotent producer.
type seqBatch struct {
	firstSeq, lastSeq int32
	base, last        int64
	logAppendTime     int64
	// pending is non-nil until the batch is durable; a duplicate arriving meanwhile waits on it.
	pending *pendingAppend
}

// pendingAppend collects callbacks waiting for an append to become durable (or fail).
type pendingAppend struct {
	waiters []func(*kerr.Error)
}

// seqCheck is the outcome of checking a batch against the producer state.
type seqCheck int

const (
	seqOK seqCheck = iota
	seqDuplicate
	seqOutOfOrder
	seqStaleEpoch
)

// check classifies a batch of producer epoch epoch with sequences [first, last]. For a
// duplicate it returns the original batch.
func (ps *producerState) check(epoch int16, first, last int32) (seqCheck, *seqBatch) {
	if ps == nil {
		return seqOK, nil // unknown producer: any sequence starts its state
	}
	if epoch < ps.epoch {
		return seqStaleEpoch, nil
	}
	if epoch > ps.epoch {
		if first != 0 {
			return seqOutOfOrder, nil
		}
		return seqOK, nil
	}
	for _, sb := range ps.batches {
		if sb.firstSeq == first && sb.lastSeq == last {
			return seqDuplicate, sb
		}
	}
	if n := len(ps.batches); n > 0 && first != addSeq(ps.batches[n-1].lastSeq, 1) {
		return seqOutOfOrder, nil
	}
	return seqOK, nil
}

// push records an appended batch, dropping the window when the epoch changes.
func (ps *producerState) push(epoch int16, sb *seqBatch) {
	if epoch != ps.epoch {
		ps.epoch = epoch
		ps.batches = ps.batches[:0]
	}
	if len(ps.batches) == producerWindow {
		copy(ps.batches, ps.batches[1:])
		ps.batches = ps.batches[:producerWindow-1]
	}
	ps.batches = append(ps.batches, sb)
}

// drop removes sb (its append failed), so a retry is not taken for a duplicate nor for a
// gap. sb need not be the newest: with several batches in flight the oldest fails first
// (the WAL fails everything queued behind it, callbacks in order), and a failed batch left
// behind would answer its retry as a duplicate at offsets given back and reused, an
// acknowledgement of a record never stored.
func (ps *producerState) drop(sb *seqBatch) {
	for i, b := range ps.batches {
		if b == sb {
			ps.batches = append(ps.batches[:i], ps.batches[i+1:]...)
			return
		}
	}
}

// expireProducers drops producers idle for longer than producerExpiryMs whose batches are
// all durable and that have no open transaction on this partition (as Kafka keeps them: the
// state is needed to close the transaction). p.mu held.
func (p *partition) expireProducersLocked(nowMs int64) {
	if nowMs-p.lastSweep < producerSweepMs {
		return
	}
	p.lastSweep = nowMs
	for pid, ps := range p.producers {
		if nowMs-ps.lastSeen < producerExpiryMs || p.openTxnFirstLocked(pid) >= 0 {
			continue
		}
		busy := false
		for _, sb := range ps.batches {
			busy = busy || sb.pending != nil
		}
		if !busy {
			delete(p.producers, pid)
		}
	}
}
