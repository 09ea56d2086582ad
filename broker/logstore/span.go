package logstore

// Zero-copy reads: a fetch served from a sealed segment of a local directory does not read
// the batches into memory. ReadSpan finds the byte range of the whole batches a read returns
// in the segment file (the offset index for the start, then the batch headers, read a small
// window at a time) and hands back the open file with the range; the server sends it to the
// socket with sendfile. Only the headers are copied into memory. A long range does not walk
// every header: the offset index gives a batch boundary one or two index intervals before
// the byte limit and the walk reads on from there (jumpTo), so a cold file's range goes to
// the socket as the disk reads it instead of after a walk that waited for all of it.
//
// The file stays open until the range is sent: retention or the cleaner may delete the
// segment meanwhile, but an open file keeps its bytes (segments are never written in
// place, only created whole and deleted), so a send never sees another object's bytes.
// A segment deleted before it is opened is looked up again, as ReadAppend does. A DirStore
// keeps the files open between reads (fdcache.go); each read holds a reference.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
)

// FileStore is a Store whose objects are local files a reader can open (DirStore).
type FileStore interface {
	Store
	// Open opens name for reading; a missing name is ErrNotFound (wrapped).
	Open(name string) (*os.File, error)
}

// Open implements FileStore.
func (d *DirStore) Open(name string) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	f, err := os.Open(d.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return f, err
}

// Span is a range of whole batches in an open segment file.
type Span struct {
	// File holds the range; it may be shared with other readers: read it at explicit
	// offsets only (ReadAt, sendfile with an offset), and call Close once the range is sent.
	File     *os.File
	Off, Len int64
	// Last is the last offset of the last batch; Records counts the records of all of them.
	Last    int64
	Records int64
	sf      *sharedFile
}

// Close releases the span's file (once).
func (sp *Span) Close() {
	if sp.sf != nil {
		sp.sf.release()
		sp.sf, sp.File = nil, nil
	}
}

// acquire opens name for a read: from the DirStore's cache of open files, or (another
// FileStore) a file of its own.
func acquire(fst FileStore, name string) (*sharedFile, error) {
	if d, ok := fst.(*DirStore); ok && d.files != nil {
		return d.files.acquire(name, d.Open)
	}
	f, err := fst.Open(name)
	if err != nil {
		return nil, err
	}
	return &sharedFile{f: f, name: name, refs: 1}, nil
}

// spanWindow is the first window of batch headers read at a time; it grows to
// spanWindowMax while batches are small (many headers per window) and starts small again
// after a large one (one header per window).
const (
	spanWindow    = 4 << 10
	spanWindowMax = 64 << 10
)

// ReadSpan returns, as a range of a segment file, the batches ReadAppend(offset, maxBytes)
// would return, cut before the first batch whose last offset is >= upper, and empty when
// the first batch is larger than maxBytes and minOne is false (what a fetch keeps of a
// read). ok is false when the read would not come from a sealed segment of a FileStore
// (the tail in memory, another Store): the caller reads with ReadAppend then. A span of
// length 0 with ok true means the read returns nothing.
func (l *Log) ReadSpan(offset int64, maxBytes int, upper int64, minOne bool) (Span, bool, error) {
	fst, isFile := l.st.(FileStore)
	if !isFile {
		return Span{}, false, nil
	}
	for attempt := 0; ; attempt++ {
		sp, ok, err := l.readSpan(fst, offset, maxBytes, upper, minOne)
		// A job deleted or replaced the segment before it was opened: look again.
		if errors.Is(err, ErrNotFound) && attempt < 8 {
			continue
		}
		return sp, ok, err
	}
}

func (l *Log) readSpan(fst FileStore, offset int64, maxBytes int, upper int64, minOne bool) (Span, bool, error) {
	l.mu.Lock()
	if offset < l.ckpt.logStart {
		l.mu.Unlock()
		return Span{}, false, fmt.Errorf("%w: %d is below the log start %d", ErrOffsetOutOfRange, offset, l.ckpt.logStart)
	}
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].next > offset })
	segs := l.segs[i:len(l.segs):len(l.segs)]
	l.mu.Unlock()
	for k, s := range segs {
		sf, err := acquire(fst, s.name)
		if errors.Is(err, ErrNotFound) {
			return Span{}, false, err // looked up again
		}
		if err != nil {
			return Span{}, false, nil // out of descriptors, say: the copy path reads it
		}
		sp, found, err := spanOf(sf, s, offset, maxBytes, upper, minOne)
		if err == nil && found && sp.Len > 0 {
			// A consumer catching up asks for what follows next: have the disk read it
			// while this answer is sent and the consumer handles it. In the background
			// where the file is shared (queued behind the prefetches asked for before:
			// readAheads), by the reader itself otherwise.
			next, pos := segs[k+1:], sp.Off+sp.Len
			if bg, busy := sf.startPrefetch(); bg {
				if !readAheads.push(int64(maxBytes), func() {
					defer sf.donePrefetch()
					if !sf.cache.isShut() {
						prefetchAfter(fst, sf, s, next, pos, int64(maxBytes), true)
					}
				}) {
					sf.donePrefetch() // the queue is full: the disk is behind already
				}
			} else if !busy {
				prefetchAfter(fst, sf, s, next, pos, int64(maxBytes), false)
			}
		}
		if err != nil || !found || sp.Len == 0 {
			sf.release()
		}
		if err != nil {
			return Span{}, false, err
		}
		if found {
			if sp.Len == 0 {
				return Span{}, true, nil
			}
			sp.File, sp.sf = sf.f, sf
			return sp, true, nil
		}
	}
	return Span{}, false, nil // in the tail: the copy path reads it
}

// prefetchAfter starts reading n bytes that follow position pos of segment s (open as sf),
// going on into the next segments. With read (the background prefetch, readAheads) it
// reads them itself and returns once they are in the page cache (readAhead); without, it
// asks the kernel for them (POSIX_FADV_WILLNEED) and returns.
func prefetchAfter(fst FileStore, sf *sharedFile, s *segment, next []*segment, pos, n int64, read bool) {
	ahead := (*sharedFile).willNeed
	if read {
		ahead = (*sharedFile).readAhead
	}
	if pos < s.dataLen {
		m := min(n, s.dataLen-pos)
		ahead(sf, pos, m)
		n -= m
	}
	for _, s := range next {
		if n <= 0 {
			return
		}
		nf, err := acquire(fst, s.name)
		if err != nil {
			return
		}
		m := min(n, s.dataLen)
		if nf.firstPrefetch() {
			prefetch(nf.f, s.dataLen, int64(s.nOff)*offEntryLen) // the offset index the next read seeks with
		}
		ahead(nf, 0, m)
		nf.release()
		n -= m
	}
}

// spanOf finds in segment s (open as sf) the batches a read at offset returns. found is
// false when every batch of s ends below offset (the read goes on to the next segment).
func spanOf(sf *sharedFile, s *segment, offset int64, maxBytes int, upper int64, minOne bool) (sp Span, found bool, err error) {
	f := sf.f
	pos, ok := sf.hint(offset)
	var idx []byte // the offset index, when read to find the start (jumpTo reads it too)
	if !ok {
		idx = make([]byte, int64(s.nOff)*offEntryLen)
		if _, err := f.ReadAt(idx, s.dataLen); err != nil {
			return sp, false, fmt.Errorf("logstore: segment %s: index: %w", s.name, err)
		}
		pos = seek(idx, offset, false)
	}
	if pos < 0 || pos > s.dataLen {
		return sp, false, fmt.Errorf("logstore: segment %s: %w: index position %d past the data end %d", s.name, errBadBatch, pos, s.dataLen)
	}
	defer func() {
		if err == nil && found && sp.Len > 0 {
			sf.setHint(sp.Last+1, sp.Off+sp.Len) // where a reader catching up reads next
		}
	}()
	end := s.dataLen
	if n := int64(maxBytes) + spanWindow; pos+n < end {
		end = pos + n // prefetch no further than the read can reach (plus a window to find its start)
	}
	sf.willNeed(pos, end-pos)
	hr := headerReader{f: f, name: s.name, dataLen: s.dataLen, win: spanWindow}
	jumped := false
	for pos < s.dataLen {
		h, err := hr.header(pos)
		if err != nil {
			return sp, found, err
		}
		if h.Last < offset {
			pos += int64(h.Size)
			continue
		}
		if !found {
			found = true
			sp.Off = pos
			if h.Last >= upper || !minOne && h.Size > maxBytes {
				return sp, true, nil
			}
		} else if sp.Len+int64(h.Size) > int64(maxBytes) || h.Last >= upper {
			return sp, true, nil
		}
		sp.Len += int64(h.Size)
		sp.Last = h.Last
		sp.Records += int64(h.NumRecords)
		pos += int64(h.Size)
		if sp.Len >= int64(maxBytes) {
			break
		}
		if !jumped && s.cleaned == 0 && int64(maxBytes)-sp.Len > spanJumpMin {
			jumped = true
			to, toOff, err := jumpTo(f, s, idx, pos, sp.Off+int64(maxBytes), upper)
			if err != nil {
				return sp, found, err
			}
			if to > pos {
				sp.Len += to - pos
				sp.Records += toOff - (sp.Last + 1)
				pos = to
			}
		}
	}
	return sp, found, nil
}

// spanJumpMin is the byte limit left in a span above which spanOf seeks its end with the
// offset index instead of walking every batch header.
const spanJumpMin = 64 << 10

// jumpTo returns the data position (and the base offset of the batch there) up to which a
// span from pos may take every batch without reading their headers: the second-to-last
// offset index entry at or below limit whose offset is at most upper (the batches before
// it all end below that offset). The walk goes on from there through the last interval,
// so the span's last batch is read, not guessed. pos itself when no entry is further on.
// Only for segments the cleaner never rewrote: their offsets have no gaps, so the skipped
// batches hold toOff - (offset after the span so far) records. idx is the offset index if
// the caller has read it already (else nil: the search reads the entries it looks at).
func jumpTo(f *os.File, s *segment, idx []byte, pos, limit, upper int64) (to, toOff int64, err error) {
	var e [offEntryLen]byte
	entry := func(i int) (off, at int64) {
		if err != nil {
			return 0, 0
		}
		if len(idx) > 0 {
			b := idx[i*offEntryLen:]
			return int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint32(b[8:]))
		}
		if _, rerr := f.ReadAt(e[:], s.dataLen+int64(i)*offEntryLen); rerr != nil {
			err = fmt.Errorf("logstore: segment %s: index: %w", s.name, rerr)
			return 0, 0
		}
		return int64(binary.BigEndian.Uint64(e[:])), int64(binary.BigEndian.Uint32(e[8:]))
	}
	// The first entry past limit or upper; both grow with the entry number.
	j := sort.Search(int(s.nOff), func(i int) bool {
		off, at := entry(i)
		return at > limit || off > upper
	})
	if err != nil || j < 2 {
		return pos, 0, err
	}
	off, at := entry(j - 2)
	if err != nil || at <= pos {
		return pos, 0, err
	}
	if at > s.dataLen {
		return pos, 0, fmt.Errorf("logstore: segment %s: %w: index position %d past the data end %d", s.name, errBadBatch, at, s.dataLen)
	}
	return at, off, nil
}

// headerReader reads batch headers of a segment file through a small window.
type headerReader struct {
	f       *os.File
	name    string
	dataLen int64
	win     int
	buf     []byte
	at      int64 // file position of buf[0]
}

// header returns the header of the batch at data position pos, checking that the whole
// batch lies inside the data section.
func (r *headerReader) header(pos int64) (batchInfo, error) {
	if pos < r.at || pos+batchHeaderLen > r.at+int64(len(r.buf)) {
		n := min(int64(r.win), r.dataLen-pos)
		if n < batchHeaderLen {
			return batchInfo{}, fmt.Errorf("logstore: segment %s at %d: %w: %d bytes left", r.name, pos, errBadBatch, n)
		}
		if cap(r.buf) < int(n) {
			r.buf = make([]byte, n, max(n, spanWindowMax))
		}
		r.buf = r.buf[:n]
		if m, err := r.f.ReadAt(r.buf, pos); err != nil && !(errors.Is(err, io.EOF) && m == int(n)) {
			return batchInfo{}, fmt.Errorf("logstore: segment %s at %d: %w", r.name, pos, err)
		}
		r.at = pos
	}
	h, err := parseHeader(r.buf[pos-r.at:])
	if err == nil && pos+int64(h.Size) > r.dataLen {
		err = fmt.Errorf("%w: batch of %d bytes at %d passes the data end %d", errBadBatch, h.Size, pos, r.dataLen)
	}
	if err != nil {
		return h, fmt.Errorf("logstore: segment %s at %d: %w", r.name, pos, err)
	}
	// Small batches: a larger window takes many headers per read. A large one: the next
	// header is past this window anyway, read as little as a header needs.
	if h.Size < r.win/4 {
		r.win = min(2*r.win, spanWindowMax)
	} else if h.Size > r.win {
		r.win = spanWindow
	}
	return h, nil
}

// parseHeader decodes a batch header without requiring the whole batch in b.
func parseHeader(b []byte) (batchInfo, error) {
	if len(b) < batchHeaderLen {
		return batchInfo{}, fmt.Errorf("%w: %d bytes, header needs %d", errBadBatch, len(b), batchHeaderLen)
	}
	length := int64(int32(binary.BigEndian.Uint32(b[8:])))
	if length < batchHeaderLen-12 || length > 1<<31-13 {
		return batchInfo{}, fmt.Errorf("%w: length %d", errBadBatch, length)
	}
	// parseBatch checks the rest of the header; give it the header and a fake length
	// that fits.
	var hdr [batchHeaderLen]byte
	copy(hdr[:], b)
	binary.BigEndian.PutUint32(hdr[8:], batchHeaderLen-12)
	h, err := parseBatch(hdr[:])
	h.Size = int(12 + length)
	return h, err
}
