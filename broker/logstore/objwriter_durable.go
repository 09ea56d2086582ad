package logstore

// Durable objects in the making: the active segment of a single-copy partition (staged.go)
// is the only copy of its batches, so its temporary object must survive a crash and hold
// what was acknowledged. A DurableCreator hands out writers whose bytes SyncAt makes
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
	"sort"
	"strings"
	"syscall"
)

// DurableWriter is an ObjectWriter whose bytes can be made durable before Commit.
type DurableWriter interface {
	ObjectWriter
	// SyncAt writes p at off (off <= Size()) and makes the object's first off+len(p)
	// bytes durable: after a crash Leftovers lists the object with them. The size becomes
	// off+len(p). On error the bytes before off are as they were.
	SyncAt(p []byte, off int64) error
	// SetSize forgets the bytes from n on (n <= Size()): the next SyncAt, Write or
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

// SyncAt implements DurableWriter: the block-aligned part of p goes direct when p and off
// are aligned (the caller keeps its buffer so), its last partial block through a zeroed
// block of its own (the bytes past it in the file are overwritten by the next SyncAt and
// cut by Commit); then fdatasync.
func (w *dirWriter) SyncAt(p []byte, off int64) error {
	if err := w.d.writeFault(); err != nil {
		return fmt.Errorf("logstore: writing %s: %w", w.name, err)
	}
	if w.d.writes != nil {
		w.d.writes <- struct{}{}
		defer func() { <-w.d.writes }()
	}
	if err := w.writeDurable(p, off); err != nil {
		return fmt.Errorf("logstore: writing %s: %w", w.name, err)
	}
	// The file ends where p does (a leftover's size is what was synced): not past it with
	// the padding of a partial block, nor with bytes written before an Unstage.
	end := off + int64(len(p))
	if w.fileEnd > end {
		if err := w.f.Truncate(end); err != nil {
			return fmt.Errorf("logstore: writing %s: %w", w.name, err)
		}
	}
	w.fileEnd = end
	if err := fdatasync(w.f); err != nil {
		return fmt.Errorf("logstore: syncing %s: %w", w.name, err)
	}
	if err := w.d.syncFault(); err != nil {
		return fmt.Errorf("logstore: syncing %s: %w", w.name, err)
	}
	w.size = off + int64(len(p))
	return nil
}

func (w *dirWriter) writeDurable(p []byte, off int64) error {
	if off%dioAlign == 0 && dioAligned(p) && len(p) > 0 {
		if !w.dfTried {
			w.dfTried = true
			if df, err := os.OpenFile(w.path+w.suffix, os.O_WRONLY|oDirect, 0); err == nil {
				w.mu.Lock()
				w.df = df
				w.mu.Unlock()
			}
		}
		if w.df != nil {
			whole := len(p) &^ (dioAlign - 1)
			err := error(nil)
			if whole > 0 {
				_, err = w.df.WriteAt(p[:whole], off)
			}
			if err == nil && whole < len(p) {
				blk := alignedBytes(dioAlign)[:dioAlign]
				copy(blk, p[whole:])
				_, err = w.df.WriteAt(blk, off+int64(whole))
				w.fileEnd = max(w.fileEnd, off+int64(whole)+dioAlign)
			}
			if err == nil {
				return nil
			}
			if !errors.Is(err, syscall.EINVAL) {
				return err
			}
			w.df.Close() // refused (another alignment): buffered from now on
			w.df = nil
		}
	}
	_, err := w.f.WriteAt(p, off)
	return err
}

// SetSize implements DurableWriter.
func (w *dirWriter) SetSize(n int64) {
	if n < w.size {
		w.size = n
	}
}

// Leftovers implements DurableCreator.
func (d *DirStore) Leftovers(prefix string) ([]Object, error) {
	root := d.dir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		root = d.path(prefix[:i])
	}
	var out []Object
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		if de.IsDir() || !strings.HasSuffix(p, durableSuffix) {
			return nil
		}
		rel, err := filepath.Rel(d.dir, strings.TrimSuffix(p, durableSuffix))
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		out = append(out, Object{name, info.Size()})
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

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

// CreateDurable implements DurableCreator for the in-memory store: what SyncAt made
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

func (w *memDurable) SyncAt(p []byte, off int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if off > int64(len(w.b)) {
		return fmt.Errorf("logstore: SyncAt %d past the end %d", off, len(w.b))
	}
	w.b = append(w.b[:off], p...)
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
	var out []Object
	for name, b := range m.left {
		if strings.HasPrefix(name, prefix) {
			out = append(out, Object{name, int64(len(b))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
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
