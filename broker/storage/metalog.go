package storage

// File MetaLog: one file of length-prefixed, checksummed records.
//
//	+--------+--------+-----------------+--------+--------+---------+---
//	| len    | crc    | payload (len B) | len    | crc    | payload | ...
//	+--------+--------+-----------------+--------+--------+---------+---
//	  uint32   uint32                     big-endian
//
// crc is CRC-32C (Castagnoli) over the 4 length bytes and then the payload.
//
// Append/AppendBatch write the records (one pwrite) and return after an fsync covering them;
// concurrent callers share fsyncs. A failed write truncates the file back so that no partial
// record remains. A failed fsync (EIO) fails every write since the last good fsync and
// truncates the file back to where that fsync ended, as the WAL does: after a failed fsync
// the kernel may have dropped those dirty pages, so none of them is acknowledged, and the
// next records are written anew after the last durable one (the next good fsync makes the
// truncation durable too). Only a failed truncation makes the log refuse all further writes.
//
// Replay checks every record (see recovery.go for the rules). A bad record followed by no
// intact one is a torn tail (the last write, never acknowledged) and is truncated (and
// fsynced) with a slog warning. A bad record followed by an intact one, or any damage after
// a clean shutdown, is corruption: Replay returns a *CorruptError naming the file and byte
// and changes nothing (with MetaOptions.RecoverDamaged it moves the bytes from the damage on
// into the damaged directory instead, and says so at ERROR).
//
// Close writes a clean-shutdown marker <path>.clean (see recovery.go) recording the size;
// Replay checks the file against it and removes it before the log is written again.
//
// Compact writes the snapshot to <path>.compact, fsyncs it, renames it over <path> and fsyncs
// the directory. A crash at any point leaves either the old or the new file complete; a
// leftover <path>.compact is removed on open.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

const maxMetaRecord = 1 << 30

type fileMeta struct {
	path  string
	dir   string
	files fileLayer
	log   *slog.Logger
	opts  MetaOptions
	// noCleanMarker: Close writes no clean-shutdown marker (tests standing for crashes).
	noCleanMarker bool

	// syncMu serializes fsyncs and compaction; lock order: syncMu, then mu.
	syncMu sync.Mutex
	synced uint64 // write sequence number known durable
	// syncedSize is the file size the last good fsync covered (or replay found).
	syncedSize int64
	// failedUpTo: writes up to this sequence number were cut by a failed fsync (syncErr).
	failedUpTo uint64
	syncErr    error

	mu        sync.Mutex
	f         writeFile
	size      int64
	written   uint64 // sequence number of the last write
	ready     bool   // torn tail handled (Replay or first write)
	closed    bool
	broken    error
	encodeBuf []byte
}

var _ MetaLog = (*fileMeta)(nil)

// MetaOptions configures OpenMetaLogWith.
type MetaOptions struct {
	// RecoverDamaged: on corruption, move the bytes from the damage to the end of the file
	// into DamagedDir (logged at ERROR) and go on, instead of refusing to replay.
	RecoverDamaged bool
	// DamagedDir is where RecoverDamaged moves bytes (default: <dir of path>/damaged).
	DamagedDir string
	Logger     *slog.Logger
	// Faults, if set, injects write and fsync errors below the log's files (tests).
	Faults *Faults
}

// OpenMetaLog opens (creating if needed) the metadata log at path. Call Replay before the
// first Append to read it back.
func OpenMetaLog(path string) (MetaLog, error) { return openMetaLog(path, osFiles{}, nil) }

// OpenMetaLogWith is OpenMetaLog with options.
func OpenMetaLogWith(path string, o MetaOptions) (MetaLog, error) {
	var files fileLayer = osFiles{}
	if o.Faults != nil {
		files = o.Faults
	}
	m, err := openMetaLog(path, files, o.Logger)
	if err != nil {
		return nil, err
	}
	m.opts = o
	if m.opts.DamagedDir == "" {
		m.opts.DamagedDir = filepath.Join(m.dir, DamagedDirName)
	}
	return m, nil
}

func openMetaLog(path string, files fileLayer, log *slog.Logger) (*fileMeta, error) {
	if log == nil {
		log = slog.Default()
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Remove(path + ".compact"); err == nil {
		log.Warn("storage: removed unfinished metadata log compaction", "path", path+".compact")
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	_, statErr := os.Stat(path)
	f, err := files.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if errors.Is(statErr, os.ErrNotExist) {
		if err := files.SyncDir(dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	return &fileMeta{path: path, dir: dir, files: files, log: log, f: f}, nil
}

func (m *fileMeta) Append(rec []byte) error { return m.AppendBatch([][]byte{rec}) }

func (m *fileMeta) AppendBatch(recs [][]byte) error {
	m.mu.Lock()
	if len(recs) == 0 {
		err := m.writable()
		m.mu.Unlock()
		return err
	}
	if err := m.writable(); err != nil {
		m.mu.Unlock()
		return err
	}
	if !m.ready {
		if err := m.scan(nil); err != nil {
			m.mu.Unlock()
			return err
		}
	}
	buf := m.encodeBuf[:0]
	for _, r := range recs {
		if len(r) > maxMetaRecord {
			m.mu.Unlock()
			return fmt.Errorf("storage: metadata record of %d bytes is too large", len(r))
		}
		buf = appendMetaRecord(buf, r)
	}
	if cap(buf) <= 1<<20 {
		m.encodeBuf = buf
	} else {
		m.encodeBuf = nil
	}
	if _, err := m.f.WriteAt(buf, m.size); err != nil {
		err = fmt.Errorf("storage: metadata log write: %w", err)
		if terr := m.f.Truncate(m.size); terr != nil {
			m.broken = fmt.Errorf("%w; truncating back failed: %v", err, terr)
		}
		m.mu.Unlock()
		return err
	}
	m.size += int64(len(buf))
	m.written++
	seq := m.written
	m.mu.Unlock()
	return m.syncTo(seq)
}

func (m *fileMeta) writable() error {
	if m.closed {
		return ErrClosed
	}
	return m.broken
}

// syncTo returns once write seq is durable, sharing fsyncs between concurrent callers.
func (m *fileMeta) syncTo(seq uint64) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	if m.synced >= seq {
		return nil
	}
	if seq <= m.failedUpTo {
		return m.syncErr
	}
	m.mu.Lock()
	if err := m.writable(); err != nil {
		m.mu.Unlock()
		return err
	}
	target, size, f := m.written, m.size, m.f
	m.mu.Unlock()
	if err := f.Sync(); err != nil {
		err = fmt.Errorf("storage: metadata log fsync: %w", err)
		m.mu.Lock()
		defer m.mu.Unlock()
		// Every write so far is cut, those written while this fsync ran included.
		m.failedUpTo, m.syncErr = m.written, err
		if terr := m.f.Truncate(m.syncedSize); terr != nil {
			m.broken = fmt.Errorf("%w; truncating back failed: %v", err, terr)
			m.log.Error("storage: metadata log stopped accepting writes", "path", m.path, "err", m.broken)
			return err
		}
		m.log.Error("storage: metadata log fsync failed: the records since the last good fsync are refused and cut; writes go on after them",
			"path", m.path, "cut_from", m.syncedSize, "cut_bytes", m.size-m.syncedSize, "err", err)
		m.size = m.syncedSize
		return err
	}
	m.synced, m.syncedSize = target, size
	return nil
}

func appendMetaRecord(buf, r []byte) []byte {
	var h [8]byte
	binary.BigEndian.PutUint32(h[0:], uint32(len(r)))
	crc := crc32.Update(0, castagnoli, h[0:4])
	crc = crc32.Update(crc, castagnoli, r)
	binary.BigEndian.PutUint32(h[4:], crc)
	buf = append(buf, h[:]...)
	return append(buf, r...)
}

// decodeMetaRecords calls fn for each intact record of data in order and returns the end of
// the last intact one, and why it stopped early (nil if it reached the end).
func decodeMetaRecords(data []byte, fn func(rec []byte) error) (good int, bad, err error) {
	for good < len(data) {
		rest := data[good:]
		if len(rest) < metaEntryOverhead {
			return good, fmt.Errorf("%d trailing bytes, shorter than a record header", len(rest)), nil
		}
		l := binary.BigEndian.Uint32(rest[0:])
		if l > maxMetaRecord || uint64(l) > uint64(len(rest)-metaEntryOverhead) {
			return good, fmt.Errorf("record length %d runs past the end of the log", l), nil
		}
		crc := crc32.Update(0, castagnoli, rest[0:4])
		rec := rest[metaEntryOverhead : metaEntryOverhead+int(l)]
		crc = crc32.Update(crc, castagnoli, rec)
		if crc != binary.BigEndian.Uint32(rest[4:]) {
			return good, errors.New("CRC mismatch"), nil
		}
		good += metaEntryOverhead + int(l)
		if fn != nil {
			if err := fn(rec); err != nil {
				return good, nil, err
			}
		}
	}
	return good, nil, nil
}

// scan reads the whole log, calls fn for each intact record and truncates a torn tail; it
// refuses corruption (see recovery.go). Called with mu held.
func (m *fileMeta) scan(fn func(rec []byte) error) error {
	data, err := os.ReadFile(m.path)
	if err != nil {
		return err
	}
	marker, clean, err := readCleanMarker(m.log, m.cleanPath())
	if err != nil {
		return err
	}
	good, bad, err := decodeMetaRecords(data, fn)
	if err != nil {
		return err
	}
	cerr := judgeMetaLog(m.path, data, good, bad, clean, marker)
	if cerr == nil && bad != nil {
		m.log.Warn("storage: truncating torn metadata log tail", "path", m.path, "at", good,
			"dropped_bytes", len(data)-good, "reason", bad.Error())
		if err := m.f.Truncate(int64(good)); err != nil {
			return err
		}
		if err := m.f.Sync(); err != nil {
			return err
		}
	}
	if cerr != nil {
		if !m.opts.RecoverDamaged {
			return cerr
		}
		if cerr.Offset < int64(len(data)) {
			dst, n, err := moveTailAside(m.path, cerr.Offset, m.opts.DamagedDir)
			if err != nil {
				return fmt.Errorf("%w; moving the damaged bytes aside failed: %v", cerr, err)
			}
			logMovedAside(m.log, "metadata log records", cerr, dst, n)
			good = int(cerr.Offset)
		} else {
			m.log.Error("RECOVERY: going on with a damaged metadata log; nothing to move", "file", m.path, "reason", cerr.Reason)
		}
	}
	if err := removeCleanMarker(m.files, m.cleanPath()); err != nil {
		return err
	}
	m.size = int64(good)
	m.syncedSize = m.size
	m.ready = true
	return nil
}

// judgeMetaLog applies the recovery rules (recovery.go) to a metadata log whose intact records
// end at good (bad: why decoding stopped there, nil at the end): nil if the log is intact or
// ends in a torn tail (the last write: nothing intact follows the bad record, and the log was
// not shut down cleanly), else the corruption.
func judgeMetaLog(path string, data []byte, good int, bad error, clean bool, marker cleanMarker) *CorruptError {
	corrupt := func(at int, reason string) *CorruptError {
		return &CorruptError{Path: path, Offset: int64(at), Size: int64(len(data)), Reason: reason}
	}
	switch {
	case bad != nil:
		torn, why, _ := tornTailPossible(int64(good), int64(len(data)), 0, clean, func(from int64) (bool, error) {
			return metaHasIntactRecord(data, int(from)), nil
		})
		if !torn {
			return corrupt(good, bad.Error()+"; "+why)
		}
	case clean && marker.Size != int64(len(data)):
		return corrupt(min(good, int(marker.Size)), fmt.Sprintf("the log was shut down cleanly at %d bytes but holds %d", marker.Size, len(data)))
	}
	return nil
}

func (m *fileMeta) cleanPath() string { return m.path + ".clean" }

// metaHasIntactRecord reports whether an intact record starts anywhere in data[from:].
func metaHasIntactRecord(data []byte, from int) bool {
	for i := max(from, 0); i+metaEntryOverhead <= len(data); i++ {
		l := binary.BigEndian.Uint32(data[i:])
		if l > maxMetaRecord || uint64(l) > uint64(len(data)-i-metaEntryOverhead) {
			continue
		}
		crc := crc32.Update(0, castagnoli, data[i:i+4])
		crc = crc32.Update(crc, castagnoli, data[i+metaEntryOverhead:i+metaEntryOverhead+int(l)])
		if crc == binary.BigEndian.Uint32(data[i+4:]) {
			return true
		}
	}
	return false
}

// Replay implements MetaLog. rec is a fresh slice fn may keep. It must not be called after
// Append.
func (m *fileMeta) Replay(fn func(rec []byte) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.ready {
		return errors.New("storage: metadata log Replay after Append")
	}
	return m.scan(fn)
}

// Compact implements MetaLog.
func (m *fileMeta) Compact(snapshot [][]byte) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.writable(); err != nil {
		return err
	}
	var buf []byte
	for _, r := range snapshot {
		if len(r) > maxMetaRecord {
			return fmt.Errorf("storage: metadata record of %d bytes is too large", len(r))
		}
		buf = appendMetaRecord(buf, r)
	}
	tmp := m.path + ".compact"
	nf, err := m.files.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("storage: metadata log compaction: %w", err)
	}
	fail := func(err error) error {
		nf.Close()
		os.Remove(tmp)
		return fmt.Errorf("storage: metadata log compaction: %w", err)
	}
	if _, err := nf.WriteAt(buf, 0); err != nil {
		return fail(err)
	}
	if err := nf.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, m.path); err != nil {
		return fail(err)
	}
	// From here the new file is in place; an error syncing the directory leaves it unclear
	// which file survives a crash, but both are complete and the open handle is the new one.
	m.f.Close()
	m.f = nf
	m.size = int64(len(buf))
	m.written++
	m.synced = m.written
	m.syncedSize = m.size
	m.ready = true
	if err := m.files.SyncDir(m.dir); err != nil {
		return fmt.Errorf("storage: metadata log compaction: syncing directory: %w", err)
	}
	return nil
}

func (m *fileMeta) Size() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ready && !m.closed {
		if st, err := os.Stat(m.path); err == nil {
			return st.Size()
		}
	}
	return m.size
}

func (m *fileMeta) Close() error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	var err error
	if m.broken == nil && m.synced < m.written {
		err = m.f.Sync()
	}
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	if err == nil && m.broken == nil && m.ready && !m.noCleanMarker {
		// Everything is durable: record where the log ends (see recovery.go).
		err = writeCleanMarker(m.files, m.cleanPath(), cleanMarker{Size: m.size})
	}
	return err
}
