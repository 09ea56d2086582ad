package logstore

// Compaction (cleanup.policy=compact), as Kafka's LogCleaner:
//
//   - Cleanable range: sealed segments from the log start up to the first uncleanable
//     offset, the smallest of the active segment's base, the first offset of any open
//     transaction, and the base of the first segment with a record newer than
//     min.compaction.lag.ms. The active segment is never touched.
//   - It runs when the dirty part (segments at or after the cleaner checkpoint) is at least
//     min.cleanable.dirty.ratio of the cleanable range, or the oldest dirty segment is more
//     than max.compaction.lag.ms old, or a cleaned segment has tombstones whose
//     delete.retention.ms has run out.
//   - An offset map (MD5 of key -> last offset) is built over the dirty part, as many
//     whole segments as DedupeEntries allows. Then every cleanable segment up to the map's
//     end is rewritten, in groups whose total size stays within the segment size: a record
//     is kept when it is the latest for its key; records without a key are dropped (Kafka
//     drops them too); tombstones are kept until delete.retention.ms after the segment
//     holding them was first cleaned (Kafka 4.0 sets a delete horizon in the batch; here the
//     segment trailer's clean time serves); batches of aborted transactions are dropped;
//     a COMMIT/ABORT marker is kept while its transaction still has records in the log, or
//     until the delete horizon. Retained batches keep their base offset, last offset delta,
//     timestamps and producer fields (offsets keep their gaps); a batch that lost records is
//     rebuilt from the retained records' original bytes and recompressed with its codec; a
//     batch that lost them all is dropped.
//   - Swap: the group's output is written as a new generation of the group's first segment
//     (Put is write, fsync, rename, fsync dir), then the group's old objects are deleted,
//     then the cleaner checkpoint advances. Open resolves a crash between any two steps
//     (see Open): the newer generation wins and what it covers is deleted, so nothing is
//     lost or duplicated.
//   - Reads and writes are rate-limited by Options.CleanerLimit.

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// CleanStats reports one cleaning.
type CleanStats struct {
	Segments       int   // segments read
	BytesRead      int64 // segment bytes read
	BytesWritten   int64
	RecordsRemoved int
	BatchesRemoved int
	DirtyRatio     float64
	CleanedUpTo    int64 // the new cleaner checkpoint
	NothingToDo    bool
}

var errCleanAborted = errors.New("logstore: segments changed during cleaning")

type cleanPlan struct {
	cfg        Config
	now        int64
	segs       []*segment // the cleanable range
	firstDirty int        // index into segs
	ratio      float64
	tail       []*segBuilder
	laterSegs  []*segment // segments after the cleanable range (their aborted txns matter)
}

// plan decides whether to clean and what; nil means nothing to do.
func (l *Log) plan() *cleanPlan {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, mustClean := l.planLocked()
	if p == nil || (!mustClean && (p.firstDirty == len(p.segs) || p.ratio < p.cfg.MinCleanableDirtyRatio)) {
		return nil
	}
	return p
}

// DirtyRatio is the dirty share of the cleanable range now (bytes of segments not yet
// cleaned over all cleanable bytes, what min.cleanable.dirty.ratio is compared with; Kafka's
// max-dirty-percent metric), and ok false when the log is not compacted or has nothing
// cleanable. Cheap: no I/O, a pass over the segment list.
func (l *Log) DirtyRatio() (ratio float64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, _ := l.planLocked()
	if p == nil {
		return 0, false
	}
	return p.ratio, true
}

// planLocked computes the cleanable range and its dirty ratio, and whether a cleaning is
// due whatever the ratio (a lag or a tombstone's delete.retention.ms passed); nil when
// nothing is cleanable. l.mu held.
func (l *Log) planLocked() (*cleanPlan, bool) {
	p := &cleanPlan{cfg: l.cfg, now: l.opts.Now(), tail: []*segBuilder{l.sealing, l.active}}
	if !p.cfg.Compact || len(l.segs) == 0 {
		return nil, false
	}
	end := l.segs[len(l.segs)-1].next
	for _, first := range l.open {
		end = min(end, first)
	}
	for _, s := range l.segs {
		if p.cfg.MinCompactionLagMs > 0 && p.now-s.maxTS < p.cfg.MinCompactionLagMs {
			end = min(end, s.base)
			break
		}
	}
	var clean, dirty int64
	mustClean := false
	p.firstDirty = -1
	for i, s := range l.segs {
		if s.next > end {
			p.laterSegs = l.segs[i:len(l.segs):len(l.segs)]
			break
		}
		if s.next <= l.ckpt.logStart {
			continue
		}
		p.segs = append(p.segs, s)
		if s.base >= l.ckpt.cleanerOff || s.cleaned == 0 {
			if p.firstDirty < 0 {
				p.firstDirty = len(p.segs) - 1
			}
			dirty += s.size
			ts := s.firstTS
			if ts < 0 {
				ts = s.created
			}
			if p.cfg.MaxCompactionLagMs >= 0 && p.now-ts > p.cfg.MaxCompactionLagMs {
				mustClean = true
			}
		} else {
			clean += s.size
			if s.deletable > 0 && p.now-s.cleaned >= p.cfg.DeleteRetentionMs {
				mustClean = true
			}
		}
	}
	if len(p.segs) == 0 {
		return nil, false
	}
	if clean+dirty > 0 {
		p.ratio = float64(dirty) / float64(clean+dirty)
	}
	if p.firstDirty < 0 {
		p.firstDirty = len(p.segs)
	}
	return p, mustClean
}

// Clean compacts the log once if it is due (see the top of this file).
func (l *Log) Clean() (CleanStats, error) {
	l.jobMu.Lock()
	defer l.jobMu.Unlock()
	p := l.plan()
	if p == nil {
		return CleanStats{NothingToDo: true}, nil
	}
	st := CleanStats{DirtyRatio: p.ratio}
	aborted, err := l.abortedIn(append(slices.Clone(p.segs), p.laterSegs...), p.tail)
	if err != nil {
		return st, err
	}
	isAborted := func(h *batchInfo) bool {
		for _, a := range aborted[h.ProducerID] {
			if h.Base >= a.FirstOffset && h.Base <= a.LastOffset {
				return true
			}
		}
		return false
	}

	// The offset map over the dirty segments.
	keys := map[[16]byte]int64{}
	mapEnd := p.firstDirty // segs[firstDirty:mapEnd] are in the map
	for mapEnd < len(p.segs) && (mapEnd == p.firstDirty || len(keys) < l.opts.DedupeEntries) {
		// Whole segments only, as Kafka: the map may overshoot by one segment's keys.
		s := p.segs[mapEnd]
		var rerr error
		err := l.scan(s, 0, readWindow, l.opts.CleanerLimit, func(b []byte, h *batchInfo) bool {
			if h.control() || h.transactional() && isAborted(h) {
				return true
			}
			recs, err := records(b, h)
			if err != nil {
				rerr = err
				return false
			}
			for _, r := range recs {
				if r.key != nil {
					keys[md5.Sum(r.key)] = h.Base + int64(r.offsetDelta)
				}
			}
			return true
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			return st, err
		}
		st.BytesRead += s.dataLen
		mapEnd++
	}
	cleanTo := p.segs[mapEnd-1].next

	// Rewrite the cleanable segments up to the map's end, in groups.
	limit := min(p.cfg.SegmentBytes, l.opts.MaxActiveBytes)
	txnHasData := map[int64]bool{}
	for i := 0; i < mapEnd; {
		j := i + 1
		size := p.segs[i].size
		for j < mapEnd && size+p.segs[j].size <= limit {
			size += p.segs[j].size
			j++
		}
		n, err := l.cleanGroup(p, p.segs[i:j], keys, isAborted, txnHasData, &st)
		if err != nil {
			return st, err
		}
		st.Segments += n
		i = j
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if cleanTo > l.ckpt.cleanerOff {
		c := l.ckpt
		c.cleanerOff = cleanTo
		if err := l.st.Put(l.prefix+checkpointName, c.encode()); err != nil {
			return st, err
		}
		l.ckpt = c
	}
	st.CleanedUpTo = l.ckpt.cleanerOff
	return st, nil
}

// abortedIn collects the aborted transactions of segs and the in-memory tail by producer.
func (l *Log) abortedIn(segs []*segment, tail []*segBuilder) (map[int64][]AbortedTxn, error) {
	out := map[int64][]AbortedTxn{}
	for _, s := range segs {
		ab, err := l.section(s, 2)
		if err != nil {
			return nil, err
		}
		for p := 0; p+abEntryLen <= len(ab); p += abEntryLen {
			a := AbortedTxn{int64(be64(ab[p:])), int64(be64(ab[p+8:])), int64(be64(ab[p+16:]))}
			out[a.ProducerID] = append(out[a.ProducerID], a)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range tail {
		if b != nil {
			for _, a := range b.aborted {
				out[a.ProducerID] = append(out[a.ProducerID], a)
			}
		}
	}
	return out, nil
}

// cleanGroup rewrites group as one new segment and swaps it in.
func (l *Log) cleanGroup(p *cleanPlan, group []*segment, keys map[[16]byte]int64, isAborted func(*batchInfo) bool,
	txnHasData map[int64]bool, st *CleanStats) (int, error) {
	first, last := group[0], group[len(group)-1]
	out := newSegBuilder(first.base, p.cfg.IndexIntervalBytes, true, first.created)
	var gen uint32
	for _, s := range group {
		gen = max(gen, s.gen)
		ab, err := l.section(s, 2)
		if err != nil {
			return 0, err
		}
		for q := 0; q+abEntryLen <= len(ab); q += abEntryLen {
			out.aborted = append(out.aborted, AbortedTxn{int64(be64(ab[q:])), int64(be64(ab[q+8:])), int64(be64(ab[q+16:]))})
		}
		// Tombstones and empty-transaction markers may go once the segment was cleaned
		// delete.retention.ms ago.
		pastHorizon := s.cleaned != 0 && p.now-s.cleaned >= p.cfg.DeleteRetentionMs
		var ferr error
		err = l.scan(s, 0, readWindow, l.opts.CleanerLimit, func(b []byte, h *batchInfo) bool {
			if h.control() {
				if txnHasData[h.ProducerID] || !pastHorizon {
					out.add(b, h)
				} else {
					st.BatchesRemoved++
				}
				delete(txnHasData, h.ProducerID)
				return true
			}
			if h.transactional() && isAborted(h) {
				st.BatchesRemoved++
				st.RecordsRemoved += int(h.NumRecords)
				return true
			}
			nb, removed, err := filterBatch(b, h, func(r *record, off int64) bool {
				if r.key == nil {
					return false
				}
				if latest, ok := keys[md5.Sum(r.key)]; ok && off < latest {
					return false
				}
				return !r.tombstone || !pastHorizon
			})
			if err != nil {
				ferr = err
				return false
			}
			st.RecordsRemoved += removed
			if nb == nil {
				st.BatchesRemoved++
				return true
			}
			nh, err := parseBatch(nb)
			if err != nil {
				ferr = err
				return false
			}
			if h.transactional() {
				txnHasData[h.ProducerID] = true
			}
			out.add(nb, &nh)
			return true
		})
		if err == nil {
			err = ferr
		}
		if err != nil {
			return 0, err
		}
		st.BytesRead += s.dataLen
	}
	openB, err := l.section(last, 3)
	if err != nil {
		return 0, err
	}
	var open []openTxn
	for q := 0; q+openEntryLen <= len(openB); q += openEntryLen {
		open = append(open, openTxn{int64(be64(openB[q:])), int64(be64(openB[q+8:]))})
	}
	data := out.finish(last.next, max(p.now, 1), open) // 0 means never cleaned
	if err := throttle(l.opts.CleanerLimit, int64(len(data))); err != nil {
		return 0, err
	}
	ns, err := decodeTrailer(data[len(data)-trailerLen:], int64(len(data)))
	if err != nil {
		return 0, err
	}
	ns.gen = gen + 1
	ns.name = segName(l.prefix, first.base, ns.gen)
	// The group cannot have been deleted meanwhile: deletions hold jobMu, and so do we.
	if err := l.st.Put(ns.name, data); err != nil {
		return 0, err
	}
	st.BytesWritten += int64(len(data))
	l.mu.Lock()
	i := slices.Index(l.segs, first)
	if i < 0 || i+len(group) > len(l.segs) || l.segs[i+len(group)-1] != last {
		l.mu.Unlock()
		return 0, errCleanAborted
	}
	// A new array: readers iterate the slices they took under l.mu without it.
	l.segs = slices.Concat(l.segs[:i], []*segment{&ns}, l.segs[i+len(group):])
	l.mu.Unlock()
	for _, s := range group {
		if err := l.st.Delete(s.name); err != nil {
			return 0, err
		}
	}
	return len(group), nil
}

// filterBatch returns the batch with only the records keep accepts (b itself when all
// are kept, nil when none are), and how many were removed.
func filterBatch(b []byte, h *batchInfo, keep func(r *record, off int64) bool) ([]byte, int, error) {
	recs, err := records(b, h)
	if err != nil {
		return nil, 0, err
	}
	var kept [][]byte
	for i := range recs {
		if keep(&recs[i], h.Base+int64(recs[i].offsetDelta)) {
			kept = append(kept, recs[i].raw)
		}
	}
	removed := len(recs) - len(kept)
	switch {
	case removed == 0:
		return b[:h.Size], 0, nil
	case len(kept) == 0:
		return nil, removed, nil
	}
	payload := bytes.Join(kept, nil)
	attrs := h.Attributes
	if c := h.codec(); c != 0 {
		comp, err := compressorFor(c)
		if err != nil {
			return nil, 0, err
		}
		var buf bytes.Buffer
		z, used := comp.Compress(&buf, payload)
		if used == kgo.CodecNone || z == nil {
			attrs &^= attrCodecMask // stored uncompressed if the codec declined
		} else {
			payload = append([]byte(nil), z...)
		}
	}
	nb := make([]byte, batchHeaderLen, batchHeaderLen+len(payload))
	copy(nb, b[:batchHeaderLen])
	nb = append(nb, payload...)
	binary.BigEndian.PutUint32(nb[8:], uint32(len(nb)-12))
	binary.BigEndian.PutUint16(nb[21:], uint16(attrs))
	binary.BigEndian.PutUint32(nb[57:], uint32(len(kept)))
	binary.BigEndian.PutUint32(nb[17:], crc32.Checksum(nb[21:], crc32c))
	return nb, removed, nil
}

var compressors sync.Map // codec -> kgo.Compressor (pooled encoders inside: safe to share)

// compressorFor returns a shared compressor for codec c: building one per batch would
// allocate a new encoder (megabytes for zstd) each time.
func compressorFor(c int8) (kgo.Compressor, error) {
	if v, ok := compressors.Load(c); ok {
		return v.(kgo.Compressor), nil
	}
	comp, err := kgo.DefaultCompressor(codecOf(c))
	if err != nil {
		return nil, err
	}
	v, _ := compressors.LoadOrStore(c, comp)
	return v.(kgo.Compressor), nil
}

func codecOf(c int8) kgo.CompressionCodec {
	switch c {
	case 1:
		return kgo.GzipCompression()
	case 2:
		return kgo.SnappyCompression()
	case 3:
		return kgo.Lz4Compression()
	case 4:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}
