package logstore

// A segment object holds a contiguous offset range of one partition. Its name is the
// partition prefix, the 20-digit base offset and ".seg" (e.g. "t/00000000000000001000.seg").
// It becomes visible once, whole (sealing the active segment, or the cleaner replacing a
// group of segments), and never changes after, so the local directory and S3 store the same
// bytes. The active segment's data is written to a temporary object as it fills (a Store
// with Creator, see tail.go and objwriter.go: chunks of the record batches, in order) and
// the seal appends the rest of the data and the index sections and trailer and renames
// it; without a Creator the seal writes it in one Put. The bytes are the same either way.
// All integers big-endian.
//
//	+---------------------------------------------+ 0
//	| record batches, exactly as produced and     |   Kafka v2 RecordBatches with their
//	| stored (base offsets assigned), in offset   |   base offsets; offsets strictly
//	| order                                       |   increasing, gaps allowed (compaction)
//	+---------------------------------------------+ dataLen
//	| offset index: nOff x {offset i64, pos u32}  |   sparse: the first batch, then the
//	|                                             |   first batch after each
//	|                                             |   index.interval.bytes of data
//	| time index: nTime x {ts i64, pos u32}       |   ts = largest max timestamp of all
//	|                                             |   batches before pos (nondecreasing)
//	| aborted txns: nAb x {pid i64, first i64,    |   transactions whose ABORT marker is
//	|                      last i64}              |   in this segment (last = marker)
//	| open txns: nOpen x {pid i64, first i64}     |   transactions still open after the
//	|                                             |   segment's last batch
//	+---------------------------------------------+ size - 92
//	| trailer (92 bytes):                         |
//	|   0  4  magic "KLSG"                        |
//	|   4  1  version (1)     5 3 reserved (0)    |
//	|   8  8  base offset (first offset covered)  |
//	|  16  8  next offset (one past last covered) |
//	|  24  8  dataLen                             |
//	|  32  8  max timestamp (-1: none)            |
//	|  40  8  first batch's first timestamp       |
//	|  48  8  created (ms; segment.ms, retention) |
//	|  56  8  cleaned (ms; 0: never compacted)    |
//	|  64  4  nOff   68 4 nTime   72 4 nAb        |
//	|  76  4  nOpen                               |
//	|  80  4  tombstones and control batches      |
//	|  84  4  batch count                         |
//	|  88  4  CRC-32C of the index sections and   |
//	|         trailer bytes 0..87                 |
//	+---------------------------------------------+ size
//
// Each batch carries its own CRC; the trailer CRC covers everything after the data, so
// opening a log reads only each segment's last 92 bytes, and a lookup reads the footer
// (the index sections) and then only the bytes it serves.

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
	"strconv"
	"strings"
	"sync"
)

const (
	trailerLen   = 92
	segMagic     = "KLSG"
	segVersion   = 1
	segSuffix    = ".seg"
	offEntryLen  = 12
	timeEntryLen = 12
	abEntryLen   = 24
	openEntryLen = 16
)

// AbortedTxn is one aborted transaction: producer ID and its offset range (the last
// offset is the ABORT marker's), as Kafka's .txnindex and FetchResponse report it.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

type openTxn struct {
	pid, first int64
}

type idxEntry struct {
	key int64 // offset or timestamp
	pos uint32
}

// segment is the fixed in-memory summary of one segment object.
type segment struct {
	name       string
	gen        uint32
	size       int64
	base, next int64
	dataLen    int64
	maxTS      int64
	firstTS    int64
	created    int64
	cleaned    int64
	nOff       uint32
	nTime      uint32
	nAb        uint32
	nOpen      uint32
	deletable  uint32
	batches    uint32
}

// segName names generation gen of the segment starting at base: "<base>.seg" when sealed,
// "<base>.c<gen>.seg" once the cleaner has rewritten it gen times. A new generation is a
// new object, so a reader holding the old summary never reads a replaced object's bytes.
func segName(prefix string, base int64, gen uint32) string {
	if gen == 0 {
		return fmt.Sprintf("%s%020d%s", prefix, base, segSuffix)
	}
	return fmt.Sprintf("%s%020d.c%d%s", prefix, base, gen, segSuffix)
}

func parseSegName(prefix, name string) (base int64, gen uint32, ok bool) {
	s, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, 0, false
	}
	if s, ok = strings.CutSuffix(s, segSuffix); !ok || len(s) < 20 {
		return 0, 0, false
	}
	base, err := strconv.ParseInt(s[:20], 10, 64)
	if err != nil || base < 0 || s[0] == '-' || s[0] == '+' {
		return 0, 0, false
	}
	if rest := s[20:]; rest != "" {
		g, ok := strings.CutPrefix(rest, ".c")
		if !ok || g == "" || g[0] == '0' || g[0] == '+' {
			return 0, 0, false
		}
		v, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return 0, 0, false
		}
		gen = uint32(v)
	}
	return base, gen, segName(prefix, base, gen) == name
}

// decodeTrailer checks and decodes the last trailerLen bytes of a segment of size size.
func decodeTrailer(t []byte, size int64) (segment, error) {
	var s segment
	if len(t) != trailerLen || string(t[:4]) != segMagic {
		return s, fmt.Errorf("logstore: segment trailer: bad magic")
	}
	if t[4] != segVersion {
		return s, fmt.Errorf("logstore: segment trailer: version %d", t[4])
	}
	be := binary.BigEndian
	s.size = size
	s.base = int64(be.Uint64(t[8:]))
	s.next = int64(be.Uint64(t[16:]))
	s.dataLen = int64(be.Uint64(t[24:]))
	s.maxTS = int64(be.Uint64(t[32:]))
	s.firstTS = int64(be.Uint64(t[40:]))
	s.created = int64(be.Uint64(t[48:]))
	s.cleaned = int64(be.Uint64(t[56:]))
	s.nOff, s.nTime, s.nAb, s.nOpen = be.Uint32(t[64:]), be.Uint32(t[68:]), be.Uint32(t[72:]), be.Uint32(t[76:])
	s.deletable, s.batches = be.Uint32(t[80:]), be.Uint32(t[84:])
	if s.base < 0 || s.next < s.base || s.next > maxOffset+1 || s.dataLen < 0 {
		return s, fmt.Errorf("logstore: segment trailer: offsets %d..%d, data %d", s.base, s.next, s.dataLen)
	}
	footer := int64(s.nOff)*offEntryLen + int64(s.nTime)*timeEntryLen + int64(s.nAb)*abEntryLen +
		int64(s.nOpen)*openEntryLen + trailerLen
	if s.dataLen+footer != size {
		return s, fmt.Errorf("logstore: segment trailer: sections (%d + %d) do not add up to %d bytes", s.dataLen, footer, size)
	}
	if s.dataLen > 1<<32-1 || (s.dataLen == 0) != (s.batches == 0) || (s.nOff == 0) != (s.batches == 0) {
		return s, fmt.Errorf("logstore: segment trailer: %d data bytes, %d batches, %d index entries", s.dataLen, s.batches, s.nOff)
	}
	return s, nil
}

// footer is a segment's decoded index sections.
type footer struct {
	off, time []idxEntry
	aborted   []AbortedTxn
	open      []openTxn
}

// decodeFooter checks the CRC and decodes the bytes from dataLen to the end.
func decodeFooter(s *segment, f []byte) (*footer, error) {
	if int64(len(f)) != s.size-s.dataLen || len(f) < trailerLen {
		return nil, fmt.Errorf("logstore: segment %s: footer is %d bytes", s.name, len(f))
	}
	be := binary.BigEndian
	if crc32.Checksum(f[:len(f)-4], crc32c) != be.Uint32(f[len(f)-4:]) {
		return nil, fmt.Errorf("logstore: segment %s: footer CRC mismatch", s.name)
	}
	ft := &footer{
		off:     make([]idxEntry, s.nOff),
		time:    make([]idxEntry, s.nTime),
		aborted: make([]AbortedTxn, s.nAb),
		open:    make([]openTxn, s.nOpen),
	}
	p := f
	for i := range ft.off {
		ft.off[i] = idxEntry{int64(be.Uint64(p)), be.Uint32(p[8:])}
		p = p[offEntryLen:]
		if e := ft.off[i]; e.key < s.base || e.key >= s.next || int64(e.pos) >= s.dataLen ||
			i > 0 && (e.key <= ft.off[i-1].key || e.pos <= ft.off[i-1].pos) || i == 0 && e.pos != 0 {
			return nil, fmt.Errorf("logstore: segment %s: offset index entry %d out of order", s.name, i)
		}
	}
	for i := range ft.time {
		ft.time[i] = idxEntry{int64(be.Uint64(p)), be.Uint32(p[8:])}
		p = p[timeEntryLen:]
		if e := ft.time[i]; int64(e.pos) >= s.dataLen || i > 0 && (e.key < ft.time[i-1].key || e.pos <= ft.time[i-1].pos) {
			return nil, fmt.Errorf("logstore: segment %s: time index entry %d out of order", s.name, i)
		}
	}
	for i := range ft.aborted {
		a := AbortedTxn{int64(be.Uint64(p)), int64(be.Uint64(p[8:])), int64(be.Uint64(p[16:]))}
		p = p[abEntryLen:]
		if a.FirstOffset > a.LastOffset || a.LastOffset < s.base || a.LastOffset >= s.next {
			return nil, fmt.Errorf("logstore: segment %s: aborted transaction %d out of range", s.name, i)
		}
		ft.aborted[i] = a
	}
	for i := range ft.open {
		ft.open[i] = openTxn{int64(be.Uint64(p)), int64(be.Uint64(p[8:]))}
		p = p[openEntryLen:]
		if ft.open[i].first >= s.next {
			return nil, fmt.Errorf("logstore: segment %s: open transaction %d out of range", s.name, i)
		}
	}
	return ft, nil
}

// seekOffset returns the position to scan from for the first batch holding offset o.
func (f *footer) seekOffset(o int64) int64 { return seekOffIn(f.off, o) }

// seekOffIn returns the position of the last offset index entry at or below o (0 if none).
func seekOffIn(off []idxEntry, o int64) int64 {
	i := sort.Search(len(off), func(i int) bool { return off[i].key > o })
	if i == 0 {
		return 0
	}
	return int64(off[i-1].pos)
}

// seekTime returns the position to scan from for the first batch with max timestamp >= ts:
// every batch before it has a smaller max timestamp.
func (f *footer) seekTime(ts int64) int64 { return seekTimeIn(f.time, ts) }

// seekTimeIn returns the position of the last time index entry below ts (0 if none).
func seekTimeIn(time []idxEntry, ts int64) int64 {
	i := sort.Search(len(time), func(i int) bool { return time[i].key >= ts })
	if i == 0 {
		return 0
	}
	return int64(time[i-1].pos)
}

// segBuilder accumulates batches into a segment object; the Log's active segment is one.
// With a writer it holds only the data not yet written (tail.go).
type segBuilder struct {
	base, next   int64
	interval     int
	countDeletes bool         // count tombstones (compacted topics) for the cleaner's schedule
	data         []byte       // data positions memStart..size
	size         int64        // data length
	cr           Creator      // the Store, when it writes objects as they fill (nil: all in memory)
	w            ObjectWriter // created with the first chunk written
	written      int64        // data in w
	pend         []chunk      // cut, not yet in w: positions written..memStart
	memStart     int64
	memFirst     int64 // position of the first batch starting in data (-1: none)
	hot          bool  // filled a chunk: the next data buffer is allocated whole
	small        bool  // unless small (the tails are over their budget: see cutEarly)
	flushing     bool  // Log.flush is writing pend (Log.mu)
	flushFailed  int64 // when the last chunk write failed (0: it did not)
	off, time    []idxEntry
	aborted      []AbortedTxn
	maxTS        int64
	firstTS      int64
	rollTS       int64 // the first batch's max timestamp: segment.ms counts from it (Kafka)
	sinceIdx     int
	deletable    uint32
	batches      uint32
	created      int64
	capHint      int // the most data capacity worth allocating (roll size plus footer room)
	// Single-copy builders (staged.go): data holds positions memStart..memStart+len(data),
	// the batches staged past size included; they reach dw by WriteDurable (staged.go).
	ext     bool
	dw      DurableWriter
	staged  []batchInfo // staged, not yet committed, in offset order; their data follows size
	flushed int64       // data positions written to dw
	synced  int64       // data positions durable in dw
	writeMu sync.Mutex  // one write at a time (Log.mu is not held while it writes)
	syncMu  sync.Mutex  // one sync at a time (it may run while a write does)
}

func newSegBuilder(base int64, interval int, countDeletes bool, created int64) *segBuilder {
	return &segBuilder{base: base, next: base, interval: max(interval, 1), countDeletes: countDeletes,
		maxTS: -1, firstTS: -1, rollTS: -1, created: created, memFirst: -1}
}

// add appends one batch (already validated by parseBatch, base >= next).
func (s *segBuilder) add(b []byte, h *batchInfo) {
	s.begin(h)
	s.appendData(b[:h.Size])
	s.account(b, h)
}

// begin indexes a batch starting at size (before its data is appended).
func (s *segBuilder) begin(h *batchInfo) {
	pos := uint32(s.size)
	if s.batches == 0 || s.sinceIdx >= s.interval {
		s.off = append(s.off, idxEntry{h.Base, pos})
		if s.batches > 0 {
			if n := len(s.time); n > 0 && s.time[n-1].key == s.maxTS {
				s.time[n-1].pos = pos
			} else {
				s.time = append(s.time, idxEntry{s.maxTS, pos})
			}
		}
		s.sinceIdx = 0
	}
	if s.batches == 0 {
		s.firstTS, s.rollTS = h.FirstTimestamp, h.MaxTimestamp
	}
	if s.memFirst < 0 {
		s.memFirst = s.size
	}
}

// account counts a batch whose data now follows size.
func (s *segBuilder) account(b []byte, h *batchInfo) {
	s.size += int64(h.Size)
	s.sinceIdx += h.Size
	s.maxTS = max(s.maxTS, h.MaxTimestamp)
	s.batches++
	s.next = h.Last + 1
	if h.control() {
		s.deletable++
	} else if s.countDeletes {
		if recs, err := records(b, h); err == nil {
			for _, r := range recs {
				if r.tombstone {
					s.deletable++
				}
			}
		}
	}
}

// footer encodes the sections after the data, covering offsets base..next (next may exceed
// the last batch: a cleaned segment keeps the range of the segments it replaces).
func (s *segBuilder) footer(next, cleaned int64, open []openTxn) []byte {
	next = max(next, s.next)
	n := len(s.off)*offEntryLen + len(s.time)*timeEntryLen + len(s.aborted)*abEntryLen +
		len(open)*openEntryLen + trailerLen
	return s.appendFooter(make([]byte, 0, n), next, cleaned, open)
}

func (s *segBuilder) appendFooter(out []byte, next, cleaned int64, open []openTxn) []byte {
	start := len(out)
	be := binary.BigEndian
	for _, e := range s.off {
		out = be.AppendUint32(be.AppendUint64(out, uint64(e.key)), e.pos)
	}
	for _, e := range s.time {
		out = be.AppendUint32(be.AppendUint64(out, uint64(e.key)), e.pos)
	}
	for _, a := range s.aborted {
		out = be.AppendUint64(be.AppendUint64(be.AppendUint64(out, uint64(a.ProducerID)), uint64(a.FirstOffset)), uint64(a.LastOffset))
	}
	for _, o := range open {
		out = be.AppendUint64(be.AppendUint64(out, uint64(o.pid)), uint64(o.first))
	}
	out = append(out, segMagic...)
	out = append(out, segVersion, 0, 0, 0)
	for _, v := range []int64{s.base, next, s.size, s.maxTS, s.firstTS, s.created, cleaned} {
		out = be.AppendUint64(out, uint64(v))
	}
	for _, v := range []uint32{uint32(len(s.off)), uint32(len(s.time)), uint32(len(s.aborted)), uint32(len(open)), s.deletable, s.batches} {
		out = be.AppendUint32(out, v)
	}
	return be.AppendUint32(out, crc32.Checksum(out[start:], crc32c))
}

// finish encodes the whole segment of a builder without a writer (all its data in memory),
// covering offsets base..next.
func (s *segBuilder) finish(next, cleaned int64, open []openTxn) []byte {
	return s.finishWith(s.footer(next, cleaned, open))
}

// finishWith returns the data followed by the encoded footer f.
func (s *segBuilder) finishWith(f []byte) []byte {
	// The footer goes after the data in its spare capacity when it fits (no copy of the
	// data; readers of the builder never look past the length they took).
	if cap(s.data)-len(s.data) >= len(f) {
		return append(s.data[:len(s.data):cap(s.data)], f...)
	}
	out := make([]byte, 0, len(s.data)+len(f))
	return append(append(out, s.data...), f...)
}

// decodeSegment fully checks a whole segment object: trailer, footer, and every batch
// (header, CRC, offsets inside the range and increasing, index positions at batch starts).
// Opening a log does not do this (it reads trailers only); it is the fuzzed decoder and
// the check used by tests and repair tools.
func decodeSegment(name string, b []byte) (segment, *footer, error) {
	if len(b) < trailerLen {
		return segment{}, nil, fmt.Errorf("logstore: segment %s: %d bytes", name, len(b))
	}
	s, err := decodeTrailer(b[len(b)-trailerLen:], int64(len(b)))
	if err != nil {
		return s, nil, err
	}
	s.name = name
	f, err := decodeFooter(&s, b[s.dataLen:])
	if err != nil {
		return s, nil, err
	}
	starts := map[uint32]int64{}
	prev := s.base - 1
	var n uint32
	for pos := int64(0); pos < s.dataLen; n++ {
		h, err := parseBatch(b[pos:s.dataLen])
		if err != nil {
			return s, nil, fmt.Errorf("logstore: segment %s at %d: %w", name, pos, err)
		}
		if !checkBatchCRC(b[pos:], &h) {
			return s, nil, fmt.Errorf("logstore: segment %s at %d: batch CRC mismatch", name, pos)
		}
		if h.Base <= prev || h.Last >= s.next || h.MaxTimestamp > s.maxTS {
			return s, nil, fmt.Errorf("logstore: segment %s at %d: batch %d..%d out of range", name, pos, h.Base, h.Last)
		}
		starts[uint32(pos)] = h.Base
		prev = h.Last
		pos += int64(h.Size)
	}
	if n != s.batches {
		return s, nil, fmt.Errorf("logstore: segment %s: %d batches, trailer says %d", name, n, s.batches)
	}
	for _, e := range f.off {
		if o, ok := starts[e.pos]; !ok || o != e.key {
			return s, nil, fmt.Errorf("logstore: segment %s: offset index entry %d does not match a batch", name, e.key)
		}
	}
	for _, e := range f.time {
		if _, ok := starts[e.pos]; !ok {
			return s, nil, fmt.Errorf("logstore: segment %s: time index entry at %d is not a batch start", name, e.pos)
		}
	}
	return s, f, nil
}
