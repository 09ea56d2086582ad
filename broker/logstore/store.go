// Package logstore keeps each partition's history as immutable segment objects (Kafka v2
// record batches exactly as produced, followed by a sparse offset index, a time index and
// an aborted-transaction index; the format is in segment.go) in a Store: a flat namespace
// of named blobs. Retention (retention.go) and compaction (cleaner.go) are jobs on a Log
// that read and write only through the Store, so the local directory, the in-memory twin
// and an object store (S3, issue 11) hold the same bytes.
package logstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// ErrNotFound is returned (wrapped) by Get for a name that does not exist.
var ErrNotFound = errors.New("logstore: object not found")

// Object is one List entry.
type Object struct {
	Name string
	Size int64
}

// Store is a flat namespace of immutable blobs. Names are slash-separated paths of
// [A-Za-z0-9._-] elements. Put is atomic and durable when it returns: a reader (or a reopen
// after a crash) sees either the old object or the whole new one, never a part.
type Store interface {
	// Put creates or replaces name with data.
	Put(name string, data []byte) error
	// Get reads n bytes at off (n < 0: to the end). Reading past the end returns what exists.
	Get(name string, off, n int64) ([]byte, error)
	// List returns every object whose name starts with prefix, sorted by name.
	List(prefix string) ([]Object, error)
	// Delete removes name; a missing name is not an error.
	Delete(name string) error
}

func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") {
		return fmt.Errorf("logstore: bad object name %q", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == "" || el == "." || el == ".." || strings.HasSuffix(el, tmpSuffix) || strings.HasSuffix(el, durableSuffix) {
			return fmt.Errorf("logstore: bad object name %q", name)
		}
		for _, c := range el {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
			if !ok {
				return fmt.Errorf("logstore: bad object name %q", name)
			}
		}
	}
	return nil
}

// MemStore is the in-memory Store, for tests and as the reference the others must match.
type MemStore struct {
	mu   sync.Mutex
	objs map[string][]byte
	// left: the durable objects in the making (CreateDurable), as SyncDurable left them.
	left map[string][]byte
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{objs: map[string][]byte{}, left: map[string][]byte{}} }

func (m *MemStore) Put(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[name] = append([]byte(nil), data...)
	return nil
}

func (m *MemStore) Get(name string, off, n int64) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return sliceRange(b, off, n)
}

func sliceRange(b []byte, off, n int64) ([]byte, error) {
	if off < 0 {
		return nil, fmt.Errorf("logstore: negative offset %d", off)
	}
	if off >= int64(len(b)) {
		return []byte{}, nil
	}
	end := int64(len(b))
	if n >= 0 && off+n < end {
		end = off + n
	}
	return append([]byte(nil), b[off:end]...), nil
}

func (m *MemStore) List(prefix string) ([]Object, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return listMap(m.objs, prefix), nil
}

// listMap lists the entries of objs whose names start with prefix, by name.
func listMap(objs map[string][]byte, prefix string) []Object {
	var out []Object
	for k, v := range objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, Object{k, int64(len(v))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (m *MemStore) Delete(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, name)
	return nil
}

// DirStore keeps each object as a file under a directory. Put writes name+".tmp", fsyncs
// it, renames it over name and fsyncs the directory, so a crash leaves the old or the new
// object; leftover .tmp files are removed by OpenDirStore and never listed.
type DirStore struct {
	dir    string
	faults Faults
	files  *fileCache // segment files open for zero-copy reads (fdcache.go)
	// writes bounds the ObjectWriter writes in flight at once (objwriter.go).
	writes chan struct{}
}

// Faults injects write and fsync errors below a DirStore's files (tests; storage.Faults
// implements it): each returns the error to fail with, nil for none.
type Faults interface {
	WriteFault() error
	SyncFault() error
}

// SetFaults makes Put fail as a full or failing disk would: nothing is written while
// WriteFault returns an error, and a Put whose fsync SyncFault fails is undone. Call it
// before the store is used.
func (d *DirStore) SetFaults(f Faults) { d.faults = f }

func (d *DirStore) writeFault() error {
	if d.faults == nil {
		return nil
	}
	return d.faults.WriteFault()
}

func (d *DirStore) syncFault() error {
	if d.faults == nil {
		return nil
	}
	return d.faults.SyncFault()
}

const tmpSuffix = ".tmp"

// OpenDirStore opens (creating) dir and removes temporary files a crash left behind (not
// the durable ones: see objwriter_durable.go).
func OpenDirStore(dir string) (*DirStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, tmpSuffix) {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &DirStore{dir: dir, files: newFileCache(fileCacheSize), writes: make(chan struct{}, maxObjectWrites)}, nil
}

// CloseFiles closes the segment files kept open for readers (those in flight once sent);
// later reads open their own. The broker calls it as it closes.
func (d *DirStore) CloseFiles() {
	if d.files != nil {
		d.files.closeAll()
	}
}

// forget closes name's cached descriptor (fdcache.go) once no reader holds it.
func (d *DirStore) forget(name string) {
	if d.files != nil {
		d.files.forget(name)
	}
}

func (d *DirStore) path(name string) string { return filepath.Join(d.dir, filepath.FromSlash(name)) }

func (d *DirStore) Put(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	p := d.path(name)
	parent := filepath.Dir(p)
	if err := d.mkdirs(parent); err != nil {
		return err
	}
	tmp := p + tmpSuffix
	if err := d.writeFault(); err != nil {
		return fmt.Errorf("logstore: writing %s: %w", name, err)
	}
	direct, err := writeDirect(tmp, data)
	if !direct {
		var f *os.File
		if f, err = os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644); err != nil {
			return err
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = d.syncFault()
	}
	if err == nil {
		err = os.Rename(tmp, p)
		d.forget(name) // a reader's open copy of the replaced object
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(parent)
}

// mkdirs creates dir and its missing parents under d.dir, fsyncing each new directory's
// parent so the new entries survive a crash.
func (d *DirStore) mkdirs(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if dir != d.dir && parent != dir {
		if err := d.mkdirs(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (d *DirStore) Get(name string, off, n int64) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("logstore: negative offset %d", off)
	}
	f, err := os.Open(d.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if off >= size {
		return []byte{}, nil
	}
	end := size
	if n >= 0 && off+n < end {
		end = off + n
	}
	buf := make([]byte, end-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

func (d *DirStore) List(prefix string) ([]Object, error) { return d.listFiles(prefix, false) }

// listFiles lists the objects whose names start with prefix (durable false), or the durable
// objects in the making (durable true: the files named name+durableSuffix), by name.
func (d *DirStore) listFiles(prefix string, durable bool) ([]Object, error) {
	// Walk only the directory the prefix names (its part up to the last slash).
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
		if de.IsDir() {
			return nil
		}
		if durable {
			var ok bool
			if p, ok = strings.CutSuffix(p, durableSuffix); !ok {
				return nil
			}
		} else if strings.HasSuffix(p, tmpSuffix) || strings.HasSuffix(p, durableSuffix) {
			return nil
		}
		rel, err := filepath.Rel(d.dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		info, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) { // deleted while listing
			return nil
		}
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

func (d *DirStore) Delete(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	p := d.path(name)
	err := os.Remove(p)
	d.forget(name) // its descriptor closes once no send holds it: the space comes back
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// Make the removal durable: retention advances the log start first and deletes after,
	// so a resurrected segment would only be deleted again, but fsync keeps disk use honest.
	return syncDir(filepath.Dir(p))
}
