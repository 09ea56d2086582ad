package broker

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// partition is one partition's data state. The data lives in its logstore.Log (sealed
// segments on disk plus an in-memory tail, partition_log.go); the WAL only holds what the
// Log has not sealed yet. Memory per partition is the Log's tail and fixed metadata.
type partition struct {
	t   *topic
	idx int32
	lg  *logstore.Log // nil until opened (openLogs); a partition without one refuses I/O

	mu       sync.Mutex
	logStart int64
	next     int64 // next offset to assign (appends in flight included)
	hwm      int64 // every offset below is durable and in the Log
	// undrained: batches the WAL acknowledged but the Log refused (its store failing to
	// seal a segment, say with the disk full); the high watermark waits at the first until
	// the jobs loop drains them, reading them back from the WAL (drainUndrained).
	undrained []undrainedBatch
	producers map[int64]*producerState
	lastSweep int64 // when expired producers were last dropped (ms)
	deleted   bool
	txn       partTxns // open transactions (txn_partition.go)
	// failedFrom: the lowest base offset of failed appends with later ones still in flight
	// (giveBackLocked).
	failedFrom    int64
	failedFromSet bool
	// replayLast is the last offset of the last batch WAL replay saw (-1: none); snapNext the
	// partition's end in the producer-state snapshot (-1: not in it). Load only.
	replayLast, snapNext int64
	heldAtOpen           int64 // the Log's sealed end before replay
}

// undrainedBatch is a durable batch still to be added to the Log.
type undrainedBatch struct {
	base, last int64
	loc        storage.Location
	data       []byte // a single-copy batch's bytes (the WAL has only its header)
}

func newPartition(t *topic, idx int32) *partition {
	return &partition{t: t, idx: idx, producers: map[int64]*producerState{}, replayLast: -1, snapNext: -1}
}

func (p *partition) tp() storage.TopicPartition {
	return storage.TopicPartition{TopicID: p.t.id, Partition: p.idx}
}

func (p *partition) key() string { return logstore.PartitionKey(p.t.id, p.idx) }

func (p *partition) markDeleted() {
	p.mu.Lock()
	p.deleted = true
	p.mu.Unlock()
}

// giveBackLocked returns the offsets base..last of a failed append. The WAL fails every append
// queued behind a failed one until that failure is reported, so when later appends are in
// flight they fail too: the lowest failed base is remembered and handed back by the last of
// them, leaving no hole. p.mu held.
func (p *partition) giveBackLocked(base, last int64) {
	if p.next != last+1 {
		if !p.failedFromSet || base < p.failedFrom {
			p.failedFrom, p.failedFromSet = base, true
		}
		return
	}
	p.next = base
	if p.failedFromSet && p.failedFrom < base {
		p.next = p.failedFrom
	}
	p.failedFromSet = false
}

// appendedLocked notes a successful append. Callbacks come in append order, so failed offsets
// still remembered by giveBackLocked lie below it and can no longer be handed back (a WAL
// that let a later append succeed left a hole, which replay reports): forget them rather
// than hand out offsets twice. p.mu held.
func (p *partition) appendedLocked() {
	p.failedFromSet = false
}

// replayOrderProblem says why sb cannot follow the batches replayed so far, or "". Offsets
// are assigned contiguously and a failed append gives its offsets back (the WAL fails every
// append queued behind a failed one), so consecutive batches of a partition are adjacent;
// only a hole below the log start (records deleted, their segments removed) is expected.
// fromStart: the WAL still holds its first segment, so the first batch must start at the
// log start (or below it). p.mu held (or replay, single-threaded).
func (p *partition) replayOrderProblem(sb *storage.Batch, fromStart bool) string {
	if sb.LastOffset < sb.BaseOffset {
		return fmt.Sprintf("batch offsets %d..%d run backwards", sb.BaseOffset, sb.LastOffset)
	}
	if prev := p.replayLast; prev >= 0 {
		switch {
		case sb.BaseOffset <= prev:
			return fmt.Sprintf("batch at offset %d overlaps the previous batch, which ends at %d", sb.BaseOffset, prev)
		case sb.BaseOffset != prev+1 && sb.BaseOffset > p.logStart:
			return fmt.Sprintf("batch at offset %d follows a batch ending at %d: offsets %d..%d are missing", sb.BaseOffset, prev, prev+1, sb.BaseOffset-1)
		}
		return ""
	}
	// The first batch of the partition in the WAL: where the WAL starts where the snapshot
	// says, it starts at or below the snapshot's end for the partition (else at its log start).
	want := p.logStart
	if p.snapNext >= 0 {
		want = max(want, p.snapNext)
	}
	if fromStart && sb.BaseOffset > want {
		return fmt.Sprintf("the first batch starts at offset %d although the WAL holds every segment not drained: offsets %d..%d are missing", sb.BaseOffset, want, sb.BaseOffset-1)
	}
	return ""
}

// replay rebuilds state from one WAL batch at start-up (checked with replayOrderProblem),
// after the Log took it. A batch the producer-state snapshot covers changes nothing.
// nowMs, the load time, counts as every replayed producer's last activity.
func (p *partition) replay(sb *storage.Batch, h *batchHeader, nowMs int64) {
	if !p.replayOffsets(sb) || sb.LastOffset < p.snapNext {
		return
	}
	if h.control() { // transaction marker: not a producer sequence
		p.replayControlLocked(sb.Data, h, sb.BaseOffset)
		return
	}
	if h.transactional() && h.hasProducerID() {
		p.noteTxnDataLocked(h.ProducerID, sb.BaseOffset)
	}
	if h.hasProducerID() {
		ps := p.producers[h.ProducerID]
		if ps == nil {
			ps = &producerState{epoch: h.ProducerEpoch}
			p.producers[h.ProducerID] = ps
		}
		lat := int64(-1)
		if h.logAppendTime() {
			lat = h.MaxTimestamp
		}
		ps.push(h.ProducerEpoch, &seqBatch{firstSeq: h.BaseSequence, lastSeq: h.lastSequence(), base: sb.BaseOffset, last: sb.LastOffset, logAppendTime: lat})
		ps.lastSeen = nowMs
		ps.txn = ps.txn || h.transactional()
	}
}

// replayOffsets moves the partition's offsets past a replayed batch; false: the batch
// overlaps what was replayed (refused by replayOrderProblem unless the operator recovers
// damaged data).
func (p *partition) replayOffsets(sb *storage.Batch) bool {
	if p.replayLast >= 0 && sb.BaseOffset <= p.replayLast {
		return false
	}
	p.replayLast = sb.LastOffset
	p.hwm = max(p.hwm, sb.LastOffset+1)
	p.next = p.hwm
	return true
}

// appendResult is the outcome of one partition's produce.
type appendResult struct {
	base          int64
	logAppendTime int64 // -1 unless the topic uses LogAppendTime
	logStart      int64
	err           *kerr.Error
	msg           string
}

// append assigns offsets to a validated batch, checks idempotent producer sequences and
// queues it to the WAL; done is called once the batch is durable or failed.
func (p *partition) append(b *Broker, data []byte, h *batchHeader, done func(appendResult)) {
	p.mu.Lock()
	if p.deleted {
		p.mu.Unlock()
		done(appendResult{err: kerr.UnknownTopicOrPartition})
		return
	}
	if p.lg == nil {
		p.mu.Unlock()
		done(appendResult{err: kerr.KafkaStorageError, msg: "partition log not open", logStart: -1})
		return
	}
	var ps *producerState
	nowMs := b.now().UnixMilli()
	if h.hasProducerID() {
		p.expireProducersLocked(nowMs)
		ps = p.producers[h.ProducerID]
		res, dup := ps.check(h.ProducerEpoch, h.BaseSequence, h.lastSequence())
		switch res {
		case seqStaleEpoch:
			p.mu.Unlock()
			done(appendResult{err: kerr.InvalidProducerEpoch, logStart: -1})
			return
		case seqOutOfOrder:
			p.mu.Unlock()
			done(appendResult{err: kerr.OutOfOrderSequenceNumber, logStart: -1})
			return
		case seqDuplicate:
			ok := appendResult{base: dup.base, logAppendTime: dup.logAppendTime, logStart: p.logStart}
			if dup.pending == nil {
				p.mu.Unlock()
				done(ok)
				return
			}
			dup.pending.waiters = append(dup.pending.waiters, func(err *kerr.Error) {
				if err != nil {
					done(appendResult{err: err, logStart: -1})
					return
				}
				done(ok)
			})
			p.mu.Unlock()
			return
		}
		// A transactional batch must be in its producer's ongoing transaction; checked under
		// p.mu so that a marker cannot slip between the check and the append.
		if e := b.txnProduceCheck(p.t.name, p.idx, h); e != nil {
			p.mu.Unlock()
			done(appendResult{err: e, logStart: -1})
			return
		}
		if ps == nil {
			ps = &producerState{epoch: h.ProducerEpoch}
			p.producers[h.ProducerID] = ps
		}
	}

	base := p.next
	last := base + int64(h.LastOffsetDelta)
	lat := int64(-1)
	maxTS := h.MaxTimestamp
	if p.t.logAppendTime() {
		lat = b.now().UnixMilli()
		maxTS = lat
	}
	stampBatch(data, base, lat)
	p.next = last + 1
	if h.transactional() && h.hasProducerID() { // open transaction holds the LSO
		p.noteTxnDataLocked(h.ProducerID, base)
	}
	var sb *seqBatch
	if ps != nil {
		ps.txn = ps.txn || h.transactional()
		sb = &seqBatch{firstSeq: h.BaseSequence, lastSeq: h.lastSequence(), base: base, last: last, logAppendTime: lat, pending: &pendingAppend{}}
		ps.push(h.ProducerEpoch, sb)
		ps.lastSeen = nowMs
	}
	batch := &storage.Batch{TP: p.tp(), BaseOffset: base, LastOffset: last, MaxTimestamp: maxTS, Data: data,
		// The batch CRC (bytes 17-20, over bytes 21..) was checked by validateProduceBatch or
		// recomputed by stampBatch: the WAL reuses it rather than checksum the batch again.
		DataCRCFrom: 21, DataCRC: binary.BigEndian.Uint32(data[17:21])}
	// A hot partition's batch goes into its segment only (single-copy, logstore's
	// staged.go): staged in the Log here, in offset order, made durable by the WAL's group
	// commit, committed by the drain at the acknowledgement.
	lg := p.lg
	external := false
	if lg != nil && !p.deleted {
		var err error
		if external, err = lg.Stage(data); err != nil {
			b.log.Warn("partition log refused to stage a batch; it takes the WAL", "topic", p.t.name, "partition", p.idx, "offset", base, "err", err)
			external = false
		}
		if external {
			batch.External = lg
		}
	}
	// Appending under p.mu keeps WAL order equal to offset order within the partition.
	b.wal.Append(batch, func(loc storage.Location, err error) {
		p.mu.Lock()
		var pend *pendingAppend
		if sb != nil {
			pend, sb.pending = sb.pending, nil
		}
		if err != nil {
			if external {
				lg.Unstage(base)
			}
			p.giveBackLocked(base, last)
			if sb != nil {
				ps.drop(sb)
			}
			p.mu.Unlock()
			b.log.Error("WAL append failed", "topic", p.t.name, "partition", p.idx, "err", err)
			done(appendResult{err: kerr.KafkaStorageError, msg: err.Error(), logStart: -1})
			if pend != nil {
				for _, w := range pend.waiters {
					w(kerr.KafkaStorageError)
				}
			}
			return
		}
		p.appendedLocked()
		b.drainLocked(p, data, base, last, loc, external)
		logStart := p.logStart
		p.mu.Unlock()
		b.signalData()
		done(appendResult{base: base, logAppendTime: lat, logStart: logStart})
		if pend != nil {
			for _, w := range pend.waiters {
				w(nil)
			}
		}
	})
	p.mu.Unlock()
}

// offsets returns the log start offset and the high watermark.
func (p *partition) offsets() (logStart, hwm int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logStart, p.hwm
}
