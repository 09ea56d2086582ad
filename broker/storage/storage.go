// Package storage holds klite's durable state: the write-ahead log of record batches (WAL) and
// the metadata log (topics, configs, committed offsets, producer ID blocks, credentials).
//
// Both sit behind small interfaces so that the broker's state layer never touches files
// directly, unit tests can use the in-memory twins, and an S3 tier can later sit under the WAL
// (reading batches whose segments were uploaded and removed locally).
//
// The broker's state layer owns offsets and high watermarks; every acknowledged batch also
// drains into its partition's segment store (broker/logstore), which serves reads, so the WAL
// is the durability buffer: segments whose batches all live there are removed
// (RemoveSegmentsBefore) and replay starts at the first one still needed.
package storage

import (
	"encoding/binary"
	"errors"
)

// ErrClosed is returned by operations on a closed store.
var ErrClosed = errors.New("storage: closed")

// ErrNotFound is returned by ReadAt when a location no longer exists (its segment was removed).
var ErrNotFound = errors.New("storage: location not found")

// ErrExternal is returned by ReadAt for the location of an external batch (Batch.External):
// the WAL holds only its header; the bytes are in the partition's own segment.
var ErrExternal = errors.New("storage: batch data lives in its partition's segment")

// ErrCutReplay, returned by Replay's callback for an external entry whose bytes its
// partition segment does not hold, ends the WAL before that entry: the entry's sync never
// completed, so neither it nor anything after it was acknowledged. Only the last segment
// of a WAL not shut down cleanly may end so; anywhere else Replay reports corruption.
var ErrCutReplay = errors.New("storage: cut the WAL before this entry")

// Syncer makes durable the bytes of external batches (Batch.External) that its owner wrote
// elsewhere, typically by fsyncing a partition's segment file.
//
// The WAL calls SyncExternal from its own goroutine, once per group commit for every distinct
// Syncer (compared with ==, so use a pointer type) among the entries of that commit, while it
// fsyncs its own file, and acknowledges those entries only when both succeeded. SyncExternal
// must not wait for anything held while Append is called (a lock taken around Append: Append
// may block on back-pressure until this very commit completes), nor call into the WAL.
type Syncer interface {
	SyncExternal() error
}

// ExternalWriter is a Syncer that writes its external bytes ahead of the sync: the WAL
// calls WriteExternal after the entries of a group were appended and before any
// SyncExternal that covers them (the file WAL's writer as it writes the group, so that the
// bytes of one commit are written while the previous commit is being synced), so its
// SyncExternal need only make durable what WriteExternal wrote. A failed WriteExternal
// fails the group as a failed write of the WAL would. The rules for SyncExternal apply;
// WriteExternal may run while SyncExternal of an earlier commit does.
type ExternalWriter interface {
	Syncer
	WriteExternal() error
}

// TopicPartition names a partition by the topic's stable ID (it survives renames and lets a
// deleted-and-recreated topic be told apart) and the partition index.
type TopicPartition struct {
	TopicID   [16]byte
	Partition int32
}

// Batch is one Kafka RecordBatch (message format v2) whose offsets the broker has assigned.
// Data is the complete batch as it will be served to consumers: base offset set, CRC valid.
type Batch struct {
	TP         TopicPartition
	BaseOffset int64
	// LastOffset is BaseOffset + LastOffsetDelta.
	LastOffset int64
	// MaxTimestamp is the batch's max timestamp as stored (after LogAppendTime rewriting).
	MaxTimestamp int64
	Data         []byte
	// DataCRCFrom, when above 0, says DataCRC is the CRC-32C of Data[DataCRCFrom:], already
	// computed and checked by the caller (a Kafka batch's own CRC covers Data[21:]). Append
	// then checksums only the first DataCRCFrom bytes and combines the two, instead of
	// reading the whole batch a second time. The stored entry is the same either way.
	DataCRCFrom int
	DataCRC     uint32
	// External, when set on Append, says the caller has written Data into the partition's own
	// segment and makes it durable with External.SyncExternal, which the WAL calls before it
	// acknowledges the entry. The WAL then stores only the entry header (length, offsets,
	// and the CRC over header and Data): Data is read during Append, for the CRC, not kept.
	// Data must not be empty. Not set on replayed batches.
	External Syncer
	// ExternalLen is set on replayed batches: for an entry appended with External, the length
	// of its batch bytes (Data is then nil: CheckExternal verifies the bytes found in the
	// partition's segment); 0 for an ordinary entry.
	ExternalLen int
	// extCRC is the stored CRC of a replayed external entry (over its header fields and
	// batch bytes), for CheckExternal.
	extCRC uint32
}

// CheckExternal reports whether data is the batch a replayed external entry (ExternalLen > 0)
// was appended with: its length is ExternalLen and the CRC over the entry's header fields and
// data matches the one the WAL stored. It is false for any other batch.
func (b *Batch) CheckExternal(data []byte) bool {
	if b.ExternalLen <= 0 || len(data) != b.ExternalLen {
		return false
	}
	c := Batch{TP: b.TP, BaseOffset: b.BaseOffset, LastOffset: b.LastOffset, MaxTimestamp: b.MaxTimestamp, Data: data}
	var h [entryHeaderSize]byte
	putEntryHeader(h[:], &c, entryFlagExternal)
	return binary.BigEndian.Uint32(h[0:]) == b.extCRC
}

// Location says where a batch lives in the WAL, so it can be read back without scanning.
type Location struct {
	Segment uint64 // segment number (monotonic)
	Offset  int64  // byte position after the entry header (of the batch bytes, if stored) in the segment
	Size    int32  // length of the batch bytes
}

// WAL is the append-only, checksummed, fsynced log of record batches for every partition.
//
// Append is asynchronous so that many produce requests share one fsync (group commit): the
// callback fires once the entry is on stable storage (or failed). Callbacks for entries fire in
// append order. A failed write (disk full, I/O error) fails that entry and every entry after it
// in the same commit group; nothing already acknowledged is lost or altered.
type WAL interface {
	// Append queues b. loc is where it will be readable once done reports nil.
	// done must not block; it may be called from the WAL's own goroutine.
	Append(b *Batch, done func(loc Location, err error))
	// ReadAt reads the batch bytes at loc into buf (grown if needed) and returns them
	// (ErrExternal for an external batch: the WAL does not hold its bytes).
	// It may be called concurrently with Append and with other reads.
	ReadAt(loc Location, buf []byte) ([]byte, error)
	// Replay calls fn for every intact entry in order and cuts a torn tail; corruption is
	// refused with a *CorruptError naming file and byte (recovery.go). An external entry
	// comes with Data nil and ExternalLen set (see Batch.CheckExternal). It is called once,
	// before the first Append.
	Replay(fn func(b *Batch, loc Location) error) error
	// RemoveSegmentsBefore deletes whole segments numbered below seg (retention, DeleteRecords).
	RemoveSegmentsBefore(seg uint64) error
	// Close flushes, fsyncs and closes. Pending appends complete before Close returns.
	Close() error
}

// MetaLog is the durable log of metadata records. The broker encodes records itself (they are
// opaque bytes here); replaying the log in order rebuilds the metadata state. Append returns
// once the record is fsynced. Compact atomically replaces the whole log with a snapshot (the
// minimal records that rebuild the current state).
type MetaLog interface {
	Append(rec []byte) error
	// AppendBatch appends several records with one fsync.
	AppendBatch(recs [][]byte) error
	Replay(fn func(rec []byte) error) error
	Compact(snapshot [][]byte) error
	// Size is the current size in bytes, so the owner can decide when to compact.
	Size() int64
	Close() error
}
