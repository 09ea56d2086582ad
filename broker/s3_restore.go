package broker

// Disaster recovery from the S3 tier. A broker started with a bucket and an EMPTY data
// directory (a new machine, or a disk lost) takes the writer lease, reads
// s3://BUCKET/PREFIX/meta/state.snap (s3meta.go) and writes its sections as the initial
// local files: meta.log, meta/groups.log, meta/txns.log and producers.snapshot. Open then
// proceeds exactly as on a restart: the cluster ID comes back without --cluster-id, the
// partitions open from their S3 segments (the data path lists PREFIX/logs/), and the
// producer state is the snapshot's plus what the batches after it say (replayRestoredTails).
// A data directory with anything in it is never overwritten: S3 configured or not, a
// non-empty directory starts as today. No snapshot in S3: a new cluster.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/broker/storage"
)

// restoreIgnored are data directory entries that do not make it "not empty": the
// read-through cache (disposable) and a file system's lost+found.
var restoreIgnored = map[string]bool{"s3cache": true, "lost+found": true}

// dataDirEmpty reports whether dir is missing or holds nothing klite cares about.
func dataDirEmpty(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		if !restoreIgnored[e.Name()] {
			return false, nil
		}
	}
	return true, nil
}

// restoreFromS3 writes the S3 metadata snapshot into an empty data directory (before the
// local logs are opened). It does nothing without S3, with injected stores (tests), or when
// the directory is not empty.
func (b *Broker) restoreFromS3() error {
	if b.s3meta == nil || b.cfg.Meta != nil || b.cfg.WAL != nil {
		return nil
	}
	empty, err := dataDirEmpty(b.dataDir)
	if err != nil || !empty {
		return err
	}
	start := time.Now()
	raw, err := b.s3meta.store.Get(s3MetaObject, 0, -1)
	if errors.Is(err, logstore.ErrNotFound) {
		b.log.Info("S3 tier: empty data directory and no metadata snapshot in S3: starting a new cluster", "bucket", b.cfg.S3.Bucket, "prefix", b.cfg.S3.Prefix)
		return nil
	}
	if err != nil {
		return fmt.Errorf("S3 tier: reading the metadata snapshot for disaster recovery: %w", err)
	}
	snap, err := decodeS3MetaSnapshot(raw)
	if err != nil {
		// Damage in S3 is not something to start past: the operator decides (a new prefix
		// starts a new cluster; the object can be inspected or restored from versioning).
		return &storage.CorruptError{Path: "s3://" + b.cfg.S3.Bucket + "/" + b.cfg.S3.key("meta/"+s3MetaObject), Size: int64(len(raw)), Reason: err.Error()}
	}
	if snap.producers != nil {
		if _, err := decodeProducerSnapshot(snap.producers); err != nil {
			return &storage.CorruptError{Path: "s3://" + b.cfg.S3.Bucket + "/" + b.cfg.S3.key("meta/"+s3MetaObject), Size: int64(len(raw)),
				Reason: "its producer-state section: " + err.Error()}
		}
	}
	if err := os.MkdirAll(filepath.Join(b.dataDir, "meta"), 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	groupsPath := b.cfg.Groups.Path
	if groupsPath == "" {
		groupsPath = filepath.Join(b.dataDir, "meta", "groups.log")
	}
	logs := []struct {
		path string
		recs [][]byte
		skip bool
	}{
		{filepath.Join(b.dataDir, "meta", "txns.log"), snap.txns, false},
		{groupsPath, snap.groups, b.cfg.Groups.Log != nil},
		// meta.log last: a crash before it leaves a directory without meta.log, which the
		// next start restores again (the coordinator logs are rewritten whole).
		{filepath.Join(b.dataDir, "meta.log"), snap.meta, false},
	}
	for _, l := range logs {
		if l.skip {
			continue
		}
		if err := writeMetaLogFile(l.path, l.recs, b.metaOptions("")); err != nil {
			return fmt.Errorf("S3 tier: restoring %s: %w", l.path, err)
		}
	}
	if snap.producers != nil {
		if err := writeFileSync(b.snapshotPath(), snap.producers); err != nil {
			return fmt.Errorf("S3 tier: restoring %s: %w", b.snapshotPath(), err)
		}
	}
	b.restoredFromS3 = true
	b.log.Info("S3 tier: DISASTER RECOVERY: empty data directory; metadata restored from S3",
		"bucket", b.cfg.S3.Bucket, "prefix", b.cfg.S3.Prefix, "snapshot_age", time.Since(time.UnixMilli(snap.capturedMs)).Round(time.Millisecond),
		"meta_records", len(snap.meta), "group_records", len(snap.groups), "txn_records", len(snap.txns), "took", time.Since(start))
	return nil
}

// writeMetaLogFile creates path (replacing a partial one from a crashed restore) holding recs.
func writeMetaLogFile(path string, recs [][]byte, opts storage.MetaOptions) error {
	for _, p := range []string{path, path + ".clean"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	l, err := storage.OpenMetaLogWith(path, opts)
	if err != nil {
		return err
	}
	err = l.AppendBatch(recs)
	return errors.Join(err, l.Close())
}

// writeFileSync writes data to path durably: temporary file, fsync, rename, directory fsync.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
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
		err = syncDirPath(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// replayRestoredTails rebuilds, after a restore, the producer state the snapshot does not
// cover: the batches each partition's log holds from the snapshot's end on (on a restart
// the WAL replays them; a restored broker has no WAL). A partition whose data in S3 ends
// before the snapshot's end (the data path was not there to confirm it) loses its producer
// state, loudly: a window pointing past the log's end would acknowledge retries of records
// that are not there.
func (b *Broker) replayRestoredTails() error {
	if !b.restoredFromS3 {
		return nil
	}
	loadMs := b.now().UnixMilli()
	var buf []byte
	for _, t := range b.topics {
		for _, p := range t.partitions() {
			if p.lg == nil {
				continue
			}
			end := p.lg.NextOffset()
			if p.snapNext > end {
				b.log.Error("S3 tier: DISASTER RECOVERY: the partition's data in S3 ends before its restored producer state; that state is dropped",
					"topic", t.name, "partition", p.idx, "s3_end", end, "snapshot_end", p.snapNext)
				clear(p.producers)
				p.txn.open = nil
				p.snapNext = -1
				p.hwm, p.next = end, end
				continue
			}
			from := max(p.snapNext, p.lg.LogStartOffset())
			for n := 0; from < end; n++ {
				if n > 1<<24 {
					return fmt.Errorf("topic %s partition %d: replaying the restored log from %d does not end", t.name, p.idx, from)
				}
				var err error
				buf, err = p.lg.ReadAppend(buf[:0], from, 1<<20)
				if err != nil {
					return fmt.Errorf("topic %s partition %d: reading the restored log at %d: %w", t.name, p.idx, from, err)
				}
				if len(buf) == 0 {
					break
				}
				next, err := b.replayRestoredBatches(p, buf, loadMs)
				if err != nil {
					return fmt.Errorf("topic %s partition %d: %w", t.name, p.idx, err)
				}
				if next <= from {
					break
				}
				from = next
			}
		}
	}
	return nil
}

// replayRestoredBatches feeds whole batches in data to the partition's producer state and
// returns the offset after the last one.
func (b *Broker) replayRestoredBatches(p *partition, data []byte, loadMs int64) (int64, error) {
	next := int64(-1)
	for len(data) >= batchHeaderLen {
		h, ok := parseBatchHeader(data)
		if !ok {
			return next, errors.New("a restored batch's header does not parse")
		}
		size := 12 + int(h.Length)
		if size > len(data) || size < batchHeaderLen {
			break
		}
		base := int64(binary.BigEndian.Uint64(data))
		sb := &storage.Batch{BaseOffset: base, LastOffset: base + int64(h.LastOffsetDelta), MaxTimestamp: h.MaxTimestamp, Data: data[:size]}
		p.replay(sb, &h, loadMs)
		if h.hasProducerID() && h.ProducerID >= b.nextPID {
			b.nextPID = h.ProducerID + 1
		}
		next = sb.LastOffset + 1
		data = data[size:]
	}
	return next, nil
}
