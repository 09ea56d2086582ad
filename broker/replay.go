package broker

// Loading the broker's state at start-up: replaying the WAL into partitions, and what a
// replay does with batches of deleted or unknown topics and with damage.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/klite/klite/broker/storage"
)

func (b *Broker) load() error {
	start := time.Now()
	if err := b.replayMeta(); err != nil {
		return err
	}
	if b.cfg.ClusterID != "" && b.clusterID != "" && b.cfg.ClusterID != b.clusterID {
		return fmt.Errorf("cluster id %q does not match the id %q stored in %s", b.cfg.ClusterID, b.clusterID, b.dataDir)
	}
	for _, t := range b.topics {
		if err := b.openLogs(t, false); err != nil {
			return fmt.Errorf("opening partition logs: %w", err)
		}
	}
	// The WAL is expected to start at the snapshot's checkpoint (0: unknown).
	expectFirst, err := b.loadSnapshot()
	if err != nil {
		return err
	}
	var n int
	var firstSeg, lastSeg uint64
	loadMs := b.now().UnixMilli()
	for _, t := range b.topics {
		for _, p := range t.partitions() {
			p.heldAtOpen = p.lg.DurableOffset()
		}
	}
	err = b.wal.Replay(func(sb *storage.Batch, loc storage.Location) error {
		n++
		if firstSeg == 0 {
			firstSeg = loc.Segment
			if expectFirst > 0 && firstSeg > expectFirst {
				why := fmt.Sprintf("the WAL starts at segment %d, but %s needs every segment from %d on", firstSeg, b.snapshotPath(), expectFirst)
				if err := b.replayCorruption(loc, why); err != nil {
					return err
				}
			}
		}
		t := b.topicsByID[sb.TP.TopicID]
		var p *partition
		if t != nil {
			p = t.partition(sb.TP.Partition)
		}
		if p == nil {
			if t == nil && b.deletedIDs[sb.TP.TopicID] {
				return nil // topic deleted since
			}
			return b.orphanBatch(sb, loc, t != nil)
		}
		if why := p.replayOrderProblem(sb, firstSeg <= expectFirst); why != "" {
			if err := b.replayCorruption(loc, fmt.Sprintf("topic %s partition %d: %s", t.name, p.idx, why)); err != nil {
				return err
			}
		}
		if sb.Data == nil && sb.ExternalLen > 0 {
			// A single-copy batch: its bytes are in the partition's segments (or in the
			// segment being written when the broker stopped).
			data, err := b.drain.ReplayData(p.key(), sb.BaseOffset, sb.ExternalLen)
			if err == nil && !sb.CheckExternal(data) {
				err = errors.New("its bytes are not the ones the WAL entry's checksum covers")
			}
			switch {
			case err == nil:
				sb.Data = data
			case sb.LastOffset < p.heldAtOpen:
				// Sealed before the restart and removed since (retention, DeleteRecords,
				// the cleaner): only its offsets are replayed, as its producer state went
				// with it.
				b.log.Info("replay: a single-copy batch its partition no longer holds; replaying its offsets only",
					"topic", t.name, "partition", p.idx, "offset", sb.BaseOffset, "err", err)
				lastSeg = loc.Segment
				p.replayOffsets(sb)
				return nil
			default:
				// Its sync did not complete, so neither it nor anything after it in the WAL
				// was acknowledged (acknowledgements wait for the group commit's syncs, in
				// order): the WAL ends here.
				b.log.Warn("replay: a single-copy batch was not durable; the WAL is cut before it (nothing after it was acknowledged)",
					"topic", t.name, "partition", p.idx, "offset", sb.BaseOffset, "err", err)
				return storage.ErrCutReplay
			}
		}
		lastSeg = loc.Segment
		// A batch the partition segments already hold (sealed before the WAL segment was
		// trimmed) needs no Add: replay of the WAL's last segment stays cheap.
		if sb.LastOffset >= p.heldAtOpen {
			if err := b.drain.Add(p.key(), sb.Data, loc.Segment); err != nil {
				why := fmt.Sprintf("topic %s partition %d: the partition log (%s) refuses the batch at offset %d: %v", t.name, p.idx, segmentsDir, sb.BaseOffset, err)
				if err := b.replayCorruption(loc, why); err != nil {
					return err
				}
				return nil
			}
		}
		h, _ := parseBatchHeader(sb.Data)
		if h.transactional() && h.hasProducerID() {
			b.noteReplayedTxnEpoch(h.ProducerID, h.ProducerEpoch, loc)
		}
		p.replay(sb, &h, loadMs)
		if h.ProducerID >= b.nextPID {
			b.nextPID = h.ProducerID + 1
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replaying WAL: %w", err)
	}
	b.drain.NoteSegment(lastSeg)
	if err := b.drain.FinishRecovery(); err != nil {
		// Their batches stay in memory and in the leftovers, which the next start reads.
		b.log.Warn("sealing the replayed single-copy segments failed; they are kept for the next start", "err", err)
	}
	if err := b.replayRestoredTails(); err != nil { // after a restore from S3 (s3_restore.go)
		return err
	}
	// The cluster ID is minted only for a new, empty data directory: a WAL with data and no
	// metadata is damage (refused above, batch by batch, unless recovering).
	if b.clusterID == "" {
		b.clusterID = b.cfg.ClusterID
		if b.clusterID == "" {
			b.clusterID = NewClusterID()
		}
		if n > 0 {
			b.log.Error("RECOVERY: the metadata log has no cluster ID although the WAL holds batches; starting with a new cluster ID",
				"cluster_id", b.clusterID, "wal_batches", n)
		}
		if err := b.meta.Append(encodeMeta(metaRecord{Type: "cluster", ClusterID: b.clusterID})); err != nil {
			return fmt.Errorf("persisting cluster id: %w", err)
		}
	}
	if err := b.recordOrphansDeleted(); err != nil {
		return fmt.Errorf("recording recovered topic IDs: %w", err)
	}
	b.removeDeletedTopicSegments()
	b.fixLogStartsAfterReplay() // delete_records.go
	if err := b.settleLogs(); err != nil {
		return err
	}
	b.log.Info("state loaded", "cluster_id", b.clusterID, "topics", len(b.topics), "batches", n, "took", time.Since(start))
	return nil
}

// orphanBatch handles a WAL batch of a topic ID (or partition) the metadata log does not know
// and never deleted: the metadata is damaged or lost, and dropping the batch would silently
// lose acknowledged data. Corruption, unless the operator recovers: then the segment is
// linked into DataDir/damaged/wal/ (kept whatever later removes it) and the batch skipped.
func (b *Broker) orphanBatch(sb *storage.Batch, loc storage.Location, knownTopic bool) error {
	why := fmt.Sprintf("batch of topic ID %x, which the metadata log (%s) neither creates nor deletes", sb.TP.TopicID, filepath.Join(b.dataDir, "meta.log"))
	if knownTopic {
		why = fmt.Sprintf("batch of partition %d of topic ID %x, which the metadata log (%s) does not have", sb.TP.Partition, sb.TP.TopicID, filepath.Join(b.dataDir, "meta.log"))
	}
	if b.clusterID == "" {
		why += "; the metadata log is empty or missing although the WAL holds data"
	}
	if err := b.replayCorruption(loc, why); err != nil {
		return err
	}
	if !knownTopic {
		b.deletedIDs[sb.TP.TopicID] = true // recovering: recorded as deleted once replay is done
		b.orphanIDs = append(b.orphanIDs, sb.TP.TopicID)
	}
	return nil
}

// recordOrphansDeleted persists, after a recovering replay, a deletion for every topic ID
// whose batches could not be placed: the operator chose to lose them (their segments are
// kept under DataDir/damaged/wal/), and the next start must not stop at them again.
func (b *Broker) recordOrphansDeleted() error {
	var recs [][]byte
	seen := map[[16]byte]bool{}
	for _, id := range b.orphanIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		recs = append(recs, encodeMeta(metaRecord{Type: "delete_topic", ID: hex.EncodeToString(id[:])}))
		b.log.Error("RECOVERY: batches of an unknown topic ID are dropped from service; recorded as a deleted topic", "topic_id", hex.EncodeToString(id[:]))
	}
	b.orphanIDs = nil
	if len(recs) == 0 {
		return nil
	}
	return b.meta.AppendBatch(recs)
}

// replayCorruption reports a cross-check failure at loc: a *storage.CorruptError naming the
// segment and byte, or, when recovering damaged data, an ERROR log line (once per segment,
// with the segment linked into DataDir/damaged/wal/) and nil.
func (b *Broker) replayCorruption(loc storage.Location, why string) error {
	path, off := storage.WALEntryPos(b.dataDir, loc)
	cerr := &storage.CorruptError{Path: path, Offset: off, Size: -1, Reason: why}
	if !b.cfg.RecoverDamaged {
		return cerr
	}
	if b.recoveredSegs == nil {
		b.recoveredSegs = map[uint64]bool{}
	}
	if !b.recoveredSegs[loc.Segment] {
		b.recoveredSegs[loc.Segment] = true
		dst, err := storage.LinkAside(b.dataDir, loc)
		if err != nil {
			return fmt.Errorf("%w; keeping the segment aside failed: %v", cerr, err)
		}
		b.log.Error("RECOVERY: WAL data recovery could not place; the segment is kept aside", "file", path, "byte", off, "kept_at", dst, "reason", why)
	}
	return nil
}
