package storage

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// testSyncer is a Syncer for tests: it counts its calls and, while set, calls a hook first
// and returns an error.
type testSyncer struct {
	calls atomic.Int64
	mu    sync.Mutex
	err   error
	hook  func()
}

func (s *testSyncer) set(err error, hook func()) {
	s.mu.Lock()
	s.err, s.hook = err, hook
	s.mu.Unlock()
}

func (s *testSyncer) SyncExternal() error {
	s.calls.Add(1)
	s.mu.Lock()
	err, hook := s.err, s.hook
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return err
}

// extBatch is testBatch(i, size) stored as an external batch synced by s.
func extBatch(i, size int, s Syncer) *Batch {
	b := testBatch(i, size)
	b.External = s
	return b
}

// queuedCompletions is for tests: how many completions wait for the syncer's next round.
func (w *fileWAL) queuedCompletions() int {
	w.fileMu.Lock()
	defer w.fileMu.Unlock()
	n := 0
	for _, cs := range w.syncQ {
		n += len(cs)
	}
	return n
}

// await waits (bounded) for ch to be closed or to deliver, failing the test with what.
func await[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// appendAsync appends b and returns a channel that delivers its result.
func appendAsync(w WAL, b *Batch) <-chan appendResult {
	ch := make(chan appendResult, 1)
	w.Append(b, func(loc Location, err error) { ch <- appendResult{loc, err} })
	return ch
}

// checkExternalReplayed checks a replayed external entry against the batch appended: its
// metadata, no Data, ExternalLen, and CheckExternal for the right bytes only.
func checkExternalReplayed(t *testing.T, got *Batch, want *Batch) {
	t.Helper()
	meta := *want
	meta.Data = nil
	if err := sameBatch(got, &meta); err != nil {
		t.Fatal(err)
	}
	if got.ExternalLen != len(want.Data) || got.External != nil {
		t.Fatalf("replayed external entry: ExternalLen %d (want %d), External %v", got.ExternalLen, len(want.Data), got.External)
	}
	if !got.CheckExternal(want.Data) {
		t.Fatal("CheckExternal refuses the batch's bytes")
	}
	flipped := bytes.Clone(want.Data)
	flipped[len(flipped)/2] ^= 0x04
	if got.CheckExternal(flipped) {
		t.Fatal("CheckExternal accepts the bytes with one flipped bit")
	}
	if got.CheckExternal(want.Data[:len(want.Data)-1]) || got.CheckExternal(append(bytes.Clone(want.Data), 0)) {
		t.Fatal("CheckExternal accepts bytes of the wrong length")
	}
}

// testWALExternal (conformance): external entries interleaved with ordinary ones, across
// segment rotations, are reported only after their Syncer ran, are refused by ReadAt, and
// replay as metadata whose bytes CheckExternal verifies.
func testWALExternal(t *testing.T, store walStore) {
	open := store(t, 4096)
	w := open()
	replayAll(t, w)
	syncers := []*testSyncer{{}, {}}
	var want []*Batch
	var locs []Location
	for i := range 60 {
		var b *Batch
		switch i % 3 {
		case 0:
			b = testBatch(i, 300)
		case 1:
			b = extBatch(i, 200+i, syncers[i%2])
		default:
			// The caller's own CRC of the batch tail gives the same entry.
			b = extBatch(i, 500, syncers[i%2])
			b.DataCRCFrom, b.DataCRC = 21, crc32.Checksum(b.Data[21:], castagnoli)
		}
		before := int64(0)
		if b.External != nil {
			before = b.External.(*testSyncer).calls.Load()
		}
		r := await(t, fmt.Sprintf("append %d", i), appendAsync(w, b))
		if r.err != nil {
			t.Fatalf("append %d: %v", i, r.err)
		}
		if b.External != nil && b.External.(*testSyncer).calls.Load() == before {
			t.Fatalf("external append %d reported before its Syncer ran", i)
		}
		if r.loc.Size != int32(len(b.Data)) || len(locs) > 0 && !locLess(locs[len(locs)-1], r.loc) {
			t.Fatalf("append %d at %+v (after %+v), want size %d", i, r.loc, locs[len(locs)-1:], len(b.Data))
		}
		want = append(want, b)
		locs = append(locs, r.loc)
	}
	if locs[len(locs)-1].Segment < 3 {
		t.Fatalf("no segment rotations: last entry at %+v", locs[len(locs)-1])
	}
	checkReads := func() {
		t.Helper()
		for i, l := range locs {
			got, err := w.ReadAt(l, nil)
			if want[i].External != nil {
				if !errors.Is(err, ErrExternal) {
					t.Fatalf("ReadAt of external entry %d at %+v: %v, want ErrExternal", i, l, err)
				}
			} else if err != nil || !bytes.Equal(got, want[i].Data) {
				t.Fatalf("ReadAt of entry %d at %+v: %v", i, l, err)
			}
		}
	}
	checkReads()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = open()
	defer w.Close()
	got := replayAll(t, w)
	if len(got) != len(want) {
		t.Fatalf("replayed %d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].loc != locs[i] {
			t.Fatalf("entry %d: replayed at %+v, appended at %+v", i, got[i].loc, locs[i])
		}
		if want[i].External != nil {
			checkExternalReplayed(t, &got[i].b, want[i])
			continue
		}
		if err := sameBatch(&got[i].b, want[i]); err != nil || got[i].b.ExternalLen != 0 {
			t.Fatalf("entry %d: %v (ExternalLen %d)", i, err, got[i].b.ExternalLen)
		}
		if got[i].b.CheckExternal(want[i].Data) {
			t.Fatalf("CheckExternal accepts the bytes of ordinary entry %d", i)
		}
	}
	checkReads() // from the files now (no recent groups after a restart)
	// An external batch must have bytes (its length field could not be told from an
	// ordinary entry's otherwise).
	if _, err := appendWait(t, w, extBatch(99, 0, syncers[0])); err == nil {
		t.Fatal("an empty external batch was accepted")
	}
}

// One group commit calls SyncExternal once per distinct Syncer among its entries, while the
// WAL's fsync runs (each side waits for the other to have started: sequential calls would
// time out).
func TestWALExternalSyncPerRoundAndConcurrent(t *testing.T) {
	dir := t.TempDir()
	fs := &testFiles{}
	w, _ := openTestWAL(t, WALOptions{Dir: dir}, fs)
	defer w.Close()
	replayAll(t, w)
	mustAppend(t, w, testBatch(0, 100))

	a, b, c := &testSyncer{}, &testSyncer{}, &testSyncer{}
	firstEntered, release := make(chan struct{}), make(chan struct{})
	releaseAll := sync.OnceFunc(func() { close(release) })
	defer releaseAll() // if the test fails early: Close would wait for the held fsync
	fileSyncing, extEntered := make(chan struct{}), make(chan string, 3)
	var fileSyncs atomic.Int64
	var problems atomic.Value
	fs.set(func(fs *testFiles) {
		fs.syncHook = func() {
			switch fileSyncs.Add(1) {
			case 1: // the round of the first entry below: held until everything is queued
				close(firstEntered)
				<-release
			case 2: // the round of the external entries
				close(fileSyncing)
				for range 3 {
					select {
					case <-extEntered:
					case <-time.After(5 * time.Second):
						problems.Store("the WAL fsync ran without the external syncs")
						return
					}
				}
			}
		}
	})
	for _, s := range []*testSyncer{a, b, c} {
		s.set(nil, func() {
			extEntered <- "entered"
			select {
			case <-fileSyncing:
			case <-time.After(5 * time.Second):
				problems.Store("an external sync ran without the WAL fsync")
			}
		})
	}
	first := appendAsync(w, testBatch(1, 100))
	await(t, "the first round's fsync", firstEntered)
	var results []<-chan appendResult
	for i, s := range []*testSyncer{a, b, a, nil, c, b, a, nil} {
		bt := testBatch(10+i, 500)
		if s != nil {
			bt.External = s
		}
		results = append(results, appendAsync(w, bt))
	}
	waitFor(t, "every entry written and queued for one round", func() bool { return w.queuedCompletions() == len(results) })
	releaseAll()
	if r := await(t, "first append", first); r.err != nil {
		t.Fatal(r.err)
	}
	for i, ch := range results {
		if r := await(t, fmt.Sprint("append ", i), ch); r.err != nil {
			t.Fatalf("append %d: %v", i, r.err)
		}
	}
	if p := problems.Load(); p != nil {
		t.Fatal(p)
	}
	for name, s := range map[string]*testSyncer{"a": a, "b": b, "c": c} {
		if n := s.calls.Load(); n != 1 {
			t.Fatalf("syncer %s called %d times in one round, want 1", name, n)
		}
	}
	if n := fileSyncs.Load(); n != 2 {
		t.Fatalf("%d WAL fsyncs, want 2 (one per round)", n)
	}
}

// A failing SyncExternal fails its round like a failed fsync: every entry of the round and
// everything queued behind it fails with the cause (errors.Is), the segment is cut back to
// the acknowledged entries, and appends succeed again once the sync works.
func TestWALExternalSyncFailure(t *testing.T) {
	dir := t.TempDir()
	w, _ := openTestWAL(t, WALOptions{Dir: dir}, nil)
	replayAll(t, w)
	s, other := &testSyncer{}, &testSyncer{}
	want := []*Batch{testBatch(0, 1000), extBatch(1, 800, s)}
	var locs []Location
	for _, b := range want {
		locs = append(locs, mustAppend(t, w, b))
	}
	good := segEnd(t, segPath(dir, 1))
	entered, release := make(chan struct{}), make(chan struct{})
	releaseAll := sync.OnceFunc(func() { close(release) })
	defer releaseAll() // if the test fails early: Close would wait for the held sync
	var once sync.Once
	s.set(fmt.Errorf("partition segment: %w", syscall.ENOSPC), func() {
		once.Do(func() { close(entered) })
		<-release
	})
	results := []<-chan appendResult{appendAsync(w, extBatch(2, 700, s))}
	await(t, "the failing sync", entered)
	for _, b := range []*Batch{testBatch(3, 600), extBatch(4, 700, s), extBatch(5, 700, other)} {
		results = append(results, appendAsync(w, b))
	}
	waitFor(t, "the later entries written", func() bool { return w.queuedCompletions() == 3 })
	releaseAll()
	for i, ch := range results {
		r := await(t, fmt.Sprint("failed append ", i), ch)
		if !errors.Is(r.err, syscall.ENOSPC) || !strings.Contains(r.err.Error(), "external") {
			t.Fatalf("append %d: %v, want a failure naming the external sync (ENOSPC)", i, r.err)
		}
	}
	if got := segEnd(t, segPath(dir, 1)); got != good {
		t.Fatalf("segment ends at %d after the failed round, want %d", got, good)
	}
	if d, err := w.ReadAt(locs[0], nil); err != nil || !bytes.Equal(d, want[0].Data) {
		t.Fatalf("acknowledged entry unreadable: %v", err)
	}
	s.set(nil, nil)
	waitFor(t, "failure reported", func() bool { return !w.isPoisoned() })
	for _, b := range []*Batch{extBatch(6, 900, s), testBatch(7, 400)} {
		want = append(want, b)
		locs = append(locs, mustAppend(t, w, b))
	}
	if locs[2].Offset != good+entryHeaderSize {
		t.Fatalf("append after the failure at %+v, want offset %d", locs[2], good+entryHeaderSize)
	}
	w.Close()
	w, lb := openTestWAL(t, WALOptions{Dir: dir}, nil)
	defer w.Close()
	got := replayAll(t, w)
	if len(got) != len(want) || strings.Contains(lb.String(), "truncating") {
		t.Fatalf("replayed %d entries, want %d; log: %s", len(got), len(want), lb.String())
	}
	checkMixedReplay(t, got, want, locs)
}

// A failing SyncExternal in the slow path (a group that starts a new segment is written and
// synced there part by part: here every group after a segment's first, SegmentMaxAge being
// 1 ns) fails the group, and nothing of it stays in the new segment.
func TestWALExternalSyncFailureAtRotation(t *testing.T) {
	dir := t.TempDir()
	opts := WALOptions{Dir: dir, SegmentMaxAge: time.Nanosecond}
	w, _ := openTestWAL(t, opts, nil)
	replayAll(t, w)
	a := mustAppend(t, w, testBatch(0, 100))
	s := &testSyncer{}
	s.set(fmt.Errorf("partition segment: %w", syscall.EIO), nil)
	if _, err := appendWait(t, w, extBatch(1, 100, s)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("external append with a failing sync: %v, want EIO", err)
	}
	if calls := s.calls.Load(); calls != 1 {
		t.Fatalf("SyncExternal called %d times, want 1", calls)
	}
	if got := segEnd(t, segPath(dir, 2)); got != 0 {
		t.Fatalf("segment 2 holds %d bytes after the failed group, want none", got)
	}
	s.set(nil, nil)
	waitFor(t, "failure reported", func() bool { return !w.isPoisoned() })
	b := extBatch(2, 100, s)
	l := mustAppend(t, w, b)
	if l != (Location{Segment: 2, Offset: entryHeaderSize, Size: 100}) {
		t.Fatalf("append after the failure at %+v, want the start of segment 2", l)
	}
	w.Close()
	w, _ = openTestWAL(t, opts, nil)
	defer w.Close()
	got := replayAll(t, w)
	if len(got) != 2 || got[0].loc != a || got[1].loc != l {
		t.Fatalf("replayed %+v, want the entries at %+v and %+v", got, a, l)
	}
	checkExternalReplayed(t, &got[1].b, b)
}

// External entries weigh their batch bytes in the flow control: with MaxGroupBytes 8 KiB,
// 5000-byte external batches (60 bytes on disk) get a group each, the writer stops once two
// are unsynced, and MaxPendingBytes counts what the queued ones stand for.
func TestWALExternalBackPressure(t *testing.T) {
	dir := t.TempDir()
	const size, n = 5000, 7
	weight := entryHeaderSize + size
	w, _ := openTestWAL(t, WALOptions{Dir: dir, MaxGroupBytes: 8 << 10, MaxPendingBytes: 64 << 10}, nil)
	defer w.Close()
	replayAll(t, w)
	s := &testSyncer{}
	entered, release := make(chan struct{}), make(chan struct{})
	releaseAll := sync.OnceFunc(func() { close(release) })
	defer releaseAll() // before Close, if the test fails early
	var once sync.Once
	s.set(nil, func() {
		once.Do(func() { close(entered) })
		<-release
	})
	results := []<-chan appendResult{appendAsync(w, extBatch(0, size, s))}
	await(t, "the first round's external sync", entered)
	for i := 1; i < n; i++ {
		results = append(results, appendAsync(w, extBatch(i, size, s)))
	}
	// The first entry is being synced; the second is written (unsynced: 5000 + 5000 bytes
	// of batches), so the writer waits with the third, and the other four wait in a group
	// each.
	waitFor(t, "the writer to stop at two unsynced entries", func() bool {
		w.fileMu.Lock()
		written := w.curSize
		w.fileMu.Unlock()
		return written == 2*(entryHeaderSize+externalCRCSize) && w.pendingGroups() == n-3
	})
	w.mu.Lock()
	for i, g := range w.pending {
		if len(g.ents) != 1 || g.weight != weight {
			t.Errorf("pending group %d: %d entries weighing %d, want 1 of %d", i, len(g.ents), g.weight, weight)
		}
	}
	if w.pendBytes != (n-2)*weight {
		t.Errorf("pending bytes %d, want %d", w.pendBytes, (n-2)*weight)
	}
	w.mu.Unlock()
	releaseAll()
	for i, ch := range results {
		if r := await(t, fmt.Sprint("append ", i), ch); r.err != nil {
			t.Fatalf("append %d: %v", i, r.err)
		}
	}
	w.mu.Lock()
	pend := w.pendBytes
	w.mu.Unlock()
	if pend != 0 {
		t.Fatalf("pending bytes %d after every append completed", pend)
	}
}

// MaxGroupDataBytes caps a group's buffer and the queued groups' data, MaxGroupBytes their
// weight: with 64 KiB and 8 KiB, ten 5000-byte external batches (60 bytes of buffer each)
// and two 3000-byte plain ones share a group, the next plain ones get groups of two, and an
// append that would hold more than 16 KiB of data in queued groups (and the one being
// written) waits until a group is written.
func TestWALGroupDataBytes(t *testing.T) {
	const data, ext, plain = 8 << 10, 5000, 3000
	w, _ := openTestWAL(t, WALOptions{Dir: t.TempDir(), MaxGroupBytes: 64 << 10, MaxGroupDataBytes: data, MaxPendingBytes: 1 << 20}, nil)
	defer w.Close()
	replayAll(t, w)
	s := &testSyncer{}
	entered, release := make(chan struct{}), make(chan struct{})
	releaseAll := sync.OnceFunc(func() { close(release) })
	defer releaseAll()
	var once sync.Once
	s.set(nil, func() {
		once.Do(func() { close(entered) })
		<-release
	})
	// A batch weighing more than MaxGroupBytes is being synced: the writer takes the next
	// group and waits with it; everything after stays queued.
	results := []<-chan appendResult{appendAsync(w, extBatch(0, 70000, s))}
	await(t, "the first external sync", entered)
	results = append(results, appendAsync(w, testBatch(1, 100)))
	waitFor(t, "the writer to take the second group", func() bool { return w.pendingGroups() == 0 })
	for i := range 10 {
		results = append(results, appendAsync(w, extBatch(2+i, ext, s)))
	}
	for i := range 5 {
		results = append(results, appendAsync(w, testBatch(12+i, plain)))
	}
	extLen, plainLen := entryHeaderSize+externalCRCSize, entryHeaderSize+plain
	want := []struct{ ents, size, weight int }{
		{12, 10*extLen + 2*plainLen, 10*(entryHeaderSize+ext) + 2*plainLen},
		{2, 2 * plainLen, 2 * plainLen},
		{1, plainLen, plainLen},
	}
	w.mu.Lock()
	if len(w.pending) != len(want) {
		t.Errorf("%d groups queued, want %d", len(w.pending), len(want))
	}
	for i, g := range w.pending[:min(len(w.pending), len(want))] {
		if len(g.ents) != want[i].ents || len(g.data()) != want[i].size || g.weight != want[i].weight {
			t.Errorf("queued group %d: %d entries, %d bytes weighing %d; want %+v", i, len(g.ents), len(g.data()), g.weight, want[i])
		}
		if cap(g.buf) > data+2*dioAlign {
			t.Errorf("queued group %d: a buffer of %d bytes, want at most %d", i, cap(g.buf), data+2*dioAlign)
		}
	}
	// The group the writer holds counts until it is written.
	if queued := entryHeaderSize + 100 + 10*extLen + 5*plainLen; w.pendData != queued {
		t.Errorf("%d bytes of data queued, want %d", w.pendData, queued)
	}
	w.mu.Unlock()
	// One more would queue over 2 x 8 KiB of data: its Append waits.
	appended := make(chan (<-chan appendResult), 1)
	go func() { appended <- appendAsync(w, testBatch(17, plain)) }()
	select {
	case <-appended:
		t.Fatal("an append over the queued data limit returned at once")
	case <-time.After(100 * time.Millisecond):
	}
	releaseAll()
	results = append(results, await(t, "the waiting append", appended))
	for i, ch := range results {
		if r := await(t, fmt.Sprint("append ", i), ch); r.err != nil {
			t.Fatalf("append %d: %v", i, r.err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pendBytes != 0 || w.pendData != 0 {
		t.Fatalf("%d bytes weighing %d queued after every append completed", w.pendData, w.pendBytes)
	}
}

// The memory twin fails a failed external sync like the file WAL: the entry and everything
// appended behind it before the failure was reported fail and are gone; later appends
// continue where the last acknowledged entry ended.
func TestMemWALExternalSyncFailure(t *testing.T) {
	w := NewMemWAL()
	replayAll(t, w)
	a := mustAppend(t, w, testBatch(0, 100))
	s := &testSyncer{}
	entered, release := make(chan struct{}), make(chan struct{})
	releaseAll := sync.OnceFunc(func() { close(release) })
	defer releaseAll()
	var once sync.Once
	s.set(fmt.Errorf("partition segment: %w", syscall.ENOSPC), func() {
		once.Do(func() { close(entered) })
		<-release
	})
	results := []<-chan appendResult{appendAsync(w, extBatch(1, 100, s))}
	await(t, "the failing sync", entered)
	results = append(results, appendAsync(w, testBatch(2, 100)), appendAsync(w, extBatch(3, 100, s)))
	releaseAll()
	for i, ch := range results {
		if r := await(t, fmt.Sprint("append ", i), ch); !errors.Is(r.err, syscall.ENOSPC) {
			t.Fatalf("append %d: %v, want ENOSPC", i, r.err)
		}
	}
	s.set(nil, nil)
	b := extBatch(4, 100, s)
	lb := mustAppend(t, w, b)
	if lb.Offset != a.Offset+100+entryHeaderSize {
		t.Fatalf("append after the failure at %+v, want right after %+v", lb, a)
	}
	if _, err := w.ReadAt(lb, nil); !errors.Is(err, ErrExternal) {
		t.Fatalf("ReadAt of an external entry: %v", err)
	}
	w2 := w.Reopen()
	defer w2.Close()
	got := replayAll(t, w2)
	if len(got) != 2 || got[0].loc != a || got[1].loc != lb {
		t.Fatalf("replayed %+v, want the entries at %+v and %+v", got, a, lb)
	}
	checkExternalReplayed(t, &got[1].b, b)
}

// testWriter is a testSyncer that is also an ExternalWriter: WriteExternal counts its calls
// and, while failing, returns its error.
type testWriter struct {
	testSyncer
	writes  atomic.Int64
	writeMu sync.Mutex
	werr    error
}

func (s *testWriter) WriteExternal() error {
	s.writes.Add(1)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.werr
}

// The writer calls WriteExternal of a group's ExternalWriters as it writes the group (ahead
// of their SyncExternal); a failing WriteExternal fails the group as a failed write of the
// WAL would: nothing of it stays, and appends go on once it succeeds again.
func TestWALExternalWriteAhead(t *testing.T) {
	dir := t.TempDir()
	w, _ := openTestWAL(t, WALOptions{Dir: dir}, nil)
	replayAll(t, w)
	s := &testWriter{}
	mustAppend(t, w, extBatch(0, 500, s))
	if s.writes.Load() != 1 || s.calls.Load() != 1 {
		t.Fatalf("after one external append: %d writes, %d syncs; want 1 and 1", s.writes.Load(), s.calls.Load())
	}
	good := segEnd(t, segPath(dir, 1))
	s.writeMu.Lock()
	s.werr = fmt.Errorf("partition segment: %w", syscall.ENOSPC)
	s.writeMu.Unlock()
	r := await(t, "the failed append", appendAsync(w, extBatch(1, 500, s)))
	if !errors.Is(r.err, syscall.ENOSPC) {
		t.Fatalf("append with a failing WriteExternal: %v, want ENOSPC", r.err)
	}
	if got := segEnd(t, segPath(dir, 1)); got != good {
		t.Fatalf("segment ends at %d after the failed write, want %d", got, good)
	}
	s.writeMu.Lock()
	s.werr = nil
	s.writeMu.Unlock()
	waitFor(t, "failure reported", func() bool { return !w.isPoisoned() })
	mustAppend(t, w, extBatch(1, 600, s))
	w.Close()
	w, _ = openTestWAL(t, WALOptions{Dir: dir}, nil)
	defer w.Close()
	if got := replayAll(t, w); len(got) != 2 || got[1].b.ExternalLen != 600 {
		t.Fatalf("replayed %d entries, want the two that succeeded", len(got))
	}
}

// orderWriter is an ExternalWriter that logs its calls in order: 'w' per WriteExternal,
// 's' per SyncExternal.
type orderWriter struct {
	mu  sync.Mutex
	log []byte
}

func (o *orderWriter) WriteExternal() error { o.add('w'); return nil }
func (o *orderWriter) SyncExternal() error  { o.add('s'); return nil }

func (o *orderWriter) add(c byte) {
	o.mu.Lock()
	o.log = append(o.log, c)
	o.mu.Unlock()
}

func (o *orderWriter) since(n int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.log[n:])
}

// The ExternalWriter contract the single-copy Log relies on (its SyncExternal only syncs):
// an external entry is acknowledged only after a WriteExternal that came after its append
// and then a SyncExternal, on the file WAL's group path, its slow path (a group that opens a
// new segment: every append here, with SegmentMaxAge 1 ns) and the MemWAL.
func TestExternalWriteBeforeSync(t *testing.T) {
	fast, _ := openTestWAL(t, WALOptions{Dir: t.TempDir()}, nil)
	slow, _ := openTestWAL(t, WALOptions{Dir: t.TempDir(), SegmentMaxAge: time.Nanosecond}, nil)
	for name, w := range map[string]WAL{"group": fast, "new segment": slow, "mem": NewMemWAL()} {
		t.Run(name, func(t *testing.T) {
			defer w.Close()
			replayAll(t, w)
			o := &orderWriter{}
			for i := range 5 {
				n := len(o.since(0))
				mustAppend(t, w, testBatch(2*i, 100))
				mustAppend(t, w, extBatch(2*i+1, 300, o))
				if got := o.since(n); got != "ws" {
					t.Fatalf("append %d: calls %q, want a write and then a sync (\"ws\")", i, got)
				}
			}
		})
	}
}
