package storage

// Recovery rules shared by every log klite replays (WAL segments, meta.log, groups.log,
// txns.log; and the per-partition segments to come). A replay that meets a bad entry must
// decide between two cases:
//
//   - a torn tail: bytes the writer may have had in flight (written, not yet fsynced) when
//     the process or machine died. Only the end of the last file can be torn, only as far
//     back as the writer can have in flight, and nothing at all after a clean shutdown
//     recorded durably. A torn tail is cut off (with a warning): it was never acknowledged.
//   - corruption: anything else (a bad entry followed by intact ones, a bad entry in a file
//     that was complete and fsynced before the next one existed, a hole in segment numbers,
//     damage further back than the in-flight window, damage after a clean shutdown). Replay
//     refuses with a *CorruptError naming the file and byte offset and changes nothing.
//
// The operator path (RecoverDamaged options, klite --recover-damaged) moves the damaged
// bytes into <data-dir>/damaged/ (moveTailAside), logs at ERROR exactly what was moved, and
// starts: the loss is then the operator's informed choice, never a silent one.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ErrCorrupt is wrapped by every replay error that reports damaged data it refuses to cut.
var ErrCorrupt = errors.New("storage: corrupt data")

// CorruptError names the damaged file and the byte offset where the damage starts.
type CorruptError struct {
	Path   string
	Offset int64
	Size   int64 // the file's size
	Reason string
}

func (e *CorruptError) Error() string {
	if e.Size < 0 { // unknown (a cross-check above storage)
		return fmt.Sprintf("storage: corrupt data in %s at byte %d: %s", e.Path, e.Offset, e.Reason)
	}
	return fmt.Sprintf("storage: corrupt data in %s at byte %d of %d: %s", e.Path, e.Offset, e.Size, e.Reason)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// DamagedDirName is the directory under the data directory that damaged bytes are moved to.
const DamagedDirName = "damaged"

// checkSegmentSequence returns the first missing segment number if nums (sorted) has a hole.
// Segments are only ever removed as a prefix (retention), so any hole is lost data.
func checkSegmentSequence(nums []uint64) (missing uint64, ok bool) {
	for i := 1; i < len(nums); i++ {
		if nums[i] != nums[i-1]+1 {
			return nums[i-1] + 1, false
		}
	}
	return 0, true
}

// tornTailPossible reports whether a bad entry at byte bad of the last file (size bytes) can
// be a torn tail: the region from it to the end must fit in what the writer can have had in
// flight (window bytes), or hold no intact entry at all (say zeros, or the rest of a single
// large entry that was never fully written). hasIntact scans [from, size) for an intact
// entry. After a clean shutdown (clean) nothing can be torn.
func tornTailPossible(bad, size, window int64, clean bool, hasIntact func(from int64) (bool, error)) (bool, string, error) {
	if clean {
		return false, "the log was shut down cleanly, so nothing in it can be torn", nil
	}
	if size-bad <= window {
		return true, "", nil
	}
	found, err := hasIntact(bad + 1)
	if err != nil {
		return false, "", err
	}
	if found && window == 0 {
		return false, "intact records follow it, so this is not a torn tail", nil
	}
	if found {
		return false, fmt.Sprintf("intact entries follow more than %d bytes later (beyond what the writer can have in flight), so this is not a torn tail", window), nil
	}
	return true, "", nil
}

// moveTailAside copies bytes [from, end) of path into <damagedDir>/<name>.<from>.damaged
// (fsynced), then truncates path at from (fsynced). It returns the copy's path and how many
// bytes were moved. Used only on the operator's explicit request (RecoverDamaged).
func moveTailAside(path string, from int64, damagedDir string) (string, int64, error) {
	src, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", 0, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return "", 0, err
	}
	if err := os.MkdirAll(damagedDir, 0o755); err != nil {
		return "", 0, err
	}
	dst := filepath.Join(damagedDir, filepath.Base(path)+"."+strconv.FormatInt(from, 10)+"."+
		strconv.FormatInt(time.Now().UnixNano(), 36)+".damaged")
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", 0, err
	}
	n, err := io.Copy(out, io.NewSectionReader(src, from, st.Size()-from))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = osFiles{}.SyncDir(damagedDir)
	}
	if err != nil {
		return "", 0, fmt.Errorf("copying damaged bytes of %s to %s: %w", path, dst, err)
	}
	if err := src.Truncate(from); err != nil {
		return "", 0, err
	}
	if err := src.Sync(); err != nil {
		return "", 0, err
	}
	return dst, n, nil
}

// linkAside puts a hard link (or, failing that, a copy) of path into damagedDir, so that data
// the broker is about to ignore survives later segment removal.
func linkAside(path, damagedDir string) (string, error) {
	if err := os.MkdirAll(damagedDir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(damagedDir, filepath.Base(path))
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.Link(path, dst); err != nil {
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			return "", rerr
		}
		if werr := os.WriteFile(dst, data, 0o644); werr != nil {
			return "", werr
		}
	}
	return dst, osFiles{}.SyncDir(damagedDir)
}

// LinkAside is linkAside for the broker's cross-checks: it keeps a WAL segment holding
// batches recovery could not place (say, of a topic whose metadata was lost) under
// <dataDir>/damaged/wal/ before the broker starts without them.
func LinkAside(dataDir string, loc Location) (string, error) {
	return linkAside(filepath.Join(dataDir, "wal", segName(loc.Segment)), filepath.Join(dataDir, DamagedDirName, "wal"))
}

// logMovedAside reports loudly what recovery moved out of the way.
func logMovedAside(log *slog.Logger, what string, cerr *CorruptError, dst string, n int64) {
	log.Error("RECOVERY: damaged bytes moved aside; they are no longer served", "what", what,
		"file", cerr.Path, "from_byte", cerr.Offset, "bytes", n, "moved_to", dst, "reason", cerr.Reason)
}

// Clean-shutdown marker: a small file written and fsynced (with its directory) when a log is
// closed cleanly, and removed (durably) before the reopened log writes anything. While it
// exists the log ends exactly where it says, so no byte of it can be torn.
//
//	off  size  field (big-endian)
//	  0     4  magic "KLCS"
//	  4     8  segment number (0 for single-file logs)
//	 12     8  size: where the log's last intact entry ends
//	 20     4  CRC-32C of bytes 0..19
type cleanMarker struct {
	Seg  uint64
	Size int64
}

const cleanMarkerSize = 24

func encodeCleanMarker(m cleanMarker) []byte {
	b := make([]byte, cleanMarkerSize)
	copy(b, "KLCS")
	binary.BigEndian.PutUint64(b[4:], m.Seg)
	binary.BigEndian.PutUint64(b[12:], uint64(m.Size))
	binary.BigEndian.PutUint32(b[20:], crc32.Checksum(b[:20], castagnoli))
	return b
}

// decodeCleanMarker parses a marker; ok is false for anything but an intact one.
func decodeCleanMarker(b []byte) (m cleanMarker, ok bool) {
	if len(b) != cleanMarkerSize || string(b[:4]) != "KLCS" || crc32.Checksum(b[:20], castagnoli) != binary.BigEndian.Uint32(b[20:]) {
		return m, false
	}
	return cleanMarker{Seg: binary.BigEndian.Uint64(b[4:]), Size: int64(binary.BigEndian.Uint64(b[12:]))}, true
}

// writeCleanMarker durably records that the log ends cleanly at m.
func writeCleanMarker(files fileLayer, path string, m cleanMarker) error {
	f, err := files.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(encodeCleanMarker(m), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = files.SyncDir(filepath.Dir(path))
	}
	return err
}

// readCleanMarker reads the marker at path; present is false without an intact one. The
// marker stays until removeCleanMarker: a replay that refuses to start keeps it, so that the
// next attempt still knows nothing can be torn.
func readCleanMarker(log *slog.Logger, path string) (m cleanMarker, present bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	m, present = decodeCleanMarker(b)
	if !present {
		// A marker is written last during a clean shutdown; a torn one means the shutdown
		// did not finish, which is what its absence says too.
		log.Warn("storage: ignoring an unreadable clean-shutdown marker", "path", path)
	}
	return m, present, nil
}

// removeCleanMarker removes the marker durably before the log is written again: from then on
// a crash is judged by the torn-tail rules.
func removeCleanMarker(files fileLayer, path string) error {
	if err := os.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return files.SyncDir(filepath.Dir(path))
}

// WALEntryPos names where the entry holding the batch at loc starts: its segment file under
// dataDir and the byte offset of its header (for cross-check errors found above storage).
func WALEntryPos(dataDir string, loc Location) (path string, off int64) {
	return filepath.Join(dataDir, "wal", segName(loc.Segment)), loc.Offset - entryHeaderSize
}

// CloseUnclean closes a WAL or metadata log without writing its clean-shutdown marker: for a
// broker whose start failed (a refusal found damage after replay). A marker then would record
// the state recovery left, so restoring the damaged file, as the refusal advises, would be
// refused as damage after a clean shutdown. Other closers are just closed.
func CloseUnclean(c io.Closer) error {
	if u, ok := c.(interface{ closeUnclean() error }); ok {
		return u.closeUnclean()
	}
	return c.Close()
}

func (w *fileWAL) closeUnclean() error {
	w.mu.Lock()
	w.opts.noCleanMarker = true
	w.mu.Unlock()
	return w.Close()
}

func (m *fileMeta) closeUnclean() error {
	m.mu.Lock()
	m.noCleanMarker = true
	m.mu.Unlock()
	return m.Close()
}
