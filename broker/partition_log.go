package broker

// Wiring of the partition segment store (broker/logstore) into the broker.
//
// Every batch the WAL acknowledges goes into the Drain (drainLocked, in the WAL callback,
// before the high watermark moves), so a partition's Log holds exactly the offsets below its
// high watermark and every read (fetch, ListOffsets, aborted transactions, sizes) goes to the
// Log: sealed segments under <data-dir>/segments/ (a DirStore; a MemStore when the broker is
// given an in-memory WAL) and the unsealed tail in memory. At start-up every replayed WAL
// batch goes to the Drain as well; a Log ignores what it already holds.
//
// The WAL is trimmed (trimWAL) below the Drain's checkpoint, the oldest WAL segment an
// unsealed tail still needs, after the producer state covering everything up to then is
// written to a snapshot (producer_snapshot.go): replay then starts at the checkpoint and
// the state comes from the snapshot. In-memory mode never trims: the WAL keeps everything.
//
// The jobs loop (runJobs) trims the WAL, seals idle tails, applies retention every
// --retention-check-interval and compaction every --compaction-backoff.

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// segmentsDir is where the DirStore keeps segment objects, under the data directory.
	segmentsDir = "segments"
	// tailBudget bounds the memory of all unsealed tails together (their buffers): above it
	// an appending partition writes its active segment's data in small chunks
	// (logstore.Options.TailBudget) and the jobs loop seals the largest tails. A hot
	// partition holds a MiB chunk filling and up to 5 being written (active and sealing:
	// 6 hot partitions ~30 MiB, more while the disk lags). Under it the budget acts only
	// when many partitions are hot: a thousand then hold about 48 KiB each. At 128 MiB the
	// 1,000-partition produce phase peaked at 294 MB RSS; at 48 MiB 173-189 MB, with the
	// 6-partition phases unchanged (509-550 MB/s against 528-539 in alternated runs).
	// Where more partitions hold tails than the budget has MiBs, those taking under a MiB a
	// second write at 16 KiB even under it (logstore: crowded), and their buffered writes go
	// to the disk as they come (startWriteback): that phase then peaked at 128-149 MB RSS
	// against 163-191 (446-498 MB/s against 356-501, alternated runs), with ~0.2 GB of dirty
	// pages at its end instead of 1.6-2.2 GB for the kernel to write at once.
	tailBudget = 48 << 20
	// maxActiveBytes is where a partition's active segment rolls (below segment.bytes).
	// The active segment is written to its file as it fills (a MiB at a time, see
	// logstore/tail.go), so its size no longer costs memory: larger segments cost fewer
	// seals (a file, two fsyncs, a rename). The WAL trim seals a tail anyway once its
	// oldest batch is in a WAL segment the WAL rolled past, which bounds it under load.
	maxActiveBytes = 32 << 20
	// defaultTrimInterval is how often the jobs loop seals tails pinning old WAL segments
	// and trims (Config.WALTrimInterval).
	defaultTrimInterval = time.Second
	// tailIdleAfter: over tailBudget, the tails of partitions idle this long are sealed
	// first.
	tailIdleAfter = time.Second
	// idleSealAfter: a tail whose buffers hold at least idleSealBytes is sealed (its memory
	// freed) once its partition took no append for this long, and once the whole broker took
	// none for this long the memory goes back to the OS (log_jobs.go). A burst's tails held
	// ~130 MB for 10 s before; small tails are left alone, so a trickle (a record every few
	// seconds) still fills one segment per WAL segment age instead of one per record.
	idleSealAfter = time.Second
	idleSealBytes = 1 << 20
	// idleSealAllAfter: every tail, small ones too, is sealed once the whole broker took no
	// append for this long (a restart then replays nothing, and the WAL can be trimmed).
	idleSealAllAfter = 10 * time.Second
)

// openSegmentStore sets up the Drain: a DirStore under the data directory with the file
// WAL, a MemStore with an in-memory one (then the WAL is never trimmed).
func (b *Broker) openSegmentStore() error {
	st := b.cfg.Segments
	if st == nil && b.cfg.WAL == nil {
		ds, err := logstore.OpenDirStore(filepath.Join(b.dataDir, segmentsDir))
		if err != nil {
			return fmt.Errorf("segment store: %w", err)
		}
		if b.cfg.StorageFaults != nil {
			ds.SetFaults(b.cfg.StorageFaults)
		}
		st = ds
		b.trimmable = b.cfg.WALTrimInterval >= 0
	}
	if st == nil {
		st = logstore.NewMemStore()
	}
	opts := logstore.Options{Logger: b.log, Now: func() int64 { return b.now().UnixMilli() }, AsyncRoll: true, CleanerLimit: cleanerLimit,
		TailBudget: tailBudget, MaxActiveBytes: maxActiveBytes, SingleCopy: !b.cfg.NoSingleCopy, SingleCopyBytesPerSec: b.cfg.SingleCopyBytesPerSec}
	if b.s3 != nil {
		// The S3 tier: local first, S3 behind (s3_flush.go); tails seal at the object size.
		ts, err := b.tieredStore(st)
		if err != nil {
			return err
		}
		st = ts
		if n := b.cfg.S3.TargetObjectBytes; n > 0 {
			opts.MaxActiveBytes = n
		}
	}
	b.segStore = st
	b.drain = logstore.NewDrain(st, func(key string) logstore.Config {
		if v, ok := b.logCfgs.Load(key); ok {
			return v.(logstore.Config)
		}
		return logstore.DefaultConfig()
	}, opts)
	return nil
}

// openLogs opens the Logs of t's partitions that have none yet. fresh: t or the partitions
// without a Log were just created (CreateTopics, auto-creation, CreatePartitions), so their
// Logs are empty and the Store is not listed (an S3 outage must not hold up creation).
func (b *Broker) openLogs(t *topic, fresh bool) error {
	cfg := t.logConfig()
	var errs []error
	for _, p := range t.partitions() {
		p.mu.Lock()
		if p.lg == nil {
			b.logCfgs.Store(p.key(), cfg)
			var lg *logstore.Log
			var err error
			if fresh {
				lg = b.drain.Create(p.key())
			} else {
				lg, err = b.drain.Log(p.key())
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("topic %s partition %d: %w", t.name, p.idx, err))
			} else {
				p.lg = lg
			}
		}
		p.mu.Unlock()
	}
	return errors.Join(errs...)
}

// refreshLogConfigs hands the topics' current configuration (their own and the dynamic
// broker defaults) to their Logs.
func (b *Broker) refreshLogConfigs() {
	for _, t := range b.allTopics() {
		cfg := t.logConfig()
		for _, p := range t.partitions() {
			b.logCfgs.Store(p.key(), cfg)
			if lg := p.log(); lg != nil {
				lg.SetConfig(cfg)
			}
		}
	}
}

func (b *Broker) allTopics() []*topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]*topic, 0, len(b.topics))
	for _, t := range b.topics {
		out = append(out, t)
	}
	return out
}

func (p *partition) log() *logstore.Log {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lg
}

// drainLocked adds a batch the WAL acknowledged to the partition's Log and moves the high
// watermark past it. A batch the Log refuses (or one behind a refused one) waits in
// undrained, the high watermark with it, until drainUndrained succeeds; one the WAL holds
// only the header of (single-copy, staged in the Log) keeps its data there. p.mu held.
func (b *Broker) drainLocked(p *partition, data []byte, base, last int64, loc storage.Location, external bool) {
	b.lastAppend.Store(b.now().UnixMilli())
	if p.deleted {
		return
	}
	if len(p.undrained) == 0 {
		err := b.drain.Add(p.key(), data, loc.Segment)
		if err == nil {
			p.hwm = max(p.hwm, last+1)
			return
		}
		b.log.Error("partition log refused a batch; it stays in the WAL and is retried", "topic", p.t.name, "partition", p.idx, "offset", base, "err", err)
	}
	u := undrainedBatch{base: base, last: last, loc: loc}
	if external {
		u.data = data
	}
	p.undrained = append(p.undrained, u)
}

// drainUndrained retries the batches the Log refused, reading them back from the WAL.
func (b *Broker) drainUndrained(p *partition) {
	p.mu.Lock()
	moved := false
	for len(p.undrained) > 0 && !p.deleted {
		u := p.undrained[0]
		data, err := u.data, error(nil)
		if data == nil {
			data, err = b.wal.ReadAt(u.loc, nil)
		}
		if err == nil {
			err = b.drain.Add(p.key(), data, u.loc.Segment)
		}
		if err != nil {
			b.log.Warn("partition log still refuses a batch", "topic", p.t.name, "partition", p.idx, "offset", u.base, "err", err)
			break
		}
		p.undrained = p.undrained[1:]
		p.hwm = max(p.hwm, u.last+1)
		moved = true
	}
	p.mu.Unlock()
	if moved {
		b.signalData()
	}
}

// readBatches appends to buf the whole batches a fetch at offset returns, below upper (the
// high watermark or the LSO): at least one batch when minOne, else only what fits in limit.
// It returns the last offset served (-1: none).
func (p *partition) readBatches(buf []byte, offset, upper, limit int64, minOne bool) ([]byte, int64, *kerr.Error) {
	lg := p.log()
	if lg == nil {
		return buf, -1, kerr.KafkaStorageError
	}
	start := len(buf)
	out, err := lg.ReadAppend(buf, offset, int(min(limit, 1<<30)))
	if err != nil {
		if errors.Is(err, logstore.ErrOffsetOutOfRange) {
			return buf, -1, kerr.OffsetOutOfRange
		}
		return buf, -1, kerr.KafkaStorageError
	}
	// Cut at upper, and drop a first batch larger than the limit unless minOne.
	pos, lastOff := start, int64(-1)
	for pos+batchHeaderLen <= len(out) {
		h, ok := parseBatchHeader(out[pos:])
		size := int(h.Length) + 12
		if !ok || h.Length < 0 || pos+size > len(out) {
			break
		}
		last := int64(binary.BigEndian.Uint64(out[pos:])) + int64(h.LastOffsetDelta)
		if last >= upper || !minOne && int64(pos+size-start) > limit {
			break
		}
		pos += size
		lastOff = last
	}
	return out[:pos], lastOff, nil
}

// abortedIn lists the aborted transactions overlapping offsets [from, to], for a
// read_committed fetch that returned data up to offset to (from the segments' aborted
// indexes and the tail).
func (p *partition) abortedIn(from, to int64) ([]kmsg.FetchResponseTopicPartitionAbortedTransaction, error) {
	out := []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
	lg := p.log()
	if lg == nil {
		return out, nil
	}
	ab, err := lg.AbortedTxns(from, to+1)
	for _, a := range ab {
		at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
		at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
		out = append(out, at)
	}
	return out, err
}

// bytesFrom estimates the stored bytes from offset on (capped), without I/O.
func (p *partition) bytesFrom(offset, limit int64) int64 {
	if lg := p.log(); lg != nil {
		return lg.BytesFrom(offset, limit)
	}
	return 0
}

// size is the partition's bytes on disk and in its tail (DescribeLogDirs).
func (p *partition) size() int64 {
	if lg := p.log(); lg != nil {
		return lg.Size()
	}
	return 0
}

// syncLogStart moves the partition's log start up to its Log's (retention advanced it).
func (p *partition) syncLogStart() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lg == nil {
		return false
	}
	if ls := p.lg.LogStartOffset(); ls > p.logStart {
		p.advanceLogStartLocked(ls)
		return true
	}
	return false
}

// removeDeletedTopicSegments removes, at start-up, the segment directories of deleted topics
// (a crash between the deletion and the removal of its segments leaves them; also their
// empty directories).
func (b *Broker) removeDeletedTopicSegments() {
	if !b.trimmable {
		return
	}
	root := filepath.Join(b.dataDir, segmentsDir)
	es, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range es {
		var id [16]byte
		if n, err := hex.Decode(id[:], []byte(e.Name())); err != nil || n != 16 || !e.IsDir() {
			continue
		}
		if b.deletedIDs[id] && b.topicsByID[id] == nil {
			b.purgeS3Topic(id) // its S3 objects may have outlived the crash too
			if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
				b.log.Warn("removing a deleted topic's segments failed", "topic_id", e.Name(), "err", err)
			}
		}
	}
}
