package logstore

// Single-copy partitions: a hot partition's batches are written once, into its active
// segment, instead of into the WAL and then the segment.
//
// The broker stages each produced batch (Stage, under the partition's lock, as it assigns
// offsets) before it appends the batch to the WAL. A staged batch sits past the builder's
// size (not readable, not counted) until the WAL acknowledges it and the drain appends it
// (Append finds it staged and commits it without a copy). For a batch Stage took into a
// single-copy builder the WAL writes only a header naming it: as it writes that header its
// writer calls WriteExternal (the Log is a storage.ExternalWriter), which writes the
// builder's new bytes to the segment's durable object (DurableWriter.WriteDurable: one
// vectored direct write from the aligned chunks, the last partial block written again each
// time), and its group commit calls SyncExternal beside its own fsync (fdatasync).
//
//	data position 0          memStart    synced       size            end
//	|---- in the object ----|-------- data (memory) ------------------------|
//	                         (aligned)   durable up    committed: read  staged: in
//	                                     to here       by fetches       flight
//
// A builder takes staged batches only in offset order and only from its start or after
// batches it holds: a batch staged while an earlier one travels the WAL's ordinary path
// (its data in the WAL, appended at its acknowledgement) starts a new builder, staging,
// that becomes active when its first batch commits (the active one sealed first). So does
// a batch past the roll size. A failed WAL append unstages its batch and every later one
// (Unstage). A builder with staged batches is not sealed.
//
// Recovery: the durable objects in the making survive restarts (DurableCreator.Leftovers);
// the broker's replay reads a header-only WAL entry's batch from them (ReplayData) and
// appends it as any replayed batch, into an ordinary builder; FinishRecovery then seals
// what the replay rebuilt and drops the leftovers. A batch whose bytes are missing or wrong
// was never acknowledged (its acknowledgement waited for the sync), nor was anything after
// it in the WAL.

import (
	"errors"
	"fmt"
	"slices"
)

// DefaultSingleCopyBytesPerSec is the default Options.SingleCopyBytesPerSec: below it the
// second write costs the disk little and the ordinary path answers sooner (one fsync per
// commit instead of two in parallel: at 20 MB/s in one partition, e2e p99 1.6-2.1 ms
// against 2.5-2.6 ms single-copy).
const DefaultSingleCopyBytesPerSec = 32 << 20

// createRetryMs: after a durable object could not be created, the Log stages nothing for
// this long (its batches take the WAL's ordinary path).
const createRetryMs = 1000

// A single-copy builder keeps its data in pooled, block-aligned chunks of chunkBytes: the
// full ones in pend, the one filling in data (at memStart); written is where the memory
// starts (data below it was synced and let go: readers read it from the object).

// end is one past the data the builder holds, staged batches included. ext builders only.
func (s *segBuilder) end() int64 { return s.memStart + int64(len(s.data)) }

// stagedNext is the offset after the last batch staged (or committed).
func (s *segBuilder) stagedNext() int64 {
	if n := len(s.staged); n > 0 {
		return s.staged[n-1].Last + 1
	}
	return s.next
}

// appendExt appends p to an ext builder's chunks.
func (s *segBuilder) appendExt(p []byte) {
	for len(p) > 0 {
		if s.data == nil || len(s.data) == cap(s.data) {
			if s.data != nil {
				s.pend = append(s.pend, chunk{pos: s.memStart, b: s.data, first: -1})
				s.memStart += int64(len(s.data))
			}
			if s.data = newChunkBuf(); !dioAligned(s.data[:1]) {
				s.data = alignedBytes(chunkBytes)
			}
		}
		n := copy(s.data[len(s.data):cap(s.data)], p)
		s.data = s.data[:len(s.data)+n]
		p = p[n:]
	}
}

// extChunks returns an ext builder's chunks, the one filling last.
func (s *segBuilder) extChunks() []chunk {
	out := slices.Clip(s.pend)
	if s.data != nil {
		out = append(out, chunk{pos: s.memStart, b: s.data, first: -1})
	}
	return out
}

// extPieces returns the data positions [from, to) (from >= written) as slices of the
// chunks.
func (s *segBuilder) extPieces(from, to int64) [][]byte {
	var out [][]byte
	for _, c := range s.extChunks() {
		if lo, hi := max(from, c.pos), min(to, c.pos+int64(len(c.b))); lo < hi {
			out = append(out, c.b[lo-c.pos:hi-c.pos])
		}
	}
	return out
}

// extBytes returns the n bytes at pos: a slice of a chunk, or a copy where they straddle
// two.
func (s *segBuilder) extBytes(pos, n int64) []byte {
	if ps := s.extPieces(pos, pos+n); len(ps) == 1 {
		return ps[0]
	} else {
		return slices.Concat(ps...)
	}
}

// extView is view for an ext builder: its committed data (not the staged batches).
func (s *segBuilder) extView(v *tailView) {
	for _, c := range s.extChunks() {
		if c.pos >= s.size {
			break
		}
		n := min(int64(len(c.b)), s.size-c.pos)
		part := chunk{pos: c.pos, b: c.b[:n:n], first: -1}
		if s.memFirst >= c.pos && s.memFirst < c.pos+n {
			part.first = s.memFirst
		}
		v.parts = append(v.parts, part)
	}
}

// newExtLocked returns an empty single-copy builder starting at base. l.mu held.
func (l *Log) newExtLocked(base, now int64) *segBuilder {
	s := newSegBuilder(base, l.cfg.IndexIntervalBytes, l.cfg.Compact, now)
	s.ext = true
	s.cr, _ = l.st.(Creator)
	return s
}

// Stage takes a batch (offsets assigned) before the broker appends it to the WAL, and
// reports whether it is single-copy: the WAL then keeps only its header and calls
// SyncExternal before acknowledging it. Otherwise nothing changed and the batch takes the
// ordinary path. Batches must be staged (or not) in offset order.
func (l *Log) Stage(b []byte) (bool, error) {
	if _, ok := l.st.(DurableCreator); !ok || !l.opts.SingleCopy {
		return false, nil
	}
	h, err := parseBatch(b)
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opts.Now()
	l.rate.hot(now, int64(h.Size))
	l.ratedTo = h.Last + 1
	if !l.rate.atLeast(l.opts.SingleCopyBytesPerSec) || l.crowded() || l.noStageUntil != 0 && now < l.noStageUntil {
		return false, nil
	}
	tgt, next := l.active, l.next
	switch {
	case l.staging != nil:
		tgt, next = l.staging, l.staging.stagedNext()
	case tgt != nil && tgt.ext:
		next = tgt.stagedNext()
	default:
		tgt = nil
	}
	if h.Base < next {
		return false, fmt.Errorf("logstore: staging batch %d..%d behind %d", h.Base, h.Last, next)
	}
	limit := min(l.cfg.SegmentBytes, l.opts.MaxActiveBytes)
	if tgt != nil && tgt == l.staging {
		// It waits for its first commit: past the internal roll size it takes batches
		// on, as an active segment does while the previous seal runs (rollSlack), up to
		// segment.bytes.
		limit = min(l.cfg.SegmentBytes, rollSlack*l.opts.MaxActiveBytes)
	}
	fits := tgt != nil && h.Base == next && tgt.end()+int64(h.Size) <= limit &&
		(tgt.batches == 0 || tgt.waited(now, h.MaxTimestamp) <= l.cfg.SegmentMs)
	switch {
	case fits:
	case l.staging != nil:
		return false, nil // the next builder waits for its first commit already
	default:
		tgt = l.newExtLocked(h.Base, now)
		l.staging = tgt
	}
	tgt.appendExt(b[:h.Size])
	tgt.staged = append(tgt.staged, h)
	l.heldLocked()
	return true, nil
}

// extBuilders returns the single-copy builders holding data not yet durable.
func (l *Log) extBuilders() []*segBuilder {
	l.mu.Lock()
	defer l.mu.Unlock()
	var bs []*segBuilder
	for _, s := range []*segBuilder{l.active, l.staging} {
		if s != nil && s.ext && s.end() > s.synced {
			bs = append(bs, s)
		}
	}
	return bs
}

// WriteExternal implements storage.ExternalWriter: it writes the staged batches (the
// WAL's writer calls it as it writes their headers).
func (l *Log) WriteExternal() error {
	for _, s := range l.extBuilders() {
		if err := l.writeBuilder(s); err != nil {
			return err
		}
	}
	return nil
}

// SyncExternal implements storage.Syncer: it makes durable what WriteExternal wrote. The
// WAL calls WriteExternal after the entries a SyncExternal covers were appended, before it
// (storage.ExternalWriter), so the sync of one commit only syncs while the WAL's writer
// writes the next one (writing here too doubled the syscalls, each costly on a virtual
// disk, and kept the writer and the syncer from overlapping).
func (l *Log) SyncExternal() error {
	for _, s := range l.extBuilders() {
		if err := l.syncBuilder(s); err != nil {
			return err
		}
	}
	return nil
}

// writeBuilder writes s's data past what was written (from the block it starts in).
func (l *Log) writeBuilder(s *segBuilder) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.dw == nil {
		dw, err := l.st.(DurableCreator).CreateDurable(segName(l.prefix, s.base, 0))
		if err != nil {
			l.mu.Lock()
			l.noStageUntil = l.opts.Now() + createRetryMs
			l.mu.Unlock()
			return fmt.Errorf("logstore: creating the segment of %s at %d: %w", l.prefix, s.base, err)
		}
		l.mu.Lock()
		s.dw, s.w = dw, dw
		l.mu.Unlock()
	}
	l.mu.Lock()
	from, to := s.flushed&^(dioAlign-1), s.end()
	if to <= s.flushed || s != l.active && s != l.staging && s != l.sealing {
		l.mu.Unlock()
		return nil // nothing new, or sealed meanwhile
	}
	pieces := s.extPieces(from, to)
	l.mu.Unlock()
	if err := s.dw.WriteDurable(from, pieces...); err != nil {
		return err
	}
	l.mu.Lock()
	s.flushed = max(s.flushed, to)
	l.mu.Unlock()
	return nil
}

// syncBuilder makes what writeBuilder wrote durable.
func (l *Log) syncBuilder(s *segBuilder) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	l.mu.Lock()
	target := s.flushed
	if target <= s.synced || s != l.active && s != l.staging && s != l.sealing {
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	if err := s.dw.SyncDurable(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s.synced = max(s.synced, target)
	l.trimExtLocked(s)
	return nil
}

// recentKeep: a single-copy builder keeps this much of its durable, committed data in
// memory for the consumers tailing the partition (direct writes leave none in the page
// cache).
const recentKeep = 256 << 10

// trimExtLocked lets the chunks go whose data is durable, committed and more than
// recentKeep behind: readers read it from the object. l.mu held.
func (l *Log) trimExtLocked(s *segBuilder) {
	keep := max(min(s.synced, s.size)-recentKeep, 0)
	drop := 0
	for drop < len(s.pend) && s.pend[drop].pos+int64(len(s.pend[drop].b)) <= keep {
		drop++
	}
	if drop == 0 {
		return
	}
	start := s.pend[drop-1].pos + int64(len(s.pend[drop-1].b))
	if s.memFirst >= 0 && s.memFirst < start {
		// The first batch starting in memory from now on.
		v := s.view()
		p := s.memFirst
		var hdr [12]byte
		for p < start && p < s.size {
			if v.readAt(hdr[:], p) != nil {
				p = s.size
				break
			}
			p += batchSize(hdr[:])
		}
		s.memFirst = -1
		if p < s.size {
			s.memFirst = p
		}
	}
	for _, c := range s.pend[:drop] {
		l.recycleLocked(c.b)
	}
	s.pend = slices.Delete(s.pend, 0, drop)
	s.written = start
	l.heldLocked()
}

// commitStagedLocked commits h if it is the next staged batch: a staging builder whose
// first batch it is becomes active (the active one sealed first). It reports whether h
// was staged. l.mu held; released while sealing.
func (l *Log) commitStagedLocked(h *batchInfo, now int64) (bool, error) {
	if st := l.staging; st != nil && len(st.staged) > 0 && st.staged[0].Base == h.Base {
		if l.active != nil || l.sealing != nil {
			// Seal waits for a background seal (which, failing, would merge what is
			// active into its builder) and seals what is active.
			l.mu.Unlock()
			err := l.Seal()
			l.mu.Lock()
			if err == nil && (l.active != nil || l.sealing != nil) {
				err = errors.New("logstore: the active segment is still open")
			}
			if err != nil {
				return true, fmt.Errorf("logstore: rolling to the staged segment at %d: %w", st.base, err)
			}
		}
		l.active, l.staging = st, nil
	}
	a := l.active
	if a == nil || !a.ext || len(a.staged) == 0 {
		return false, nil
	}
	sh := a.staged[0]
	if sh.Base != h.Base || sh.Last != h.Last || sh.Size != h.Size {
		return true, fmt.Errorf("logstore: batch %d..%d is not the staged %d..%d", h.Base, h.Last, sh.Base, sh.Last)
	}
	var b []byte // only what reads the records needs them (a copy where chunks split them)
	if sh.control() || a.countDeletes {
		b = a.extBytes(a.size, int64(sh.Size))
	}
	l.trackTxn(b, &sh, a)
	a.begin(&sh)
	a.account(b, &sh)
	a.staged = slices.Delete(a.staged, 0, 1)
	l.next = sh.Last + 1
	l.lastAppend = now
	l.trimExtLocked(a)
	l.heldLocked()
	return true, nil
}

// Unstage drops the staged batches from base on (their WAL append failed): the offsets
// go back to the broker, and the bytes a sync may have written past the builder's end are
// written over.
func (l *Log) Unstage(base int64) {
	l.mu.Lock()
	bs := []*segBuilder{l.staging, l.active}
	l.mu.Unlock()
	for _, s := range bs {
		if s == nil || !s.ext {
			continue
		}
		s.writeMu.Lock()
		s.syncMu.Lock()
		l.mu.Lock()
		i := 0
		end := s.size
		for i < len(s.staged) && s.staged[i].Base < base {
			end += int64(s.staged[i].Size)
			i++
		}
		if i < len(s.staged) {
			for s.memStart > end && len(s.pend) > 0 {
				// The chunk filling lies wholly past end: the previous one fills again
				// (its bytes past end were never read: they were staged).
				last := s.pend[len(s.pend)-1]
				s.pend = s.pend[:len(s.pend)-1]
				s.data, s.memStart = last.b, last.pos
			}
			s.data = s.data[:end-s.memStart]
			s.staged = s.staged[:i]
			s.synced = min(s.synced, end)
			s.flushed = min(s.flushed, end)
			if s.dw != nil {
				s.dw.SetSize(s.flushed)
			}
		}
		var drop DurableWriter
		if s == l.staging && len(s.staged) == 0 {
			l.staging, drop = nil, s.dw
		}
		l.heldLocked()
		l.mu.Unlock()
		s.syncMu.Unlock()
		s.writeMu.Unlock()
		if drop != nil {
			if err := drop.Abort(); err != nil {
				l.opts.Logger.Warn("logstore: dropping an unused staged segment failed", "log", l.prefix, "err", err)
			}
		}
	}
}

// leftover is a durable object in the making a restart found (a single-copy segment).
type leftover struct {
	name string
	base int64
	size int64
	// The replay reads forward: pos is the next batch's position, at offset next; win
	// holds the bytes at winAt.
	pos, next int64
	win       []byte
	winAt     int64
}

// replayWindow is how much of a leftover ReplayData reads at a time.
const replayWindow = 1 << 20

// openLeftovers lists the log's leftovers (Open). l.mu not needed (not shared yet).
func (l *Log) openLeftovers() error {
	dc, ok := l.st.(DurableCreator)
	if !ok {
		return nil
	}
	objs, err := dc.Leftovers(l.prefix)
	if err != nil {
		return err
	}
	for _, o := range objs {
		base, gen, ok := parseSegName(l.prefix, o.Name)
		if !ok || gen != 0 {
			continue
		}
		l.left = append(l.left, &leftover{name: o.Name, base: base, size: o.Size, next: base})
	}
	return nil
}

// ReplayData returns the batch at base of n bytes for the replay of a header-only WAL
// entry: from the log if it holds base (sealed after the crash), else from the leftover
// segment that holds it. It fails when neither does (the caller then knows the batch was
// never acknowledged).
func (l *Log) ReplayData(base int64, n int) ([]byte, error) {
	l.mu.Lock()
	held := base < l.next
	var lo *leftover
	for _, c := range l.left {
		if c.base <= base {
			lo = c
		}
	}
	l.mu.Unlock()
	if held {
		b, err := l.ReadAppend(nil, base, n)
		if err != nil {
			return nil, err
		}
		if h, err := parseBatch(b); err != nil || h.Base != base || h.Size != n {
			return nil, fmt.Errorf("logstore: %s holds no batch of %d bytes at %d", l.prefix, n, base)
		}
		return b[:n], nil
	}
	if lo == nil {
		return nil, fmt.Errorf("logstore: %s: no segment holds offset %d", l.prefix, base)
	}
	return l.readLeftover(lo, base, n)
}

// readLeftover finds the batch at base in lo, reading forward from where the last one
// ended.
func (l *Log) readLeftover(lo *leftover, base int64, n int) ([]byte, error) {
	dc := l.st.(DurableCreator)
	if base < lo.next {
		lo.pos, lo.next = 0, lo.base // not in order: from the start
	}
	at := func(pos, k int64) ([]byte, error) {
		if pos < lo.winAt || pos+k > lo.winAt+int64(len(lo.win)) {
			b, err := dc.ReadLeftover(lo.name, pos, max(k, replayWindow))
			if err != nil {
				return nil, err
			}
			lo.win, lo.winAt = b, pos
		}
		if pos+k > lo.winAt+int64(len(lo.win)) {
			return nil, fmt.Errorf("logstore: %s ends at %d", lo.name, lo.winAt+int64(len(lo.win)))
		}
		return lo.win[pos-lo.winAt : pos-lo.winAt+k], nil
	}
	for lo.pos < lo.size {
		hdr, err := at(lo.pos, batchHeaderLen)
		if err != nil {
			return nil, err
		}
		size := batchSize(hdr)
		if size < batchHeaderLen {
			break
		}
		b, err := at(lo.pos, size)
		if err != nil {
			return nil, err
		}
		h, err := parseBatch(b)
		if err != nil || h.Base > base {
			break
		}
		if h.Base == base {
			if h.Size != n {
				break
			}
			return slices.Clone(b), nil
		}
		lo.pos += size
		lo.next = h.Last + 1
	}
	return nil, fmt.Errorf("logstore: %s holds no batch of %d bytes at %d", lo.name, n, base)
}

// FinishRecovery seals what the replay appended after reading leftovers and then drops
// them: their batches are in sealed segments now (or were never acknowledged).
func (l *Log) FinishRecovery() error {
	l.mu.Lock()
	left := l.left
	l.mu.Unlock()
	if len(left) == 0 {
		return nil
	}
	if err := l.Seal(); err != nil {
		return err
	}
	dc := l.st.(DurableCreator)
	for _, lo := range left {
		if err := dc.DropLeftover(lo.name); err != nil {
			return err
		}
	}
	l.mu.Lock()
	l.left = nil
	l.mu.Unlock()
	return nil
}
