package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func openTestMeta(t *testing.T, path string, fs *testFiles) (*fileMeta, *logBuffer) {
	t.Helper()
	log, lb := newTestLogger()
	var files fileLayer = osFiles{}
	if fs != nil {
		files = fs
	}
	m, err := openMetaLog(path, files, log)
	if err != nil {
		t.Fatal(err)
	}
	// Tests that damage the file between runs stand for crashes: no clean-shutdown marker.
	m.noCleanMarker = true
	return m, lb
}

func metaReplay(t *testing.T, m MetaLog) []string {
	t.Helper()
	var out []string
	if err := m.Replay(func(rec []byte) error { out = append(out, string(rec)); return nil }); err != nil {
		t.Fatalf("replay: %v", err)
	}
	return out
}

func metaRecs(n int) []string {
	var out []string
	for i := range n {
		out = append(out, strings.Repeat(fmt.Sprint(i), 10+i*7))
	}
	return out
}

func writeMeta(t *testing.T, path string, recs []string) {
	t.Helper()
	m, _ := openTestMeta(t, path, nil)
	metaReplay(t, m)
	for _, r := range recs {
		if err := m.Append([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func sameRecs(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records %q, want %q", got, want)
	}
}

func TestMetaLogTornTailEveryPosition(t *testing.T) {
	src := filepath.Join(t.TempDir(), "meta.log")
	recs := metaRecs(5)
	writeMeta(t, src, recs)
	full, _ := os.ReadFile(src)
	lastStart := len(full) - metaEntryOverhead - len(recs[4])
	path := filepath.Join(t.TempDir(), "meta.log")
	for cut := lastStart; cut < len(full); cut++ {
		os.WriteFile(path, full[:cut], 0o644)
		m, lb := openTestMeta(t, path, nil)
		sameRecs(t, metaReplay(t, m), recs[:4])
		if got := fileSize(t, path); got != int64(lastStart) || m.Size() != int64(lastStart) {
			t.Fatalf("cut %d: file %d bytes, Size %d, want %d", cut, got, m.Size(), lastStart)
		}
		if warned := strings.Contains(lb.String(), "truncating torn metadata log tail"); warned != (cut > lastStart) {
			t.Fatalf("cut %d: warned=%v: %s", cut, warned, lb.String())
		}
		if err := m.Append([]byte(recs[4])); err != nil {
			t.Fatal(err)
		}
		m.Close()
		m, _ = openTestMeta(t, path, nil)
		sameRecs(t, metaReplay(t, m), recs)
		m.Close()
	}
}

// A flipped byte in the middle of the log (finding 1 of issue 18: it used to be taken for a
// torn tail, dropping every later record) is corruption: Replay refuses, naming the file and
// byte, and changes nothing; with RecoverDamaged the bytes from the damage on are moved
// aside and reported.
func TestMetaLogCorruptRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.log")
	recs := metaRecs(6)
	writeMeta(t, path, recs)
	data, _ := os.ReadFile(path)
	off := 0
	for _, r := range recs[:3] {
		off += metaEntryOverhead + len(r)
	}
	data[off+metaEntryOverhead+2] ^= 0x04
	os.WriteFile(path, data, 0o644)
	m, _ := openTestMeta(t, path, nil)
	err := m.Replay(func([]byte) error { return nil })
	m.Close()
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Path != path || ce.Offset != int64(off) ||
		!strings.Contains(err.Error(), fmt.Sprintf("%s at byte %d", path, off)) {
		t.Fatalf("replay: %v, want a CorruptError naming %s at byte %d", err, path, off)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatal("the log changed although replay refused")
	}

	// The operator's choice: move the damage aside and start with what precedes it.
	log, lb := newTestLogger()
	damaged := filepath.Join(t.TempDir(), "damaged")
	ml, err := OpenMetaLogWith(path, MetaOptions{RecoverDamaged: true, DamagedDir: damaged, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer ml.Close()
	sameRecs(t, metaReplay(t, ml), recs[:3])
	if fileSize(t, path) != int64(off) {
		t.Fatalf("file not cut to %d", off)
	}
	moved, _ := filepath.Glob(filepath.Join(damaged, "meta.log.*.damaged"))
	if len(moved) != 1 {
		t.Fatalf("moved files %v, want one", moved)
	}
	if got, _ := os.ReadFile(moved[0]); !bytes.Equal(got, data[off:]) {
		t.Fatal("the moved-aside bytes differ from the damaged range")
	}
	if !strings.Contains(lb.String(), "level=ERROR") || !strings.Contains(lb.String(), fmt.Sprintf("from_byte=%d", off)) {
		t.Fatalf("recovery not logged at ERROR with the range: %s", lb.String())
	}
}

// After a clean shutdown nothing can be torn: even a damaged last record is corruption, and
// so is a file that ends anywhere but where the marker says.
func TestMetaLogCleanShutdownMarker(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.log")
	ml, err := OpenMetaLog(path)
	if err != nil {
		t.Fatal(err)
	}
	metaReplay(t, ml)
	recs := metaRecs(4)
	for _, r := range recs {
		if err := ml.Append([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ml.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	// Cut into the last record: after a crash a torn tail, after a clean shutdown damage.
	os.WriteFile(path, data[:len(data)-3], 0o644)
	ml, _ = OpenMetaLog(path)
	err = ml.Replay(func([]byte) error { return nil })
	ml.Close()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "shut down cleanly") {
		t.Fatalf("replay after a clean shutdown: %v, want ErrCorrupt", err)
	}
	// Restored, it replays whole; the marker is gone once the log is open for writing, so
	// a crash from then on is judged by the torn-tail rules again.
	os.WriteFile(path, data, 0o644)
	ml, _ = OpenMetaLog(path)
	sameRecs(t, metaReplay(t, ml), recs)
	if _, err := os.Stat(path + ".clean"); !os.IsNotExist(err) {
		t.Fatalf("clean marker still there after replay: %v", err)
	}
	ml.Close()
}

func TestMetaLogConcurrentAppendsShareFsync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.log")
	fs := &testFiles{}
	release := make(chan struct{})
	var once sync.Once
	fs.syncHook = func() { once.Do(func() { <-release }) }
	m, _ := openTestMeta(t, path, fs)
	defer m.Close()
	metaReplay(t, m)
	before := fs.syncs.Load()
	var wg sync.WaitGroup
	const n = 9
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Append(fmt.Appendf(nil, "rec %d", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	waitFor(t, "all records written", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.written == n
	})
	close(release)
	wg.Wait()
	// The first fsync (blocked) covers at least one record, the second all the others.
	if got := fs.syncs.Load() - before; got > 2 {
		t.Fatalf("%d fsyncs for %d concurrent appends, want at most 2", got, n)
	}
}

func TestMetaLogWriteErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.log")
	fs := &testFiles{}
	m, _ := openTestMeta(t, path, fs)
	metaReplay(t, m)
	if err := m.Append([]byte("one")); err != nil {
		t.Fatal(err)
	}
	good := fileSize(t, path)
	fs.set(func(fs *testFiles) { fs.writeErr = syscall.ENOSPC })
	if err := m.AppendBatch([][]byte{[]byte("two"), bytes.Repeat([]byte("x"), 5000)}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("append on full disk: %v", err)
	}
	if fileSize(t, path) != good || m.Size() != good {
		t.Fatal("failed write left bytes behind")
	}
	fs.set(func(fs *testFiles) { fs.writeErr = nil })
	if err := m.Append([]byte("three")); err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
	// A failed fsync refuses the write and cuts it; once fsyncs work again, so do writes,
	// after the last durable record.
	fs.set(func(fs *testFiles) { fs.syncErr = syscall.EIO })
	if err := m.Append([]byte("four")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with failing fsync: %v", err)
	}
	if fileSize(t, path) != m.Size() {
		t.Fatalf("file %d bytes, log %d", fileSize(t, path), m.Size())
	}
	fs.set(func(fs *testFiles) { fs.syncErr = nil })
	if err := m.Append([]byte("five")); err != nil {
		t.Fatalf("append after the fsync error cleared: %v", err)
	}
	m.Close()
	m, _ = openTestMeta(t, path, nil)
	defer m.Close()
	// "four" was cut (never acknowledged); "two" never written.
	if got := metaReplay(t, m); len(got) != 3 || got[0] != "one" || got[1] != "three" || got[2] != "five" {
		t.Fatalf("records after reopen: %q", got)
	}
}

func TestMetaLogCompactCrash(t *testing.T) {
	t.Run("leftover temp file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "meta.log")
		writeMeta(t, path, metaRecs(4))
		os.WriteFile(path+".compact", []byte("half a snapshot"), 0o644)
		m, lb := openTestMeta(t, path, nil)
		defer m.Close()
		sameRecs(t, metaReplay(t, m), metaRecs(4))
		if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("leftover compaction file still there: %v", err)
		}
		if !strings.Contains(lb.String(), "unfinished metadata log compaction") {
			t.Fatalf("no warning: %s", lb.String())
		}
	})
	t.Run("failure while writing snapshot", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "meta.log")
		writeMeta(t, path, metaRecs(4))
		fs := &testFiles{}
		m, _ := openTestMeta(t, path, fs)
		sameRecs(t, metaReplay(t, m), metaRecs(4))
		fs.set(func(fs *testFiles) { fs.writeErr = syscall.ENOSPC })
		if err := m.Compact([][]byte{[]byte("snapshot")}); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("compact on full disk: %v", err)
		}
		if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("failed compaction left its temp file")
		}
		fs.set(func(fs *testFiles) { fs.writeErr = nil })
		if err := m.Append([]byte("after")); err != nil {
			t.Fatal(err)
		}
		m.Close()
		m, _ = openTestMeta(t, path, nil)
		defer m.Close()
		sameRecs(t, metaReplay(t, m), append(metaRecs(4), "after"))
	})
	t.Run("crash after compact", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "meta.log")
		writeMeta(t, path, metaRecs(4))
		fs := &testFiles{}
		m, _ := openTestMeta(t, path, fs)
		defer m.Close()
		metaReplay(t, m)
		dirSyncs, syncs := fs.dirSyncs.Load(), fs.syncs.Load()
		if err := m.Compact([][]byte{[]byte("s1"), []byte("s2")}); err != nil {
			t.Fatal(err)
		}
		if fs.dirSyncs.Load() != dirSyncs+1 || fs.syncs.Load() != syncs+1 {
			t.Fatalf("compact did %d file and %d directory fsyncs, want 1 and 1",
				fs.syncs.Load()-syncs, fs.dirSyncs.Load()-dirSyncs)
		}
		if err := m.Append([]byte("a1")); err != nil {
			t.Fatal(err)
		}
		// Without Close (as after SIGKILL), the file holds the snapshot and the append.
		data, _ := os.ReadFile(path)
		crash := filepath.Join(t.TempDir(), "meta.log")
		os.WriteFile(crash, data, 0o644)
		m2, _ := openTestMeta(t, crash, nil)
		defer m2.Close()
		sameRecs(t, metaReplay(t, m2), []string{"s1", "s2", "a1"})
	})
}

func TestMetaLogReplayAfterAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.log")
	writeMeta(t, path, metaRecs(2))
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0, 0, 0, 9, 1}) // torn record header
	f.Close()
	m, _ := openTestMeta(t, path, nil)
	if err := m.Append([]byte("next")); err != nil {
		t.Fatal(err)
	}
	if err := m.Replay(func([]byte) error { return nil }); err == nil {
		t.Fatal("Replay after Append succeeded")
	}
	m.Close()
	m, _ = openTestMeta(t, path, nil)
	defer m.Close()
	sameRecs(t, metaReplay(t, m), append(metaRecs(2), "next"))
}

func FuzzMetaReplay(f *testing.F) {
	var valid []byte
	for _, r := range metaRecs(3) {
		valid = appendMetaRecord(valid, []byte(r))
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4, 5})
	flipped := append([]byte(nil), valid...)
	flipped[10] ^= 1 // a bad first record, intact ones after it
	f.Add(flipped)
	f.Fuzz(func(t *testing.T, data []byte) {
		pos, count := 0, 0
		good, bad, err := decodeMetaRecords(data, func(rec []byte) error {
			count++
			enc := appendMetaRecord(nil, rec)
			if pos+len(enc) > len(data) || !bytes.Equal(data[pos:pos+len(enc)], enc) {
				t.Fatalf("record at %d does not re-encode to the input bytes (CRC would not check)", pos)
			}
			pos += len(enc)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if good != pos || good > len(data) || (bad == nil) != (good == len(data)) {
			t.Fatalf("good %d, records end %d, len %d, bad %v", good, pos, len(data), bad)
		}
		// The recovery rule: bytes after a bad record are cut only if no intact record
		// follows it (the torn last write), and never after a clean shutdown.
		intactAfter := bad != nil && metaHasIntactRecord(data, good+1)
		cerr := judgeMetaLog("meta.log", data, good, bad, false, cleanMarker{})
		if (cerr != nil) != intactAfter || cerr != nil && cerr.Offset != int64(good) {
			t.Fatalf("bad %v at %d, intact record after: %v; judged %v", bad, good, intactAfter, cerr)
		}
		cerr = judgeMetaLog("meta.log", data, good, bad, true, cleanMarker{Size: int64(len(data))})
		if (cerr != nil) != (bad != nil) {
			t.Fatalf("after a clean shutdown: bad %v, judged %v", bad, cerr)
		}
		if fuzzing() {
			return
		}
		// The file path agrees: replay yields the same records and truncates to good.
		path := filepath.Join(t.TempDir(), "meta.log")
		os.WriteFile(path, data, 0o644)
		m, _ := openTestMeta(t, path, nil)
		defer m.Close()
		n := 0
		err = m.Replay(func([]byte) error { n++; return nil })
		// Never a silent cut of bytes that an intact record follows: that is corruption.
		if bad != nil && metaHasIntactRecord(data, good+1) {
			if !errors.Is(err, ErrCorrupt) || fileSize(t, path) != int64(len(data)) {
				t.Fatalf("bad record at %d followed by an intact one: replay %v, file %d bytes", good, err, fileSize(t, path))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if n != count || fileSize(t, path) != int64(good) || m.Size() != int64(good) {
			t.Fatalf("file %d bytes after replay, want %d", fileSize(t, path), good)
		}
	})
}
