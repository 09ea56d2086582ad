package logstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/klite/klite/broker/storage"
	"golang.org/x/time/rate"
)

// readWindow is how much a scan reads from the Store at a time.
const readWindow = 64 << 10

// errTailMoved: a tail builder captured by a read was sealed (and its buffer reused) before
// the read reached it; the read starts again.
var errTailMoved = errors.New("logstore: tail sealed during the read")

// current reports whether b is still one of the log's tail builders. l.mu held.
func (l *Log) current(b *segBuilder) bool { return b == l.sealing || b == l.active }

// Read returns whole batches starting with the one holding offset (or the first after it,
// compaction leaves gaps): at least one batch, then more while the total stays within
// maxBytes. Empty at or past the log end; ErrOffsetOutOfRange below the log start.
func (l *Log) Read(offset int64, maxBytes int) ([]byte, error) {
	return l.ReadAppend(nil, offset, maxBytes)
}

// ReadAppend is Read appending to dst: a fetch reads straight into its response buffer, so a
// read of the in-memory tail copies each batch once.
func (l *Log) ReadAppend(dst []byte, offset int64, maxBytes int) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		out, err := l.read(dst, offset, maxBytes)
		// A job may delete or replace a segment between the lookup and the read, or a
		// seal move the tail: look again.
		if (errors.Is(err, ErrNotFound) || err == errTailMoved) && attempt < 8 {
			continue
		}
		if err == errTailMoved {
			return dst, nil
		}
		return out, err
	}
}

func (l *Log) read(dst []byte, offset int64, maxBytes int) ([]byte, error) {
	l.mu.Lock()
	if offset < l.ckpt.logStart {
		l.mu.Unlock()
		return dst, fmt.Errorf("%w: %d is below the log start %d", ErrOffsetOutOfRange, offset, l.ckpt.logStart)
	}
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].next > offset })
	segs := l.segs[i:len(l.segs):len(l.segs)]
	tail := l.tailViews(func(b *segBuilder) int64 { return b.seekOff(offset) }) // captured with segs: nothing falls between
	l.mu.Unlock()
	defer l.releaseViews(tail)
	start := len(dst)
	for _, s := range segs {
		out, err := l.readSegment(dst, s, offset, maxBytes)
		if err != nil || len(out) > start {
			return out, err
		}
	}
	// The tail: the data not yet in the store in memory, the rest in its object.
	for _, v := range tail {
		if v.next <= offset {
			continue
		}
		out := dst
		err := v.each(v.pos, func(bt []byte, h *batchInfo) bool {
			if h.Last < offset {
				return true
			}
			if len(out) > start && len(out)-start+h.Size > maxBytes {
				return false
			}
			out = append(out, bt...)
			return true
		})
		if err != nil {
			return dst, l.tailErr(v, err)
		}
		if len(out) > start {
			return out, nil
		}
	}
	return dst, nil
}

// tailViews returns views of the sealing and active builders, each with pos set by seek,
// counted in l.viewers until releaseViews. l.mu held.
func (l *Log) tailViews(seek func(b *segBuilder) int64) []*tailView {
	var out []*tailView
	for _, b := range []*segBuilder{l.sealing, l.active} {
		if b != nil {
			v := b.view()
			v.pos = seek(b)
			out = append(out, v)
		}
	}
	if len(out) > 0 {
		l.viewers.Add(1)
	}
	return out
}

// releaseViews ends a read of views tailViews returned.
func (l *Log) releaseViews(views []*tailView) {
	if len(views) > 0 {
		l.viewers.Add(-1)
	}
}

// tailErr turns the failure of a read of a builder's object into errTailMoved when the
// builder was sealed (or dropped) meanwhile: its object was committed or aborted.
func (l *Log) tailErr(v *tailView, err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.current(v.b) {
		return errTailMoved
	}
	return err
}

// section reads one of a segment's index sections (0 offset, 1 time, 2 aborted, 3 open).
func (l *Log) section(s *segment, which int) ([]byte, error) {
	lens := [4]int64{int64(s.nOff) * offEntryLen, int64(s.nTime) * timeEntryLen, int64(s.nAb) * abEntryLen, int64(s.nOpen) * openEntryLen}
	pos := s.dataLen
	for i := 0; i < which; i++ {
		pos += lens[i]
	}
	if lens[which] == 0 {
		return nil, nil
	}
	b, err := l.st.Get(s.name, pos, lens[which])
	if err == nil && int64(len(b)) != lens[which] {
		err = fmt.Errorf("logstore: segment %s: short index read", s.name)
	}
	return b, err
}

// seek returns the data position to scan from: the last index entry with key <= target
// (offset index) or < target (time index), whose entries are 12 bytes {key, pos}.
func seek(idx []byte, target int64, strict bool) int64 {
	n := len(idx) / 12
	i := sort.Search(n, func(i int) bool {
		k := int64(binary.BigEndian.Uint64(idx[i*12:]))
		if strict {
			return k >= target
		}
		return k > target
	})
	if i == 0 {
		return 0
	}
	return int64(binary.BigEndian.Uint32(idx[(i-1)*12+8:]))
}

// scan calls fn for each whole batch of s from data position pos until fn returns false,
// reading the Store a window at a time.
func (l *Log) scan(s *segment, pos, window int64, lim *rate.Limiter, fn func(b []byte, h *batchInfo) bool) error {
	var buf []byte
	bufPos := pos
	for pos < s.dataLen {
		rel := pos - bufPos
		need := int64(batchHeaderLen)
		if int64(len(buf))-rel >= 12 {
			need = 12 + int64(int32(binary.BigEndian.Uint32(buf[rel+8:])))
		}
		// A batch said to run past the data is read as far as it goes: parseBatch
		// reports it.
		need = min(need, s.dataLen-pos)
		if int64(len(buf))-rel < need {
			n := min(max(need, window), s.dataLen-pos)
			if err := throttle(lim, n); err != nil {
				return err
			}
			b, err := l.st.Get(s.name, pos, n)
			if err != nil {
				return err
			}
			if int64(len(b)) < need {
				return fmt.Errorf("logstore: segment %s: short read at %d", s.name, pos)
			}
			// Look again: a read that began with the header only (a small window)
			// learns the batch's length now and may need more.
			buf, bufPos = b, pos
			continue
		}
		h, err := parseBatch(buf[rel:])
		if err != nil {
			return fmt.Errorf("logstore: segment %s at %d: %w", s.name, pos, err)
		}
		if !fn(buf[rel:rel+int64(h.Size)], &h) {
			return nil
		}
		pos += int64(h.Size)
	}
	return nil
}

// throttle waits for n bytes of the cleaner's rate (no limiter: no wait).
func throttle(lim *rate.Limiter, n int64) error {
	for lim != nil && lim.Burst() > 0 && n > 0 {
		step := min(n, int64(lim.Burst()))
		if err := lim.WaitN(context.Background(), int(step)); err != nil {
			return err
		}
		n -= step
	}
	return nil
}

func (l *Log) readSegment(dst []byte, s *segment, offset int64, maxBytes int) ([]byte, error) {
	idx, err := l.section(s, 0)
	if err != nil {
		return dst, err
	}
	start := len(dst)
	out := slices.Grow(dst, int(min(int64(maxBytes), s.dataLen)+batchHeaderLen))
	// One read usually covers it: the bytes before offset's batch since the index entry,
	// then maxBytes.
	l.mu.Lock() // SetConfig (AlterConfigs, the jobs loop) writes cfg
	interval := l.cfg.IndexIntervalBytes
	l.mu.Unlock()
	window := int64(maxBytes) + int64(max(interval, 0)) + batchHeaderLen
	var bad error
	err = l.scan(s, seek(idx, offset, false), min(window, 16<<20), nil, func(b []byte, h *batchInfo) bool {
		if h.Last < offset {
			return true
		}
		if len(out) > start && len(out)-start+h.Size > maxBytes {
			return false
		}
		// A batch damaged at rest is never served (a client would reject it anyway, and
		// fail the whole fetch): the batches before it are, then reads stop at it.
		if !checkBatchCRC(b, h) {
			bad = &storage.CorruptError{Path: s.name, Offset: -1, Size: s.size,
				Reason: fmt.Sprintf("record batch at offsets %d-%d: CRC mismatch; not served", h.Base, h.Last)}
			if _, logged := l.badCRC.LoadOrStore(s.name, true); !logged {
				l.opts.Logger.Error("logstore: a segment holds a damaged record batch; reads stop before it", "err", bad)
			}
			return false
		}
		out = append(out, b...)
		return len(out)-start < maxBytes
	})
	if len(out) == start {
		if err == nil {
			err = bad
		}
		return dst, err
	}
	return out, err
}

// OffsetForTimestamp returns the first offset at or after the log start whose record
// timestamp is >= ts, and that timestamp (ListOffsets by timestamp); ok is false when no
// record is that late. Control records (transaction markers) are records here, as in Kafka.
func (l *Log) OffsetForTimestamp(ts int64) (offset, recordTS int64, ok bool, err error) {
	for attempt := 0; ; attempt++ {
		offset, recordTS, ok, err = l.offsetForTimestamp(ts)
		if err != errTailMoved || attempt >= 8 {
			return offset, recordTS, ok, err
		}
	}
}

func (l *Log) offsetForTimestamp(ts int64) (offset, recordTS int64, ok bool, err error) {
	l.mu.Lock()
	start := l.ckpt.logStart
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].next > start })
	segs := l.segs[i:len(l.segs):len(l.segs)]
	tail := l.tailViews(func(b *segBuilder) int64 { return b.seekTime(ts) })
	l.mu.Unlock()
	defer l.releaseViews(tail)
	match := func(b []byte, h *batchInfo) bool {
		// Control batches count, as in Kafka's FileRecords.searchForTimestamp: a lookup
		// past the last data record lands on a later commit marker.
		if h.Last < start || h.MaxTimestamp < ts {
			return false
		}
		recs, rerr := records(b, h)
		if rerr != nil {
			err = rerr
			return true
		}
		for _, r := range recs {
			o, t := h.Base+int64(r.offsetDelta), h.FirstTimestamp+r.tsDelta
			if h.Attributes&attrLogAppendTime != 0 {
				t = h.MaxTimestamp
			}
			if o >= start && t >= ts {
				offset, recordTS, ok = o, t, true
				return true
			}
		}
		return false
	}
	for _, s := range segs {
		if s.maxTS < ts {
			continue
		}
		idx, serr := l.section(s, 1)
		if serr != nil {
			return 0, 0, false, serr
		}
		if serr := l.scan(s, seek(idx, ts, true), readWindow, nil, func(b []byte, h *batchInfo) bool { return !match(b, h) }); serr != nil {
			return 0, 0, false, serr
		}
		if ok || err != nil {
			return offset, recordTS, ok, err
		}
	}
	for _, v := range tail {
		if v.maxTS < ts {
			continue
		}
		if serr := v.each(v.pos, func(b []byte, h *batchInfo) bool { return !match(b, h) }); serr != nil {
			return 0, 0, false, l.tailErr(v, serr)
		}
		if ok || err != nil {
			return offset, recordTS, ok, err
		}
	}
	return 0, 0, false, err
}

// AbortedTxns returns the aborted transactions overlapping [from, upto) (FetchResponse's
// AbortedTransactions for read_committed). It reads the aborted and open sections of the
// segments from the one holding from, and stops after the first segment reaching upto with
// no transaction that started below upto still open at its end. A transaction that began
// below the log start may be reported from a later first offset (after a reopen the log
// knows it from its first record still held): no record before that is ever served.
func (l *Log) AbortedTxns(from, upto int64) ([]AbortedTxn, error) {
	l.mu.Lock()
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].next > from })
	segs := l.segs[i:len(l.segs):len(l.segs)]
	tail := []*segBuilder{l.sealing, l.active}
	l.mu.Unlock()
	var out []AbortedTxn
	add := func(a AbortedTxn) {
		if a.LastOffset >= from && a.FirstOffset < upto {
			out = append(out, a)
		}
	}
	for _, s := range segs {
		ab, err := l.section(s, 2)
		if err != nil {
			return nil, err
		}
		for p := 0; p+abEntryLen <= len(ab); p += abEntryLen {
			add(AbortedTxn{int64(be64(ab[p:])), int64(be64(ab[p+8:])), int64(be64(ab[p+16:]))})
		}
		op, err := l.section(s, 3)
		if err != nil {
			return nil, err
		}
		// Transactions overlapping [from, upto) start below upto: past upto, only those
		// still open can end further on.
		more := s.next < upto
		for p := 0; p+openEntryLen <= len(op); p += openEntryLen {
			more = more || int64(be64(op[p+8:])) < upto
		}
		if !more {
			return out, nil
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range tail {
		if b != nil {
			for _, a := range b.aborted {
				add(a)
			}
		}
	}
	return out, nil
}

// MaxTimestamp returns the first record holding the largest timestamp at or after the log
// start (ListOffsets MAX_TIMESTAMP): the segment summaries give the largest timestamp, the
// time index finds its batch.
func (l *Log) MaxTimestamp() (offset, ts int64, ok bool, err error) {
	l.mu.Lock()
	maxTS := int64(-1)
	for _, s := range l.segs {
		if s.next > l.ckpt.logStart {
			maxTS = max(maxTS, s.maxTS)
		}
	}
	for _, b := range []*segBuilder{l.sealing, l.active} {
		if b != nil {
			maxTS = max(maxTS, b.maxTS)
		}
	}
	l.mu.Unlock()
	if maxTS < 0 {
		return 0, 0, false, nil
	}
	return l.OffsetForTimestamp(maxTS)
}

// BytesFrom estimates the bytes a read from offset would return, up to limit, without I/O
// (a long-polling fetch checks MinBytes with it on every append): the in-memory tail is
// counted batch by batch, a sealed segment by its share of the offset range.
func (l *Log) BytesFrom(offset, limit int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].next > offset })
	for _, s := range l.segs[i:] {
		if offset <= s.base {
			n += s.dataLen
		} else if span := s.next - s.base; span > 0 {
			n += s.dataLen * (s.next - offset) / span
		}
		if n >= limit {
			return n
		}
	}
	for _, b := range []*segBuilder{l.sealing, l.active} {
		if b == nil || b.next <= offset {
			continue
		}
		v := b.view()
		pos := b.seekOff(offset)
		if pos < v.written {
			// The part already in the object is not read: counted from the index
			// entry (at most index.interval.bytes plus a batch too many).
			first := v.firstAfterWritten()
			if first < 0 {
				n += v.size - pos
				continue
			}
			n += first - pos
			pos = first
		}
		var hdr [batchHeaderLen]byte
		for pos < v.size && n < limit {
			if v.readAt(hdr[:min(batchHeaderLen, v.size-pos)], pos) != nil {
				break
			}
			h, err := parseHeader(hdr[:])
			if err != nil {
				break
			}
			if h.Last >= offset {
				n += int64(h.Size)
			}
			pos += int64(h.Size)
		}
	}
	return n
}
