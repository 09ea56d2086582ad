package storage

import (
	"log/slog"
	"time"
)

// Defaults for WALOptions.
const (
	DefaultSegmentBytes  = 256 << 20
	DefaultMaxGroupBytes = 4 << 20
	// DefaultMaxGroupDataBytes: see WALOptions.MaxGroupDataBytes.
	DefaultMaxGroupDataBytes = 2 << 20
	DefaultCacheBytes        = 32 << 20
	// DefaultPreallocBytes: see WALOptions.PreallocBytes.
	DefaultPreallocBytes = 256 << 10
)

// WALOptions configures OpenWAL (and NewMemWALWithOptions, which uses only SegmentBytes).
type WALOptions struct {
	// Dir is the data directory; segments live in Dir/wal/%020d.wal.
	Dir string
	// SegmentBytes is the size at which a new segment is started (default 256 MiB). A segment
	// only exceeds it when a single entry is larger than SegmentBytes.
	SegmentBytes int64
	// SegmentMaxAge, when positive, also starts a new segment once the current one has been
	// open this long and an entry arrives: under a slow steady load a size-only rotation
	// would keep one segment (all it holds, drained or not) for hours, and a WAL segment can
	// only be deleted once rotated and drained (default 0: by size only; klite uses 30s).
	SegmentMaxAge time.Duration
	// MaxGroupBytes caps the weight of one group commit: the bytes it writes, plus the batch
	// bytes of its external entries, which it makes durable too (default 4 MiB: 4 MiB groups
	// keep a 500 MB/s load at ~125 fsyncs/s). Its buffer is capped lower, by
	// MaxGroupDataBytes. A single entry larger than this is written as a group of its own. An
	// external entry (Batch.External) counts with its batch bytes here and in
	// MaxPendingBytes.
	MaxGroupBytes int
	// MaxPendingBytes bounds the bytes queued but not yet written; Append blocks while it is
	// exceeded (default 2 x MaxGroupBytes). Callbacks run on a separate goroutine from the
	// writer, so a blocked Append never waits on a callback.
	MaxPendingBytes int
	// MaxGroupDataBytes caps the bytes a group holds in its buffer (the entries as written:
	// batch bytes, or an external entry's 60), below MaxGroupBytes, which caps their weight
	// (default 2 MiB, at most MaxGroupBytes). Queued groups hold at most twice this. An
	// external entry weighs its batch but takes 60 bytes of buffer, so single-copy
	// partitions still commit up to MaxGroupBytes of batches per fsync, while batches
	// copied into the WAL (many small partitions) fill buffers of this size: measured with
	// 1,000 partitions, 4 MiB buffers meant ~12 MB of group buffers and 15 MB more peak RSS
	// for no more throughput; 2 MiB groups for single-copy partitions cost a fifth of their
	// throughput.
	MaxGroupDataBytes int
	// CacheBytes is how much of the most recently written WAL data stays cached for
	// readers (default 32 MiB). With direct I/O the WAL keeps its last written groups in
	// memory up to this size (0 or negative: none) and lets them go after a second idle.
	// Writing buffered it is what is left in the OS page cache: older data is dropped from
	// the cache once it is fsynced, so reading it back goes to the disk (negative: never
	// drop). Recycling page-cache pages this way makes buffered writes cheaper (on a
	// virtual machine, populating fresh pages can cost several times more CPU than the copy
	// itself) and keeps the WAL's cache footprint bounded. Durability is unaffected: only
	// clean, fsynced pages are dropped.
	CacheBytes int64
	// PreallocBytes, when positive: a commit of less than a quarter of this that grows the
	// current segment writes this many zeros past its entries (direct I/O only, see
	// wal_prealloc.go), so the commits after it overwrite blocks the file already has
	// instead of growing it, which makes each fsync write metadata too. Rounded up to a
	// block. Default 0: none (klite uses DefaultPreallocBytes).
	PreallocBytes int64
	// BufferedIO makes the WAL write through the OS page cache even where the file system
	// supports direct I/O (O_DIRECT), which it uses by default (see direct.go).
	BufferedIO bool
	// OnIdle, if set, is called (on a goroutine of its own) when the WAL has been idle for a
	// second and has let its commit buffers go: the moment for a process to hand memory
	// back to the OS.
	OnIdle func()
	// OnSync, if set, is called after each successful fsync of the syncer (a group commit)
	// with the bytes and entries it made durable and how long the fsync took. It runs on the
	// syncer with the file lock held, so it must be cheap (metrics counters).
	OnSync func(bytes int64, entries int, took time.Duration)
	// RecoverDamaged: where Replay finds corruption (see wal_recovery.go) it moves the
	// damaged bytes into DamagedDir, logs at ERROR what it moved, and goes on, instead of
	// refusing. For an operator who chooses that loss knowingly (klite --recover-damaged).
	RecoverDamaged bool
	// DamagedDir is where RecoverDamaged moves bytes (default Dir/damaged/wal).
	DamagedDir string
	// Logger receives warnings (torn-tail truncation). Default slog.Default().
	Logger *slog.Logger
	// Faults, if set, injects write and fsync errors below the WAL's files (tests).
	Faults *Faults

	// noCleanMarker: Close writes no clean-shutdown marker (tests standing for crashes).
	noCleanMarker bool
	// files is the injection point for the file-writing layer (tests only); nil means the OS.
	files fileLayer
}

func (o *WALOptions) withDefaults() WALOptions {
	r := *o
	if r.SegmentBytes <= 0 {
		r.SegmentBytes = DefaultSegmentBytes
	}
	if r.MaxGroupBytes <= 0 {
		r.MaxGroupBytes = DefaultMaxGroupBytes
	}
	if r.MaxPendingBytes <= 0 {
		r.MaxPendingBytes = 2 * r.MaxGroupBytes
	}
	if r.MaxPendingBytes < r.MaxGroupBytes {
		r.MaxPendingBytes = r.MaxGroupBytes
	}
	if r.MaxGroupDataBytes <= 0 {
		r.MaxGroupDataBytes = DefaultMaxGroupDataBytes
	}
	r.MaxGroupDataBytes = min(r.MaxGroupDataBytes, r.MaxGroupBytes)
	if r.CacheBytes == 0 {
		r.CacheBytes = DefaultCacheBytes
	}
	if r.PreallocBytes > 0 {
		r.PreallocBytes = alignUp64(r.PreallocBytes)
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.files == nil && r.Faults != nil {
		r.files = r.Faults
	}
	if r.files == nil {
		r.files = osFiles{}
	}
	return r
}
