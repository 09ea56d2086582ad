package storage

import (
	"errors"
	"sync"
)

// MemMetaLog is the in-memory twin of the file MetaLog. Records are copied on Append and on
// Replay. Extras for tests: FailAppends simulates a full disk, Reopen simulates a restart.
type MemMetaLog struct {
	mu       sync.Mutex
	st       *memMetaStore
	failErr  error
	closed   bool
	appended bool
}

type memMetaStore struct {
	recs [][]byte
	size int64
}

var _ MetaLog = (*MemMetaLog)(nil)

// metaEntryOverhead is the per-record framing of the file MetaLog (length + CRC).
const metaEntryOverhead = 8

// NewMemMetaLog returns an empty in-memory MetaLog.
func NewMemMetaLog() *MemMetaLog { return &MemMetaLog{st: &memMetaStore{}} }

// FailAppends makes Append, AppendBatch and Compact fail with err until FailAppends(nil).
func (m *MemMetaLog) FailAppends(err error) {
	m.mu.Lock()
	m.failErr = err
	m.mu.Unlock()
}

// Reopen closes m and returns a new MemMetaLog over the same stored records.
func (m *MemMetaLog) Reopen() *MemMetaLog {
	m.Close()
	m.mu.Lock()
	defer m.mu.Unlock()
	return &MemMetaLog{st: m.st}
}

func (m *MemMetaLog) Append(rec []byte) error { return m.AppendBatch([][]byte{rec}) }

func (m *MemMetaLog) AppendBatch(recs [][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.appended = true
	if m.failErr != nil {
		return m.failErr
	}
	for _, r := range recs {
		m.st.recs = append(m.st.recs, append([]byte(nil), r...))
		m.st.size += int64(metaEntryOverhead + len(r))
	}
	return nil
}

func (m *MemMetaLog) Replay(fn func(rec []byte) error) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	if m.appended {
		m.mu.Unlock()
		return errors.New("storage: metadata log Replay after Append")
	}
	recs := m.st.recs
	m.mu.Unlock()
	for _, r := range recs {
		if err := fn(append([]byte(nil), r...)); err != nil {
			return err
		}
	}
	return nil
}

func (m *MemMetaLog) Compact(snapshot [][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.failErr != nil {
		return m.failErr
	}
	st := &memMetaStore{}
	for _, r := range snapshot {
		st.recs = append(st.recs, append([]byte(nil), r...))
		st.size += int64(metaEntryOverhead + len(r))
	}
	*m.st = *st
	return nil
}

func (m *MemMetaLog) Size() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.size
}

func (m *MemMetaLog) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}
