package broker

// Per-partition transaction state: the first offset of each producer's open transaction
// (which holds the last stable offset back), restored on start from the producer-state
// snapshot and the WAL replayed after it: transactional batches open a transaction, control
// batches close it. The aborted transactions (producer ID, first offset, marker offset) that
// read_committed fetches report are the partition Log's (its segments' aborted indexes).
//
// Control batch (transaction marker), as Kafka writes it:
//
//	RecordBatch v2, attributes = transactional | control, producer ID/epoch of the transaction,
//	base sequence -1, one record with
//	  key   = int16 version (0) | int16 type (0 abort, 1 commit)
//	  value = int16 version (0) | int32 coordinator epoch

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/klite/klite/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type partTxns struct {
	open map[int64]int64 // producer ID -> first offset of its open transaction
}

// noteTxnDataLocked records a transactional data batch at base. p.mu held.
func (p *partition) noteTxnDataLocked(pid, base int64) {
	if p.txn.open == nil {
		p.txn.open = map[int64]int64{}
	}
	if _, ok := p.txn.open[pid]; !ok {
		p.txn.open[pid] = base
	}
}

// noteMarkerLocked closes producer pid's open transaction at the marker's offset. p.mu held.
func (p *partition) noteMarkerLocked(pid int64, epoch int16, _ bool, offset int64) {
	if first, ok := p.txn.open[pid]; ok && first < offset {
		delete(p.txn.open, pid)
	}
	// A marker written with a bumped epoch (fencing, timeout) fences older epochs here too.
	ps := p.producers[pid]
	if ps == nil {
		p.producers[pid] = &producerState{epoch: epoch, lastSeen: p.lastSweep}
	} else if epoch > ps.epoch {
		ps.epoch = epoch
		ps.batches = ps.batches[:0]
	}
}

// replayControlLocked applies a control batch found in the WAL at start-up.
func (p *partition) replayControlLocked(data []byte, h *batchHeader, base int64) {
	commit, ok := markerType(data, h)
	if !ok {
		return
	}
	p.noteMarkerLocked(h.ProducerID, h.ProducerEpoch, commit, base)
}

// markerType decodes a control batch's record key: commit (true) or abort.
func markerType(data []byte, h *batchHeader) (commit bool, ok bool) {
	if h.codec() != 0 || len(data) <= batchHeaderLen {
		return false, false
	}
	raw := data[batchHeaderLen:]
	l, sz := binary.Varint(raw)
	if sz <= 0 || l < 0 || int64(len(raw)-sz) < l {
		return false, false
	}
	var r kmsg.Record
	if err := r.ReadFrom(raw[:sz+int(l)]); err != nil || len(r.Key) < 4 {
		return false, false
	}
	switch binary.BigEndian.Uint16(r.Key[2:]) {
	case 0:
		return false, true
	case 1:
		return true, true
	}
	return false, false
}

// lsoLocked is the last stable offset: the first offset of the oldest open transaction, or
// the high watermark. p.mu held.
func (p *partition) lsoLocked() int64 {
	lso := p.hwm
	for _, first := range p.txn.open {
		if first < lso {
			lso = first
		}
	}
	return lso
}

// lso returns the last stable offset.
func (p *partition) lso() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lsoLocked()
}

// advanceLogStartLocked moves the log start up to offset (never down). p.mu held.
func (p *partition) advanceLogStartLocked(offset int64) {
	if offset > p.logStart {
		p.logStart = offset
	}
}

// openTxnFirst returns the first offset of pid's open transaction, or -1.
func (p *partition) openTxnFirstLocked(pid int64) int64 {
	if first, ok := p.txn.open[pid]; ok {
		return first
	}
	return -1
}

// buildMarker encodes a control batch (base offset 0; stampBatch sets it).
func buildMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32, ts int64) []byte {
	key := make([]byte, 4)
	if commit {
		binary.BigEndian.PutUint16(key[2:], 1)
	}
	val := make([]byte, 6)
	binary.BigEndian.PutUint32(val[2:], uint32(coordinatorEpoch))
	rec := kmsg.Record{Key: key, Value: val}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // AppendTo writes Length as a 1-byte varint 0 first
	recBytes := rec.AppendTo(nil)

	b := kmsg.RecordBatch{
		Magic:           2,
		Attributes:      attrTransactional | attrControl,
		LastOffsetDelta: 0,
		FirstTimestamp:  ts,
		MaxTimestamp:    ts,
		ProducerID:      pid,
		ProducerEpoch:   epoch,
		FirstSequence:   -1,
		NumRecords:      1,
		Records:         recBytes,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32c))
	return out
}

// errPartitionDeleted is not an error for markers: a deleted partition needs none.
var errPartitionDeleted = errors.New("partition deleted")

// appendMarker durably appends a transaction marker through the WAL like any batch, then
// closes the transaction in the partition's state (moving the LSO) and wakes fetches.
func (p *partition) appendMarker(b *Broker, pid int64, epoch int16, commit bool, done func(error)) {
	data := buildMarker(pid, epoch, commit, 0, b.now().UnixMilli())
	p.mu.Lock()
	if p.deleted {
		p.mu.Unlock()
		done(errPartitionDeleted)
		return
	}
	base := p.next
	stampBatch(data, base, -1)
	p.next = base + 1
	h, _ := parseBatchHeader(data)
	batch := &storage.Batch{TP: p.tp(), BaseOffset: base, LastOffset: base, MaxTimestamp: h.MaxTimestamp, Data: data}
	b.wal.Append(batch, func(loc storage.Location, err error) {
		p.mu.Lock()
		if err != nil {
			p.giveBackLocked(base, base)
			p.mu.Unlock()
			done(err)
			return
		}
		p.appendedLocked()
		b.drainLocked(p, data, base, base, loc, false)
		p.noteMarkerLocked(pid, epoch, commit, base)
		p.mu.Unlock()
		b.signalData()
		done(nil)
	})
	p.mu.Unlock()
}

// txnProduceCheck verifies a transactional batch against the coordinator (nil if the batch
// is not transactional). Called by partition.append under p.mu (lock order: p.mu, then the
// coordinator's; the coordinator never holds its lock while appending).
func (b *Broker) txnProduceCheck(topic string, partition int32, h *batchHeader) *kerr.Error {
	if !h.transactional() || b.txns == nil {
		return nil
	}
	return b.txns.ProduceCheck(h.ProducerID, h.ProducerEpoch, txnTP(topic, partition))
}
