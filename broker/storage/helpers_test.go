package storage

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testFiles wraps the OS file layer to count fsyncs and inject failures.
type testFiles struct {
	syncs    atomic.Int64
	dirSyncs atomic.Int64

	mu       sync.Mutex
	writeErr error // WriteAt writes half of p, then returns writeErr
	syncErr  error // Sync returns syncErr (after really syncing)
	truncErr error // Truncate returns truncErr without truncating
	// directErr: WriteAt on a file opened with O_DIRECT returns directErr, writing nothing
	// (a file system that takes O_DIRECT at open but not block-aligned writes).
	directErr error
	syncHook  func() // called at the start of every file Sync
}

func (fs *testFiles) set(fn func(fs *testFiles)) {
	fs.mu.Lock()
	fn(fs)
	fs.mu.Unlock()
}

func (fs *testFiles) get() (writeErr, syncErr, truncErr error, hook func()) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.writeErr, fs.syncErr, fs.truncErr, fs.syncHook
}

func (fs *testFiles) OpenFile(name string, flag int, perm os.FileMode) (writeFile, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &testFile{File: f, fs: fs, direct: oDirect != 0 && flag&oDirect != 0}, nil
}

func (fs *testFiles) SyncDir(dir string) error {
	fs.dirSyncs.Add(1)
	return osFiles{}.SyncDir(dir)
}

type testFile struct {
	*os.File
	fs     *testFiles
	direct bool
}

func (f *testFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	derr := f.fs.directErr
	f.fs.mu.Unlock()
	if f.direct && derr != nil {
		return 0, derr
	}
	if werr, _, _, _ := f.fs.get(); werr != nil {
		// Half of p, rounded down to whole blocks where that leaves any (direct I/O
		// writes whole blocks only).
		h := len(p) / 2
		if h >= dioAlign {
			h &^= dioAlign - 1
		}
		n, err := f.File.WriteAt(p[:h], off)
		if err != nil {
			return n, err
		}
		return n, werr
	}
	return f.File.WriteAt(p, off)
}

func (f *testFile) Sync() error {
	_, serr, _, hook := f.fs.get()
	if hook != nil {
		hook()
	}
	f.fs.syncs.Add(1)
	if err := f.File.Sync(); err != nil {
		return err
	}
	return serr
}

func (f *testFile) Truncate(size int64) error {
	if _, _, terr, _ := f.fs.get(); terr != nil {
		return terr
	}
	return f.File.Truncate(size)
}

// logBuffer is a slog handler target that tests can search.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, nil)), lb
}

// testBatch builds a batch whose bytes and metadata derive from i.
func testBatch(i int, size int) *Batch {
	data := make([]byte, size)
	for j := range data {
		data[j] = byte(i*31 + j*7)
	}
	b := &Batch{BaseOffset: int64(i) * 10, LastOffset: int64(i)*10 + 9, MaxTimestamp: 1_700_000_000_000 + int64(i), Data: data}
	b.TP.TopicID[0] = byte(i)
	b.TP.TopicID[15] = 0xAB
	b.TP.Partition = int32(i % 7)
	return b
}

func sameBatch(a, b *Batch) error {
	if a.TP != b.TP || a.BaseOffset != b.BaseOffset || a.LastOffset != b.LastOffset || a.MaxTimestamp != b.MaxTimestamp {
		return fmt.Errorf("metadata differs: %+v vs %+v", *a, *b)
	}
	if !bytes.Equal(a.Data, b.Data) {
		return fmt.Errorf("data differs (len %d vs %d)", len(a.Data), len(b.Data))
	}
	return nil
}

type appendResult struct {
	loc Location
	err error
}

// appendWait appends b and waits (bounded) for its callback.
func appendWait(t *testing.T, w WAL, b *Batch) (Location, error) {
	t.Helper()
	ch := make(chan appendResult, 1)
	w.Append(b, func(loc Location, err error) { ch <- appendResult{loc, err} })
	select {
	case r := <-ch:
		return r.loc, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("append callback not called within 10s")
		return Location{}, nil
	}
}

func mustAppend(t *testing.T, w WAL, b *Batch) Location {
	t.Helper()
	loc, err := appendWait(t, w, b)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return loc
}

type replayed struct {
	b   Batch
	loc Location
}

func replayAll(t *testing.T, w WAL) []replayed {
	t.Helper()
	out, err := tryReplay(w)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	return out
}

func tryReplay(w WAL) ([]replayed, error) {
	var out []replayed
	err := w.Replay(func(b *Batch, loc Location) error {
		c := *b
		c.Data = append([]byte(nil), b.Data...)
		out = append(out, replayed{c, loc})
		return nil
	})
	return out, err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
