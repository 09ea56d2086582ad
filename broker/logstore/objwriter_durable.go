package logstore

// Durable objects in the making: the active segment of a single-copy partition (staged.go)
// is the only copy of its batches, so its temporary object must survive a crash and hold
// what was acknowledged. A DurableCreator hands out writers whose bytes SyncDurable makes
// durable before Commit; their temporary objects are kept at start-up (a DirStore names
// them name+".xtmp", which OpenDirStore leaves in place where it removes ".tmp" files) and
// listed by Leftovers, so the broker's replay reads the batches the WAL only names.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// DurableWriter is an ObjectWriter whose bytes can be made durable before Commit.
type DurableWriter interface {
	ObjectWriter
	// WriteDurable writes the pieces one after the other at off (off <= Size()); the size
	// becomes their end. On error the bytes before off are as they were.
	WriteDurable(off int64, pieces ...[]byte) error
	// SyncDurable makes the bytes written so far durable: after a crash Leftovers lists
	// the object with them. It may run while WriteDurable does (what that writes may or
	// may not be made durable).
	SyncDurable() error
	// SetSize forgets the bytes from n on (n <= Size()): the next WriteDurable, Write or
	// Commit writes over them.
	SetSize(n int64)
}

// DurableCreator is a Store whose objects in the making can be made durable.
type DurableCreator interface {
	Creator
	// CreateDurable starts writing name as Create does, durably (see DurableWriter). It
	// fails if a leftover of name exists (it holds batches a replay may still need).
	CreateDurable(name string) (DurableWriter, error)
	// Leftovers lists the durable objects in the making under prefix that a shutdown or a
	// crash left (Name as given to CreateDurable, Size as found).
	Leftovers(prefix string) ([]Object, error)
	// ReadLeftover reads n bytes at off of a leftover (short at its end).
	ReadLeftover(name string, off, n int64) ([]byte, error)
	// DropLeftover deletes a leftover (missing: not an error).
	DropLeftover(name string) error
}

// durableSuffix names a DirStore's durable objects in the making.
const durableSuffix = ".xtmp"

// CreateDurable implements DurableCreator.
func (d *DirStore) CreateDurable(name string) (DurableWriter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	p := d.path(name)
	if err := d.mkdirs(filepath.Dir(p)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p+durableSuffix, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	// The new file's directory entry must survive a crash as its data will.
	if err := syncDir(filepath.Dir(p)); err != nil {
		f.Close()
		os.Remove(p + durableSuffix)
		return nil, err
	}
	return &dirWriter{d: d, name: name, path: p, suffix: durableSuffix, f: f, dfTried: oDirect == 0}, nil
}

// WriteDurable implements DurableWriter. Where every piece starts on a block boundary of
// the file and of memory and all but the last are whole blocks (the builder's chunks are),
// they go direct in one vectored write, the last one's partial block through a zeroed block
// of its own (the bytes past it are overwritten by the next write and cut below): a direct
// write costs mostly per call, a 4 KiB one as much CPU as 200 KiB on a virtual disk.
// Otherwise they go through the page cache.
func (w *dirWriter) WriteDurable(off int64, pieces ...[]byte) error {
	if err := w.d.writeFault(); err != nil {
		return fmt.Errorf("logstore: writing %s: %w", w.name, err)
	}
	if w.d.writes != nil {
		w.d.writes <- struct{}{}
		defer func() { <-w.d.writes }()
	}
	end := off
	for _, p := range pieces {
		end += int64(len(p))
	}
	if err := w.writeDurable(off, pieces); err != nil {
		return fmt.Errorf("logstore: writing %s: %w", w.name, err)
	}
	// Past end the file may hold the zero padding of a partial block or bytes written
	// before an Unstage, up to fileEnd: Commit cuts them, and a replay reads only the
	// batches the WAL names (cutting the file at every write was a journal commit each).
	w.fileEnd = max(w.fileEnd, end)
	w.size = end
	return nil
}

// padBlocks holds the zeroed blocks that carry a direct write's partial last block.
var padBlocks = sync.Pool{New: func() any { return alignedBytes(dioAlign)[:dioAlign] }}

// writeDurable writes pieces one after the other at off: direct where it can, else
// buffered.
func (w *dirWriter) writeDurable(off int64, pieces [][]byte) error {
	direct := off%dioAlign == 0 && len(pieces) > 0
	for i, p := range pieces {
		if len(p) == 0 || !dioAligned(p) || i < len(pieces)-1 && len(p)%dioAlign != 0 {
			direct = false
		}
	}
	if direct && w.directFile() != nil {
		last := pieces[len(pieces)-1]
		whole := len(last) &^ (dioAlign - 1)
		bufs := make([][]byte, 0, len(pieces)+1)
		bufs = append(bufs, pieces[:len(pieces)-1]...)
		if whole > 0 {
			bufs = append(bufs, last[:whole])
		}
		var pad []byte
		if whole < len(last) {
			pad = padBlocks.Get().([]byte)
			clear(pad[copy(pad, last[whole:]):])
			bufs = append(bufs, pad)
		}
		err := pwritev(w.df, bufs, off)
		if pad != nil {
			padBlocks.Put(pad)
		}
		if err == nil {
			n := int64(0)
			for _, b := range bufs {
				n += int64(len(b))
			}
			w.fileEnd = max(w.fileEnd, off+n)
			return nil
		}
		if !errors.Is(err, syscall.EINVAL) {
			return err
		}
		w.df.Close() // refused (another alignment): buffered from now on
		w.df = nil
	}
	for _, p := range pieces {
		if _, err := w.f.WriteAt(p, off); err != nil {
			return err
		}
		off += int64(len(p))
	}
	return nil
}

// SyncDurable implements DurableWriter.
func (w *dirWriter) SyncDurable() error {
	if err := fdatasync(w.f); err != nil {
		return fmt.Errorf("logstore: syncing %s: %w", w.name, err)
	}
	if err := w.d.syncFault(); err != nil {
		return fmt.Errorf("logstore: syncing %s: %w", w.name, err)
	}
	return nil
}

// SetSize implements DurableWriter.
func (w *dirWriter) SetSize(n int64) {
	if n < w.size {
		w.size = n
	}
}

// Leftovers implements DurableCreator.
func (d *DirStore) Leftovers(prefix string) ([]Object, error) { return d.listFiles(prefix, true) }

// ReadLeftover implements DurableCreator.
func (d *DirStore) ReadLeftover(name string, off, n int64) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	f, err := os.Open(d.path(name) + durableSuffix)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	m, err := f.ReadAt(buf, off)
	if err == io.EOF {
		err = nil // short at the end
	}
	return buf[:m], err
}

// DropLeftover implements DurableCreator.
func (d *DirStore) DropLeftover(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	p := d.path(name) + durableSuffix
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return syncDir(filepath.Dir(p))
}

// CreateDurable implements DurableCreator for the in-memory store: what SyncDurable made
// durable stays listed by Leftovers until Commit, Abort or DropLeftover (a Log reopened
// over the same MemStore finds it, as after a crash).
func (m *MemStore) CreateDurable(name string) (DurableWriter, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.left[name]; ok {
		return nil, fmt.Errorf("logstore: %s: %w", name, fs.ErrExist)
	}
	m.left[name] = nil
	return &memDurable{memWriter: memWriter{m: m, name: name}}, nil
}

type memDurable struct{ memWriter }

func (w *memDurable) WriteDurable(off int64, pieces ...[]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if off > int64(len(w.b)) {
		return fmt.Errorf("logstore: write at %d past the end %d", off, len(w.b))
	}
	w.b = w.b[:off]
	for _, p := range pieces {
		w.b = append(w.b, p...)
	}
	return nil
}

func (w *memDurable) SyncDurable() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.m.mu.Lock()
	w.m.left[w.name] = slices.Clone(w.b)
	w.m.mu.Unlock()
	return nil
}

func (w *memDurable) SetSize(n int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n < int64(len(w.b)) {
		w.b = w.b[:n]
	}
}

func (w *memDurable) Commit(rest ...[]byte) error {
	if err := w.memWriter.Commit(rest...); err != nil {
		return err
	}
	return w.m.DropLeftover(w.name)
}

func (w *memDurable) Abort() error {
	w.memWriter.Abort()
	return w.m.DropLeftover(w.name)
}

// Leftovers implements DurableCreator.
func (m *MemStore) Leftovers(prefix string) ([]Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return listMap(m.left, prefix), nil
}

// ReadLeftover implements DurableCreator.
func (m *MemStore) ReadLeftover(name string, off, n int64) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.left[name]
	if !ok {
		return nil, fs.ErrNotExist
	}
	if off >= int64(len(b)) {
		return nil, nil
	}
	return slices.Clone(b[off:min(off+n, int64(len(b)))]), nil
}

// DropLeftover implements DurableCreator.
func (m *MemStore) DropLeftover(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.left, name)
	return nil
}
