package storage

// Faults injects errors below the file-writing layer of the WAL and the metadata logs
// (WALOptions.Faults, MetaOptions.Faults): the writers see exactly what a full or failing
// disk gives them, so tests above storage (the broker's produce, CreateTopics, OffsetCommit,
// EndTxn paths) can check what clients are answered and that the broker recovers. Not for
// production use.

import (
	"os"
	"sync"
)

// Faults is a fileLayer whose writes and fsyncs fail while an error is set. The zero value
// (or nil) injects nothing.
type Faults struct {
	mu       sync.Mutex
	writeErr error // WriteAt writes nothing and returns it (ENOSPC; truncating still works, as on a full disk)
	syncErr  error // file Sync returns it, after really syncing (EIO)
	writes   int64 // WriteAt calls refused
	syncs    int64 // Sync calls failed
}

// SetWriteErr makes every write fail with err (nil: writes work again).
func (f *Faults) SetWriteErr(err error) { f.mu.Lock(); f.writeErr = err; f.mu.Unlock() }

// SetSyncErr makes every fsync fail with err (nil: fsyncs work again).
func (f *Faults) SetSyncErr(err error) { f.mu.Lock(); f.syncErr = err; f.mu.Unlock() }

// Injected reports how many writes and fsyncs failed by injection.
func (f *Faults) Injected() (writes, syncs int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes, f.syncs
}

func (f *Faults) OpenFile(name string, flag int, perm os.FileMode) (writeFile, error) {
	file, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, f: f}, nil
}

func (f *Faults) SyncDir(dir string) error { return osFiles{}.SyncDir(dir) }

type faultFile struct {
	*os.File
	f *Faults
}

func (ff *faultFile) WriteAt(p []byte, off int64) (int, error) {
	ff.f.mu.Lock()
	err := ff.f.writeErr
	if err != nil {
		ff.f.writes++
	}
	ff.f.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return ff.File.WriteAt(p, off)
}

func (ff *faultFile) Sync() error {
	if err := ff.File.Sync(); err != nil {
		return err
	}
	ff.f.mu.Lock()
	defer ff.f.mu.Unlock()
	if ff.f.syncErr != nil {
		ff.f.syncs++
	}
	return ff.f.syncErr
}

// WriteFault returns the injected write error, counted as a refused write (nil: none), for
// a file layer outside this package (the partition segment store) that checks it before
// each write, as faultFile does.
func (f *Faults) WriteFault() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		f.writes++
	}
	return f.writeErr
}

// SyncFault is WriteFault for fsyncs: the caller syncs, then fails with it.
func (f *Faults) SyncFault() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.syncErr != nil {
		f.syncs++
	}
	return f.syncErr
}
