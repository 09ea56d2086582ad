package broker

// Wiring of the transaction coordinator (broker/txn) into the broker: the effects
// it needs (producer IDs, markers through the WAL, offsets through the group coordinator), and
// its life cycle (opened after WAL replay so prepared transactions can be completed, ticked
// for timeouts, closed before storage).

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/klite/klite/broker/group"
	"github.com/klite/klite/broker/storage"
	"github.com/klite/klite/broker/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnTickInterval is how often timed-out transactions are looked for (Kafka's
// transaction.abort.timed.out.transaction.cleanup.interval.ms is 10 s; klite checks more often).
const txnTickInterval = time.Second

func txnTP(topic string, partition int32) txn.TP { return txn.TP{Topic: topic, Partition: partition} }

// txnEffects implements txn.Effects on the broker.
type txnEffects Broker

func (fx *txnEffects) AllocateProducerID() (int64, error) { return (*Broker)(fx).allocateProducerID() }

func (fx *txnEffects) WriteMarkers(pid int64, epoch int16, commit bool, parts []txn.TP, done func(error)) {
	b := (*Broker)(fx)
	if len(parts) == 0 {
		done(nil)
		return
	}
	var (
		mu      sync.Mutex
		left    = len(parts)
		firstEr error
	)
	one := func(err error) {
		if errors.Is(err, errPartitionDeleted) {
			err = nil
		}
		mu.Lock()
		if err != nil && firstEr == nil {
			firstEr = err
		}
		left--
		last := left == 0
		mu.Unlock()
		if last {
			done(firstEr)
		}
	}
	for _, tp := range parts {
		p, kerrv := b.partition(tp.Topic, tp.Partition)
		if kerrv != nil {
			one(nil) // topic deleted since: nothing to mark
			continue
		}
		p.appendMarker(b, pid, epoch, commit, one)
	}
}

func (fx *txnEffects) CommitOffsets(groupID string, offsets map[txn.TP]txn.Offset, done func(error)) {
	b := (*Broker)(fx)
	list := make([]group.DirectOffset, 0, len(offsets))
	for tp, o := range offsets {
		list = append(list, group.DirectOffset{Topic: tp.Topic, Partition: tp.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata})
	}
	b.groups.CommitOffsetsDirect(groupID, list, done)
}

// openTxns starts the transaction coordinator on its log, DataDir/meta/txns.log
// (openCoordinatorLogs); the coordinator owns l from here on, failing or not.
func (b *Broker) openTxns(l storage.MetaLog) error {
	c, err := txn.New(txn.Config{
		Log:        l,
		Effects:    (*txnEffects)(b),
		Now:        b.now,
		Logger:     b.log,
		MaxTimeout: b.cfg.TransactionMaxTimeout,
	})
	if err != nil {
		return err
	}
	if err := b.checkTxnEpochs(c); err != nil {
		c.Close()
		return err
	}
	// Producer IDs in the transaction log were allocated from the metadata log's blocks;
	// never hand them out again even if the WAL has no batch of theirs.
	b.pidMu.Lock()
	if m := c.MaxProducerID(); m >= b.nextPID {
		b.nextPID = m + 1
	}
	b.pidMu.Unlock()
	b.txns = c
	c.Start()
	go func() {
		t := time.NewTicker(txnTickInterval)
		defer t.Stop()
		for {
			select {
			case <-b.done:
				return
			case <-t.C:
				c.Tick()
			}
		}
	}()
	return nil
}

// txnImplicitAdd adds the partition of a transactional batch in a Produce v12+ request to the
// producer's transaction (TV2 clients send no AddPartitionsToTxn). A fenced epoch is answered
// INVALID_PRODUCER_EPOCH, never PRODUCER_FENCED, as Kafka's partition leader converts the
// coordinator's answer: producers expect that code on Produce.
func (b *Broker) txnImplicitAdd(version int16, topic string, partition int32, h *batchHeader) *kerr.Error {
	if version < 12 || !h.transactional() || !h.hasProducerID() {
		return nil
	}
	e := b.txns.ImplicitAdd(h.ProducerID, h.ProducerEpoch, txnTP(topic, partition))
	if e == kerr.ProducerFenced {
		return kerr.InvalidProducerEpoch
	}
	return e
}

// txnOwnerCheck refuses a transactional batch written under a transactional ID that does not
// hold its producer ID (unknown ID, or another producer's), as Kafka's transaction
// verification does: INVALID_PRODUCER_ID_MAPPING.
func (b *Broker) txnOwnerCheck(transactionalID *string, h *batchHeader) *kerr.Error {
	if transactionalID == nil || !h.transactional() || !h.hasProducerID() || b.txns == nil {
		return nil
	}
	if info, ok := b.txns.Describe(*transactionalID); !ok || info.PID != h.ProducerID {
		return kerr.InvalidProducerIDMapping
	}
	return nil
}

// markUnstableOffsets answers UNSTABLE_OFFSET_COMMIT (offset -1) for partitions whose group
// has an offset staged by a transaction still in progress, as Kafka does for OffsetFetch with
// RequireStable (v7+): a consumer taking over the partition waits for the transaction
// instead of reprocessing records whose offsets are about to be committed.
func (b *Broker) markUnstableOffsets(groups []kmsg.OffsetFetchResponseGroup) {
	for gi := range groups {
		g := &groups[gi]
		for ti := range g.Topics {
			t := &g.Topics[ti]
			for pi := range t.Partitions {
				p := &t.Partitions[pi]
				if p.ErrorCode == 0 && b.txns.PendingOffset(g.Group, txnTP(t.Topic, p.Partition)) {
					p.ErrorCode = kerr.UnstableOffsetCommit.Code
					p.Offset, p.LeaderEpoch, p.Metadata = -1, -1, nil
				}
			}
		}
	}
}

type replayedEpoch struct {
	epoch int16
	loc   storage.Location
	open  bool // an open transaction of this producer was replayed
	// fromSnapshot: the epoch comes from the producer-state snapshot (its batches' WAL
	// segments are gone), so a mismatch names the snapshot file.
	fromSnapshot bool
}

// noteSnapshotTxnEpoch records a transactional producer's epoch from the producer-state
// snapshot, checked against txns.log like a replayed batch's.
func (b *Broker) noteSnapshotTxnEpoch(pid int64, epoch int16) {
	if b.replayedTxnEpochs == nil {
		b.replayedTxnEpochs = map[int64]replayedEpoch{}
	}
	if r, ok := b.replayedTxnEpochs[pid]; !ok || epoch > r.epoch {
		b.replayedTxnEpochs[pid] = replayedEpoch{epoch: epoch, fromSnapshot: true}
	}
}

// noteReplayedTxnEpoch records a transactional batch's producer epoch during WAL replay.
func (b *Broker) noteReplayedTxnEpoch(pid int64, epoch int16, loc storage.Location) {
	if b.replayedTxnEpochs == nil {
		b.replayedTxnEpochs = map[int64]replayedEpoch{}
	}
	if r, ok := b.replayedTxnEpochs[pid]; !ok || epoch > r.epoch {
		b.replayedTxnEpochs[pid] = replayedEpoch{epoch: epoch, loc: loc}
	}
}

// checkTxnEpochs cross-checks the transaction coordinator's log with the WAL: a partition
// never sees a transactional producer at an epoch the coordinator has not handed out, so a
// WAL epoch above the coordinator's means txns.log lost records (it would abort phantom
// transactions and fence the producer for good); and a producer with a transaction still
// open in a partition must be known to the coordinator, which alone can end it. Either is
// corruption, reported with the WAL batch that shows it (RecoverDamaged: logged, started).
func (b *Broker) checkTxnEpochs(c *txn.Coordinator) error {
	txnsLog := filepath.Join(b.dataDir, "meta", "txns.log")
	open := map[int64]bool{}
	for _, t := range b.topics {
		for _, p := range t.partitions() {
			p.mu.Lock()
			for pid := range p.txn.open {
				open[pid] = true
			}
			p.mu.Unlock()
		}
	}
	for pid, r := range b.replayedTxnEpochs {
		id, epoch, ok := c.ProducerEpoch(pid)
		var why string
		switch {
		case ok && r.epoch > epoch:
			why = fmt.Sprintf("transactional producer %d (%q) is at epoch %d in %s, but this WAL batch carries epoch %d", pid, id, epoch, txnsLog, r.epoch)
		case !ok && open[pid]:
			why = fmt.Sprintf("transactional producer %d has a transaction open in the WAL (epoch %d), but %s does not know it", pid, r.epoch, txnsLog)
		default:
			continue
		}
		if r.fromSnapshot {
			if !b.cfg.RecoverDamaged {
				return &storage.CorruptError{Path: b.snapshotPath(), Size: -1, Reason: why + " (from the producer-state snapshot)"}
			}
			b.log.Error("RECOVERY: producer-state snapshot and txns.log disagree; starting anyway", "file", b.snapshotPath(), "reason", why)
			continue
		}
		if err := b.replayCorruption(r.loc, why); err != nil {
			return err
		}
	}
	b.replayedTxnEpochs = nil
	return nil
}
