package storage

import "os"

// fileLayer is the file-writing layer under the WAL and the MetaLog. Production uses osFiles;
// tests inject a wrapper to count fsyncs and to simulate ENOSPC/EIO. Reads do not go through
// it (they use plain os.File.ReadAt).
type fileLayer interface {
	OpenFile(name string, flag int, perm os.FileMode) (writeFile, error)
	// SyncDir fsyncs a directory so that created, renamed or removed entries are durable.
	SyncDir(dir string) error
}

// writeFile is the part of *os.File the writers use.
type writeFile interface {
	WriteAt(p []byte, off int64) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

type osFiles struct{}

func (osFiles) OpenFile(name string, flag int, perm os.FileMode) (writeFile, error) {
	return os.OpenFile(name, flag, perm)
}

func (osFiles) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
