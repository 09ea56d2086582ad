package storage

// WAL recovery: reading the segments back at start-up and deciding, entry by entry, what is
// intact, what is a torn tail and what is corruption (the general rules: recovery.go).
//
// A rotated segment is sealed: after its last entry the writer appends (and fsyncs) a seal,
// an entry header with flags 1 and no batch bytes whose base-offset field holds the seal's
// own byte position, before the next segment is created:
//
//	+--------+--------+-----+--------------------------+----------------+
//	| entry  | entry  | ... | seal (56 B, flags 1, n=0) | zeros (direct) |
//	+--------+--------+-----+--------------------------+----------------+
//
// An external entry (flags 2, see wal.go) is 60 bytes: the header, then a CRC-32C of the
// header. Replay can only check that CRC (the batch bytes are in the partition's segment):
// an external entry is intact when its header parses and its header CRC matches, and it is
// handed to fn with Data nil and ExternalLen set (Batch.CheckExternal verifies the bytes the
// caller finds). A bad one (cut within its 60 bytes, or a wrong header CRC) is judged as
// any bad entry below: a torn tail at the end of the last segment, else corruption.
//
// Replay rules, per segment:
//   - segment numbers must be consecutive (only a prefix is ever removed).
//   - a segment before the last must end with its seal (then only zeros: the padding of a
//     direct write, or the region prepared ahead of the commits, wal_prealloc.go); a bad
//     entry, zeros, or a missing seal there is corruption.
//   - the last segment may end in zeros (from its last entry to the end of the file, which
//     ends on a block boundary: padding or the prepared region; blocks a crash left
//     unwritten look the same, and held nothing acknowledged); a bad entry there is a torn
//     tail if it starts within maxTornBytes of the end (or nothing intact follows it),
//     unless the WAL was shut down cleanly (the marker <Dir>/wal/clean, recovery.go):
//     then the segment must end exactly where the marker says, and any bad entry is
//     corruption.
//   - a last segment that is sealed (a crash between the seal and the next segment's
//     creation) is left as it is; writing continues in a new segment.
//
// The WAL directory holds a format marker, <Dir>/wal/FORMAT, one line (walFormatLine),
// written (via a temporary file, renamed, directory fsynced) whenever this build opens a
// WAL. A WAL of format 2 (before external entries) or 3 (before zeros written ahead) is read
// as it is and gets the version-4 marker once opened (a build that knows only an older
// format then refuses it: it could not read external entries, or would take the zeros
// after a seal for corruption). Segments without the marker are a legacy WAL, written
// before seals existed: there a rotated segment whose entries are all intact but which
// ends without its seal (nothing after its last entry but the zero padding of a direct
// write) is upgraded, logged at WARN: the padding is cut and the seal written. Any other
// damage in a legacy WAL is judged as above, and once the open succeeded the marker is
// written, so the next start applies the rules above in full.
//
// Corruption is reported as a *CorruptError naming the segment file and byte; nothing is
// truncated. With WALOptions.RecoverDamaged the bytes from the damage to the end of that
// segment are moved into <Dir>/damaged/wal/ (an earlier segment is then sealed again) and
// replay goes on, logging at ERROR what was moved.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"
)

// entryFlagSeal marks a segment's seal entry.
const entryFlagSeal = 1

// sealEntry returns the seal entry for a segment whose entries end at pos.
func sealEntry(pos int64) []byte {
	h := make([]byte, entryHeaderSize)
	binary.BigEndian.PutUint16(h[4:], entryMagic)
	h[6] = entryVersion
	h[7] = entryFlagSeal
	binary.BigEndian.PutUint32(h[28:], ^uint32(0)) // partition -1
	binary.BigEndian.PutUint64(h[32:], uint64(pos))
	binary.BigEndian.PutUint32(h[0:], crc32.Update(0, castagnoli, h[4:]))
	return h
}

// isSeal reports whether the verified header h is a seal written at pos.
func isSeal(h []byte, pos int64) bool {
	return h[7] == entryFlagSeal && int64(binary.BigEndian.Uint64(h[32:])) == pos
}

func (w *fileWAL) cleanPath() string { return filepath.Join(w.dir, "clean") }

// walFormatLine is the content of the WAL's format marker: version 4 may have zeros of any
// length after a segment's entries or seal (the region written ahead of the commits,
// wal_prealloc.go; a build of version 3 takes those after a seal for corruption), version 3
// has external entries, version 2 sealed rotated segments (version 1, without a marker, did
// not).
const walFormatLine = "klite-wal 4\n"

// walFormatLineV2 and walFormatLineV3 are the markers of a WAL written before external
// entries existed, and before zeros were written ahead. Both are read as they are (this
// build's rules accept everything they allow) and get the current marker when opened.
const (
	walFormatLineV2 = "klite-wal 2\n"
	walFormatLineV3 = "klite-wal 3\n"
)

func (w *fileWAL) formatPath() string { return filepath.Join(w.dir, "FORMAT") }

// readFormatMarker returns the WAL's format marker: the current one (walFormatLine), a
// version-2 or -3 one, or "" if there is none; a marker of another version is an error (a
// WAL this build cannot read).
func (w *fileWAL) readFormatMarker() (string, error) {
	b, err := os.ReadFile(w.formatPath())
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if m := string(b); m != walFormatLine && m != walFormatLineV2 && m != walFormatLineV3 {
		return "", fmt.Errorf("storage: %s holds %q, not %q: a WAL format this build cannot read", w.formatPath(), b, walFormatLine)
	}
	return string(b), nil
}

// writeFormatMarker durably writes the format marker (whole or not at all: it is renamed
// into place). It goes straight to the OS, like the seals written at start-up: the file
// layer's fault injection is for the log's own writes. Without syncDir the rename is made
// durable by the caller's next fsync of the directory (a new WAL's first segment: a crash
// before it leaves an empty WAL with or without the marker, and an empty segment 1
// without the marker is taken as a legacy WAL and gets the marker at the next start).
func (w *fileWAL) writeFormatMarker(syncDir bool) error {
	tmp := w.formatPath() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(walFormatLine), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, w.formatPath())
	}
	if err == nil && syncDir {
		err = osFiles{}.SyncDir(w.dir)
	}
	if err != nil {
		return fmt.Errorf("storage: writing the WAL format marker: %w", err)
	}
	return nil
}

func (w *fileWAL) damagedDir() string {
	if w.opts.DamagedDir != "" {
		return w.opts.DamagedDir
	}
	return filepath.Join(filepath.Dir(w.dir), DamagedDirName, "wal")
}

// segScan is what scanning one segment found.
type segScan struct {
	good   int64 // end of the last intact entry (the seal included)
	bad    error // why scanning stopped before the end; nil if it reached it
	sealed bool  // the segment ends with its seal
	badLen int64 // the bad entry's declared length when its header was readable, else 0
	cut    bool  // the replay's callback cut the WAL at good (ErrCutReplay)
}

// setupTail prepares the writer to continue the last segment (creating segment 1 in an
// empty WAL). If fn is nil only the last segment is scanned (for Append before Replay).
// Called with w.mu held.
func (w *fileWAL) setupTail(fn func(*Batch, Location) error) error {
	w.segMu.RLock()
	nums := sortedSegs(w.segs)
	handles := make(map[uint64]*os.File, len(nums))
	for _, n := range nums {
		handles[n] = w.segs[n]
	}
	w.segMu.RUnlock()
	format, err := w.readFormatMarker()
	if err != nil {
		return err
	}
	if len(nums) == 0 {
		if format != walFormatLine {
			if err := w.writeFormatMarker(false); err != nil { // startSegment fsyncs the directory
				return err
			}
		}
		if err := w.startSegment(1); err != nil {
			return err
		}
		return removeCleanMarker(w.files, w.cleanPath())
	}
	if missing, ok := checkSegmentSequence(nums); !ok {
		cerr := &CorruptError{Path: w.segPath(missing), Reason: fmt.Sprintf(
			"WAL segment %d is missing although segments before and after it exist", missing)}
		if !w.opts.RecoverDamaged {
			return cerr
		}
		w.log.Error("RECOVERY: starting without a missing WAL segment; its batches are lost", "file", cerr.Path, "reason", cerr.Reason)
	}
	marker, clean, err := readCleanMarker(w.log, w.cleanPath())
	if err != nil {
		return err
	}
	// Segments without the marker are a legacy WAL; it gets the marker once every segment
	// has been judged (not after an Append before Replay, which scans only the last). A
	// version-2 or -3 WAL gets the current marker before anything is appended: its segments
	// are readable as they are, but appends may add external entries and zeros written
	// ahead.
	legacy := format == ""
	writeFormat := legacy && (fn != nil || len(nums) == 1) || format == walFormatLineV2 || format == walFormatLineV3
	// Legacy segments to seal, once every segment was judged: a refused start changes nothing.
	type unsealed struct {
		n         uint64
		end, size int64
	}
	var upgrades []unsealed
	if fn == nil {
		nums = nums[len(nums)-1:]
	}
	var b Batch
	var buf []byte
	for i, n := range nums {
		last := i == len(nums)-1
		rf := handles[n]
		st, err := rf.Stat()
		if err != nil {
			return err
		}
		size := st.Size()
		sc, err := scanSegment(rf, size, n, last || legacy, &b, &buf, fn)
		if err != nil {
			return err
		}
		var cerr error
		if sc.cut {
			cerr = judgeCut(w.segPath(n), n, size, last, clean, sc.good)
		} else if !last && legacy && sc.bad == nil && !sc.sealed {
			upgrades = append(upgrades, unsealed{n, sc.good, size})
			continue
		}
		if cerr == nil {
			cerr = w.judgeSegment(rf, n, size, last, sc, clean, marker)
		}
		if cerr == nil && sc.cut {
			w.log.Warn("storage: cutting the WAL before a batch the replay found never made durable (nothing after it was acknowledged)",
				"segment", n, "path", w.segPath(n), "at", sc.good, "dropped_bytes", size-sc.good)
			if err := w.openTail(n, sc.good, true); err != nil {
				return err
			}
			break
		}
		if cerr != nil {
			var ce *CorruptError
			if !errors.As(cerr, &ce) || !w.opts.RecoverDamaged {
				return cerr
			}
			if err := w.moveDamagedAside(n, last, ce); err != nil {
				return err
			}
			sc.good, sc.bad = ce.Offset, nil
			if !last {
				continue
			}
			if err := w.openTail(n, sc.good, false); err != nil {
				return err
			}
			break
		}
		if !last {
			continue
		}
		if sc.sealed {
			// Sealed before a crash kept the next segment from being created.
			if err := w.startSegment(n + 1); err != nil {
				return err
			}
		} else {
			if sc.bad != nil {
				w.log.Warn("storage: truncating torn WAL tail", "segment", n, "path", w.segPath(n),
					"at", sc.good, "dropped_bytes", size-sc.good, "reason", sc.bad.Error())
			}
			// good < size: a torn tail, or the zero padding of a direct write, cut off
			// before writing on.
			if err := w.openTail(n, sc.good, sc.good < size); err != nil {
				return err
			}
		}
	}
	for _, u := range upgrades {
		w.log.Warn("storage: upgrading a WAL segment written before segments were sealed: cutting its padding and sealing it",
			"segment", u.n, "path", w.segPath(u.n), "at", u.end, "padding_bytes", u.size-u.end)
		if err := w.sealSegment(u.n, u.end); err != nil {
			return fmt.Errorf("storage: sealing WAL segment %d: %w", u.n, err)
		}
	}
	if writeFormat {
		if err := w.writeFormatMarker(true); err != nil {
			return err
		}
	}
	return removeCleanMarker(w.files, w.cleanPath())
}

// judgeCut decides on a cut the replay asked for (ErrCutReplay) at pos of segment n: only
// the last segment of a WAL not shut down cleanly may end before an entry whose external
// bytes are missing (their sync, and so the acknowledgement of everything after, did not
// complete); anywhere else the bytes were made durable before and are lost: corruption.
func judgeCut(path string, n uint64, size int64, last, clean bool, pos int64) error {
	why := ""
	switch {
	case !last:
		why = "later segments exist, so it was acknowledged"
	case clean:
		why = "the WAL was shut down cleanly, so it was acknowledged"
	default:
		return nil
	}
	return &CorruptError{Path: path, Offset: pos, Size: size, Reason: fmt.Sprintf(
		"segment %d: the entry names a batch its partition segment does not hold (single-copy); %s", n, why)}
}

// judgeSegment applies the recovery rules to what scanning segment n found; it returns a
// *CorruptError (or an I/O error), or nil if the segment is intact or ends in a torn tail.
func (w *fileWAL) judgeSegment(rf io.ReaderAt, n uint64, size int64, last bool, sc segScan, clean bool, marker cleanMarker) error {
	corrupt := func(at int64, reason string) error {
		return &CorruptError{Path: w.segPath(n), Offset: at, Size: size, Reason: fmt.Sprintf("segment %d: %s", n, reason)}
	}
	if !last {
		switch {
		case sc.bad != nil:
			return corrupt(sc.good, sc.bad.Error()+"; later segments exist, so this is not a torn tail")
		case !sc.sealed:
			return corrupt(sc.good, "the segment ends without its seal; later segments exist, so entries are missing")
		}
		return nil
	}
	cleanHere := clean && marker.Seg == n
	if clean && marker.Seg != n {
		return corrupt(sc.good, fmt.Sprintf("the WAL was shut down cleanly with segment %d last", marker.Seg))
	}
	if sc.bad != nil {
		torn, why, err := tornTailPossible(sc.good, size, w.maxTornBytes(sc.badLen+entryHeaderSize), cleanHere, func(from int64) (bool, error) {
			return hasIntactEntry(rf, from, size)
		})
		if err != nil {
			return err
		}
		if !torn {
			return corrupt(sc.good, sc.bad.Error()+"; "+why)
		}
		return nil
	}
	if cleanHere && sc.good != marker.Size {
		return corrupt(min(sc.good, marker.Size), fmt.Sprintf("the WAL was shut down cleanly with this segment ending at byte %d, but its entries end at %d", marker.Size, sc.good))
	}
	return nil
}

// moveDamagedAside moves bytes [cerr.Offset, end) of segment n into the damaged directory
// (RecoverDamaged) and, for a segment before the last, seals it again.
func (w *fileWAL) moveDamagedAside(n uint64, last bool, cerr *CorruptError) error {
	if cerr.Offset >= cerr.Size {
		w.log.Error("RECOVERY: going on past damaged WAL data; nothing to move", "file", cerr.Path, "reason", cerr.Reason)
	} else {
		dst, moved, err := moveTailAside(w.segPath(n), cerr.Offset, w.damagedDir())
		if err != nil {
			return fmt.Errorf("%w; moving the damaged bytes aside failed: %v", cerr, err)
		}
		logMovedAside(w.log, "WAL entries", cerr, dst, moved)
	}
	if last {
		return nil
	}
	return w.sealSegment(n, cerr.Offset)
}

// sealSegment cuts segment n at pos (where its intact entries end) and seals it there.
func (w *fileWAL) sealSegment(n uint64, pos int64) error {
	f, err := os.OpenFile(w.segPath(n), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(pos); err != nil {
		return err
	}
	if _, err := f.WriteAt(sealEntry(pos), pos); err != nil {
		return err
	}
	return f.Sync()
}

// startSegment creates segment n and makes it the one written. Called with w.mu held.
func (w *fileWAL) startSegment(n uint64) error {
	f, rf, err := w.createSeg(n)
	if err != nil {
		return fmt.Errorf("storage: creating WAL segment %d: %w", n, err)
	}
	w.segMu.Lock()
	w.segs[n] = rf
	w.cur = n
	w.segMu.Unlock()
	w.curFile, w.curSize, w.curOpened = f, 0, time.Now()
	w.syncedSize = 0
	w.unprepare()
	w.tail = w.tail[:0]
	w.predEnd = 0
	return nil
}

// zerosTo reports whether r holds only zeros from from to to.
func zerosTo(r io.ReaderAt, from, to int64) (bool, error) {
	buf := make([]byte, min(to-from, 1<<20))
	for from < to {
		n := min(int64(len(buf)), to-from)
		if _, err := r.ReadAt(buf[:n], from); err != nil && !(err == io.EOF && from+n == to) {
			return false, err
		}
		if !allZero(buf[:n]) {
			return false, nil
		}
		from += n
	}
	return true, nil
}

// scanSegment reads the entries of segment n (size bytes) in order and calls fn for every
// intact batch entry. It stops at a seal (after which only zero padding may follow), at the
// zero padding of a direct write (only if padOK: the last segment, or any of a legacy WAL; an
// earlier one must end with its seal) or at a bad entry; err is an I/O error or fn's error.
func scanSegment(r io.ReaderAt, size int64, n uint64, padOK bool, b *Batch, buf *[]byte, fn func(*Batch, Location) error) (sc segScan, err error) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 1<<20)
	var h [entryHeaderSize]byte
	// Zeros from good to the end of the file: a direct write's padding (up to the block
	// boundary the file ends on) or the region the writer prepared ahead (wal_prealloc.go).
	// An entry never starts with six zero bytes (its magic follows the CRC), so the rest
	// is read only where it starts like padding: once per segment.
	paddingAt := func(good int64) (bool, error) {
		if size%dioAlign != 0 || size-good < 6 && alignUp64(good) != size {
			return false, nil
		}
		head, err := br.Peek(int(min(size-good, 6)))
		if err != nil || !allZero(head) {
			return false, err
		}
		return zerosTo(r, good, size)
	}
	for sc.good < size {
		if padOK || sc.sealed {
			// The zero padding after the last entry of a direct write (up to the block
			// boundary the file ends on) ends the segment.
			pad, err := paddingAt(sc.good)
			if err != nil {
				return sc, err
			}
			if pad {
				return sc, nil
			}
		}
		if sc.sealed {
			sc.bad = errors.New("data after the segment's seal")
			return sc, nil
		}
		if size-sc.good < entryHeaderSize {
			sc.bad = fmt.Errorf("%d trailing bytes, shorter than an entry header", size-sc.good)
			return sc, nil
		}
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return sc, err
		}
		l, ok := parseEntryHeader(h[:])
		if !ok {
			sc.bad = errors.New("bad entry header")
			return sc, nil
		}
		if int64(l) > size-sc.good-entryHeaderSize {
			if h[7] == entryFlagExternal {
				sc.bad = errors.New("external entry runs past the end of the segment")
			} else {
				sc.bad = fmt.Errorf("entry length %d runs past the end of the segment", l)
			}
			return sc, nil
		}
		*buf = growBuf(*buf, l)
		if _, err := io.ReadFull(br, *buf); err != nil {
			return sc, err
		}
		if !checkEntry(h[:], *buf) {
			// A large entry torn while being written: the writer had all of it in flight.
			sc.badLen = int64(l)
			sc.bad = errors.New("CRC mismatch")
			if h[7] == entryFlagExternal {
				sc.bad = errors.New("external entry header CRC mismatch")
			}
			return sc, nil
		}
		if h[7] == entryFlagSeal {
			if !isSeal(h[:], sc.good) {
				sc.bad = errors.New("seal entry out of place")
				return sc, nil
			}
			sc.sealed = true
			sc.good += entryHeaderSize
			continue
		}
		loc := Location{Segment: n, Offset: sc.good + entryHeaderSize, Size: int32(l)}
		start := sc.good
		sc.good += entryHeaderSize + int64(l)
		if fn != nil {
			decodeEntryHeader(h[:], b)
			b.Data = *buf
			if b.ExternalLen > 0 {
				b.Data = nil
				loc.Size = int32(b.ExternalLen)
			}
			if err := fn(b, loc); err != nil {
				if errors.Is(err, ErrCutReplay) {
					sc.good, sc.cut = start, true
					return sc, nil
				}
				return sc, err
			}
		}
	}
	return sc, nil
}

// hasIntactEntry reports whether an entry with a valid header and CRC starts anywhere in
// [from, size).
func hasIntactEntry(r io.ReaderAt, from, size int64) (bool, error) {
	const window = 4 << 20
	buf := make([]byte, window+entryHeaderSize)
	var payload []byte
	for pos := from; pos+entryHeaderSize <= size; pos += window {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-pos)], pos)
		if err != nil && err != io.EOF {
			return false, err
		}
		for i := 0; i+entryHeaderSize <= n && i < window; i++ {
			h := buf[i : i+entryHeaderSize]
			l, ok := parseEntryHeader(h)
			at := pos + int64(i)
			if !ok || int64(l) > size-at-entryHeaderSize {
				continue
			}
			payload = growBuf(payload, l)
			if _, err := r.ReadAt(payload, at+entryHeaderSize); err != nil && err != io.EOF {
				return false, err
			}
			if checkEntry(h, payload) {
				return true, nil
			}
		}
	}
	return false, nil
}
