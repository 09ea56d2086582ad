package broker

// Producer-state snapshot: what WAL replay used to rebuild from the first byte ever written
// (idempotent producer windows and epochs, open transactions, the producer ID high mark),
// written before WAL segments below the Drain checkpoint are deleted (trimWAL), as Kafka's
// ProducerStateManager snapshots. Start-up loads it, then replays only the WAL segments from
// its checkpoint on; a partition's batches below its snapshot end change no state.
//
// <data-dir>/producers.snapshot, written to a temporary file, fsynced, renamed over the old
// one and the directory fsynced. All integers big-endian.
//
//	 off  size  field
//	   0     4  magic "KPSS"
//	   4     1  version (1)
//	   5     3  reserved (0)
//	   8     4  CRC-32C (Castagnoli) of every byte from 12 to the end
//	  12     8  WAL checkpoint: replay starts at this WAL segment; every earlier one is
//	            covered by this snapshot and the partition segments
//	  20     8  next producer ID (one past the highest seen)
//	  28     4  partition count, then per partition:
//	             16  topic ID
//	              4  partition
//	              8  next offset: the snapshot covers the offsets below it
//	              4  producer count, then per producer:
//	                   8  producer ID
//	                   2  epoch
//	                   1  flags (1: transactional)
//	                   1  batch count (at most 5), then per batch, oldest first:
//	                        4 first sequence, 4 last sequence, 8 base offset,
//	                        8 last offset, 8 log append time (-1: CreateTime)
//	              4  open transaction count, then per transaction:
//	                   8  producer ID, 8 first offset

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"

	"github.com/klite/klite/broker/storage"
)

const (
	snapshotName    = "producers.snapshot"
	snapshotMagic   = "KPSS"
	snapshotVersion = 1
	snapHeaderLen   = 32
)

type producerSnapshot struct {
	walSeg  uint64
	nextPID int64
	parts   []snapPartition
}

type snapPartition struct {
	topicID   [16]byte
	partition int32
	next      int64
	producers []snapProducer
	open      [][2]int64 // {pid, first offset}
}

type snapProducer struct {
	pid     int64
	epoch   int16
	txn     bool
	batches []seqBatch
}

func (s *producerSnapshot) encode() []byte {
	be := binary.BigEndian
	out := make([]byte, snapHeaderLen, 4096)
	copy(out, snapshotMagic)
	out[4] = snapshotVersion
	be.PutUint64(out[12:], s.walSeg)
	be.PutUint64(out[20:], uint64(s.nextPID))
	be.PutUint32(out[28:], uint32(len(s.parts)))
	for _, p := range s.parts {
		out = append(out, p.topicID[:]...)
		out = be.AppendUint32(out, uint32(p.partition))
		out = be.AppendUint64(out, uint64(p.next))
		out = be.AppendUint32(out, uint32(len(p.producers)))
		for _, pr := range p.producers {
			out = be.AppendUint64(out, uint64(pr.pid))
			out = be.AppendUint16(out, uint16(pr.epoch))
			flags := byte(0)
			if pr.txn {
				flags = 1
			}
			out = append(out, flags, byte(len(pr.batches)))
			for _, sb := range pr.batches {
				out = be.AppendUint32(out, uint32(sb.firstSeq))
				out = be.AppendUint32(out, uint32(sb.lastSeq))
				out = be.AppendUint64(out, uint64(sb.base))
				out = be.AppendUint64(out, uint64(sb.last))
				out = be.AppendUint64(out, uint64(sb.logAppendTime))
			}
		}
		out = be.AppendUint32(out, uint32(len(p.open)))
		for _, o := range p.open {
			out = be.AppendUint64(be.AppendUint64(out, uint64(o[0])), uint64(o[1]))
		}
	}
	be.PutUint32(out[8:], crc32.Checksum(out[12:], crc32c))
	return out
}

// snapReader reads big-endian fields, failing once anything runs past the end.
type snapReader struct {
	b   []byte
	bad bool
}

func (r *snapReader) take(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
func (r *snapReader) u8() byte    { return r.take(1)[0] }
func (r *snapReader) u16() uint16 { return binary.BigEndian.Uint16(r.take(2)) }
func (r *snapReader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *snapReader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }

// count reads a count of entries at least min bytes each, refusing one the rest cannot hold.
func (r *snapReader) count(min int) int {
	n := int(r.u32())
	if r.bad || n > len(r.b)/min {
		r.bad = true
		return 0
	}
	return n
}

func decodeProducerSnapshot(b []byte) (*producerSnapshot, error) {
	if len(b) < snapHeaderLen || string(b[:4]) != snapshotMagic {
		return nil, errors.New("not a producer-state snapshot (bad magic or short)")
	}
	if b[4] != snapshotVersion || b[5]|b[6]|b[7] != 0 {
		return nil, fmt.Errorf("producer-state snapshot version %d, want %d", b[4], snapshotVersion)
	}
	if got, want := crc32.Checksum(b[12:], crc32c), binary.BigEndian.Uint32(b[8:]); got != want {
		return nil, fmt.Errorf("producer-state snapshot CRC %08x, stored %08x", got, want)
	}
	r := &snapReader{b: b[12:]}
	s := &producerSnapshot{walSeg: r.u64(), nextPID: int64(r.u64())}
	nParts := r.count(36)
	for i := 0; i < nParts && !r.bad; i++ {
		var p snapPartition
		copy(p.topicID[:], r.take(16))
		p.partition = int32(r.u32())
		p.next = int64(r.u64())
		nProd := r.count(12)
		for j := 0; j < nProd && !r.bad; j++ {
			pr := snapProducer{pid: int64(r.u64()), epoch: int16(r.u16())}
			flags, nb := r.u8(), int(r.u8())
			pr.txn = flags&1 != 0
			if flags&^1 != 0 || nb > producerWindow {
				return nil, fmt.Errorf("producer-state snapshot: producer %d has flags %#x and %d batches", pr.pid, flags, nb)
			}
			for k := 0; k < nb; k++ {
				pr.batches = append(pr.batches, seqBatch{firstSeq: int32(r.u32()), lastSeq: int32(r.u32()),
					base: int64(r.u64()), last: int64(r.u64()), logAppendTime: int64(r.u64())})
			}
			p.producers = append(p.producers, pr)
		}
		nOpen := r.count(16)
		for j := 0; j < nOpen && !r.bad; j++ {
			p.open = append(p.open, [2]int64{int64(r.u64()), int64(r.u64())})
		}
		s.parts = append(s.parts, p)
	}
	if r.bad {
		return nil, errors.New("producer-state snapshot: truncated")
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("producer-state snapshot: %d bytes after the last partition", len(r.b))
	}
	return s, nil
}

func (b *Broker) snapshotPath() string { return filepath.Join(b.dataDir, snapshotName) }

// takeSnapshot captures the durable producer state of every live partition: batches below
// each high watermark only (appends in flight are replayed from the WAL).
func (b *Broker) takeSnapshot(walSeg uint64) *producerSnapshot {
	s := &producerSnapshot{walSeg: walSeg}
	b.pidMu.Lock()
	s.nextPID = b.nextPID
	b.pidMu.Unlock()
	topics := b.allTopics()
	sort.Slice(topics, func(i, j int) bool { return topics[i].name < topics[j].name })
	for _, t := range topics {
		for _, p := range t.partitions() {
			p.mu.Lock()
			if p.deleted || p.lg == nil {
				p.mu.Unlock()
				continue
			}
			sp := snapPartition{topicID: t.id, partition: p.idx, next: p.hwm}
			for pid, ps := range p.producers {
				pr := snapProducer{pid: pid, epoch: ps.epoch, txn: ps.txn}
				for _, sb := range ps.batches {
					if sb.pending == nil && sb.last < p.hwm {
						pr.batches = append(pr.batches, seqBatch{firstSeq: sb.firstSeq, lastSeq: sb.lastSeq, base: sb.base, last: sb.last, logAppendTime: sb.logAppendTime})
					}
				}
				sp.producers = append(sp.producers, pr)
			}
			for pid, first := range p.txn.open {
				if first < p.hwm {
					sp.open = append(sp.open, [2]int64{pid, first})
				}
			}
			p.mu.Unlock()
			sort.Slice(sp.producers, func(i, j int) bool { return sp.producers[i].pid < sp.producers[j].pid })
			sort.Slice(sp.open, func(i, j int) bool { return sp.open[i][0] < sp.open[j][0] })
			s.parts = append(s.parts, sp)
		}
	}
	return s
}

// writeSnapshot writes s durably: temporary file, fsync, rename, directory fsync.
func (b *Broker) writeSnapshot(s *producerSnapshot) error {
	path := b.snapshotPath()
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(s.encode())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDirPath(b.dataDir)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func syncDirPath(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// loadSnapshot restores the producer state of the snapshot, if any, before WAL replay and
// returns the WAL segment replay is expected to start at (1 without a snapshot). A damaged
// snapshot is corruption; with RecoverDamaged it is logged and ignored (the state of the
// producers it held is lost, as Kafka loses it without its snapshots).
func (b *Broker) loadSnapshot() (uint64, error) {
	path := b.snapshotPath()
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	s, err := decodeProducerSnapshot(raw)
	if err != nil {
		cerr := &storage.CorruptError{Path: path, Offset: 0, Size: int64(len(raw)), Reason: err.Error()}
		if !b.cfg.RecoverDamaged {
			return 0, cerr
		}
		b.log.Error("RECOVERY: the producer-state snapshot is damaged; idempotent and transactional producer state before its checkpoint is lost", "file", path, "err", err)
		return 0, nil
	}
	b.snapSeg = s.walSeg
	b.nextPID = max(b.nextPID, s.nextPID)
	for _, sp := range s.parts {
		t := b.topicsByID[sp.topicID]
		if t == nil {
			continue // deleted since
		}
		p := t.partition(sp.partition)
		if p == nil {
			continue
		}
		p.snapNext = sp.next
		p.hwm, p.next = max(p.hwm, sp.next), max(p.next, sp.next)
		for _, pr := range sp.producers {
			ps := &producerState{epoch: pr.epoch, txn: pr.txn, lastSeen: b.now().UnixMilli()}
			for i := range pr.batches {
				sb := pr.batches[i]
				ps.batches = append(ps.batches, &sb)
			}
			p.producers[pr.pid] = ps
			if pr.txn {
				b.noteSnapshotTxnEpoch(pr.pid, pr.epoch)
			}
		}
		for _, o := range sp.open {
			p.noteTxnDataLocked(o[0], o[1])
		}
	}
	return s.walSeg, nil
}
