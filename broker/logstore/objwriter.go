package logstore

// Objects written as they fill. A Log's active segment goes to its object a chunk at a time
// (segBuilder, tail.go) instead of living whole in memory until the seal: a Store that
// implements Creator hands out an ObjectWriter that appends to a temporary object, serves
// reads of what it holds, and on Commit appends the rest and makes the object durable and
// visible under its name as Put would. The object's bytes are the same either way.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// Creator is a Store that can write an object incrementally.
type Creator interface {
	// Create starts writing name; nothing is visible under name until Commit.
	Create(name string) (ObjectWriter, error)
}

// ObjectWriter appends to an object being created. Its methods are not called
// concurrently, except ReadAt (any time, from any goroutine: it fails after Close or
// Abort).
type ObjectWriter interface {
	// Write appends p. On error the object's size is unchanged (a retry writes p again).
	Write(p []byte) error
	// ReadAt reads what Write appended (len(p) bytes at off, off+len(p) <= Size()).
	ReadAt(p []byte, off int64) (int, error)
	// Size is the bytes appended so far.
	Size() int64
	// Commit appends rest and makes the object durable under its name, atomically as
	// Put: after a crash there is the old object or the whole new one. On error the
	// writer is unchanged (Commit may be retried, or Abort called). ReadAt still works
	// after it, until Close.
	Commit(rest ...[]byte) error
	// Close releases a committed writer (the Log closes it once no new reader can take
	// it: readers then read the object).
	Close()
	// Abort drops the object being written (and closes the writer).
	Abort() error
}

// errWriterClosed: a read of a writer after Close or Abort (the reader looks again).
var errWriterClosed = errors.New("logstore: object writer closed")

// Create implements Creator: the data goes to name+".tmp" (removed by OpenDirStore after a
// crash), renamed to name by Commit.
func (d *DirStore) Create(name string) (ObjectWriter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	p := d.path(name)
	if err := d.mkdirs(filepath.Dir(p)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p+tmpSuffix, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	return &dirWriter{d: d, name: name, path: p, suffix: tmpSuffix, f: f, dfTried: oDirect == 0}, nil
}

// writebackBytes: the buffered bytes of an object being written are handed to the disk
// (startWriteback) each time this many more are written, so a thousand partitions writing
// small chunks leave no gigabytes of dirty pages for the kernel to write at once later.
const writebackBytes = 256 << 10

// dirWriter writes a DirStore object through its temporary file.
type dirWriter struct {
	d          *DirStore
	name, path string
	suffix     string       // of the file being written: tmpSuffix, or durableSuffix
	mu         sync.RWMutex // ReadAt against Commit/Abort closing the files
	f, df      *os.File     // df: O_DIRECT (nil: none)
	dfTried    bool         // df was opened (or refused, or the platform has no O_DIRECT)
	size       int64
	kicked     int64 // writeback was started for the buffered bytes below this
	fileEnd    int64 // durable writers: the file's size (WriteDurable)
	closed     bool
}

func (w *dirWriter) Size() int64 { return w.size }

// directFile returns the writer's O_DIRECT descriptor, opened at the first call (nil where
// refused). A second descriptor for the aligned chunks: they are not read back soon (the
// recent bytes are in memory), and copying them into the page cache cost as much CPU as the
// WAL saved by writing direct (see direct.go). A segment written only in small chunks (a
// thousand partitions over the tail budget) never opens it: opening files was a tenth of
// the broker's CPU there.
func (w *dirWriter) directFile() *os.File {
	if !w.dfTried {
		w.dfTried = true
		if df, err := os.OpenFile(w.path+w.suffix, os.O_WRONLY|oDirect, 0); err == nil {
			w.mu.Lock()
			w.df = df
			w.mu.Unlock()
		}
	}
	return w.df
}

func (w *dirWriter) ReadAt(p []byte, off int64) (int, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return 0, errWriterClosed
	}
	n, err := w.f.ReadAt(p, off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	return n, err
}

// maxObjectWrites bounds the writes of a DirStore's ObjectWriters in flight at once: each
// blocked in the kernel (the disk lagging, writeback started) holds an OS thread, and a
// thousand partitions' background writes held 300 (tens of MB) before.
const maxObjectWrites = 8

func (w *dirWriter) Write(p []byte) error {
	if err := w.d.writeFault(); err != nil {
		return fmt.Errorf("logstore: writing %s: %w", w.name, err)
	}
	if w.d.writes != nil {
		w.d.writes <- struct{}{}
		defer func() { <-w.d.writes }()
	}
	// Only whole chunks go direct: the small ones a tail over its budget writes (tens of
	// KiB) would each wait for the device, the page cache takes them at memory speed.
	direct := len(p) >= dioMinBytes && len(p)%dioAlign == 0 && w.size%dioAlign == 0 && dioAligned(p)
	if direct && w.directFile() != nil {
		if _, err := w.df.WriteAt(p, w.size); err == nil {
			w.size += int64(len(p))
			return nil
		}
		// Refused (another alignment, say): write buffered from now on.
		w.df.Close()
		w.df = nil
	}
	if _, err := w.f.WriteAt(p, w.size); err != nil {
		return fmt.Errorf("logstore: writing %s: %w", w.name, err)
	}
	w.size += int64(len(p))
	if w.size-w.kicked >= writebackBytes {
		startWriteback(w.f, w.kicked, w.size-w.kicked)
		w.kicked = w.size
	}
	return nil
}

func (w *dirWriter) Commit(rest ...[]byte) error {
	size := w.size
	err := func() error {
		for _, p := range rest {
			if err := w.Write(p); err != nil {
				return err
			}
		}
		// A failed earlier write may have left bytes past the end.
		if err := w.f.Truncate(w.size); err != nil {
			return err
		}
		if err := w.f.Sync(); err != nil {
			return err
		}
		return w.d.syncFault()
	}()
	if err != nil {
		w.size = size
		return fmt.Errorf("logstore: committing %s: %w", w.name, err)
	}
	if err := os.Rename(w.path+w.suffix, w.path); err != nil {
		w.size = size
		return err
	}
	w.d.forget(w.name) // a reader's open copy of a replaced object
	if err := syncDir(filepath.Dir(w.path)); err != nil {
		// Not durably renamed: undo, so a retry starts from the same state.
		os.Rename(w.path, w.path+w.suffix)
		w.size = size
		return err
	}
	return nil
}

func (w *dirWriter) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	w.f.Close()
	if w.df != nil {
		w.df.Close()
	}
}

func (w *dirWriter) Abort() error {
	w.Close()
	err := os.Remove(w.path + w.suffix)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Create implements Creator for the in-memory store: the object appears on Commit.
func (m *MemStore) Create(name string) (ObjectWriter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return &memWriter{m: m, name: name}, nil
}

type memWriter struct {
	m      *MemStore
	name   string
	mu     sync.Mutex
	b      []byte
	closed bool
}

func (w *memWriter) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return int64(len(w.b))
}

func (w *memWriter) Write(p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	return nil
}

func (w *memWriter) ReadAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errWriterClosed
	}
	if off < 0 || off+int64(len(p)) > int64(len(w.b)) {
		return 0, io.EOF
	}
	return copy(p, w.b[off:]), nil
}

func (w *memWriter) Commit(rest ...[]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.b
	for _, p := range rest {
		b = append(b, p...)
	}
	return w.m.Put(w.name, b)
}

func (w *memWriter) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b, w.closed = nil, true
}

func (w *memWriter) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b, w.closed = nil, true
	return nil
}
