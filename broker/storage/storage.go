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

import "errors"

// ErrClosed is returned by operations on a closed store.
var ErrClosed = errors.New("storage: closed")

// ErrNotFound is returned by ReadAt when a location no longer exists (its segment was removed).
var ErrNotFound = errors.New("storage: location not found")

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
}

// Location says where a batch lives in the WAL, so it can be read back without scanning.
type Location struct {
	Segment uint64 // segment number (monotonic)
	Offset  int64  // byte position of the batch bytes (not the entry header) in the segment
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
	// ReadAt reads the batch bytes at loc into buf (grown if needed) and returns them.
	// It may be called concurrently with Append and with other reads.
	ReadAt(loc Location, buf []byte) ([]byte, error)
	// Replay calls fn for every intact entry in order and cuts a torn tail; corruption is
	// refused with a *CorruptError naming file and byte (recovery.go). It is called once,
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
