package logstore

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// failingStore fails every call while down is set.
type failingStore struct {
	Store
	down bool
}

var errDown = errors.New("remote down")

func (f *failingStore) Put(name string, data []byte) error {
	if f.down {
		return errDown
	}
	return f.Store.Put(name, data)
}

func (f *failingStore) Get(name string, off, n int64) ([]byte, error) {
	if f.down {
		return nil, errDown
	}
	return f.Store.Get(name, off, n)
}

func (f *failingStore) List(prefix string) ([]Object, error) {
	if f.down {
		return nil, errDown
	}
	return f.Store.List(prefix)
}

func (f *failingStore) Delete(name string) error {
	if f.down {
		return errDown
	}
	return f.Store.Delete(name)
}

func tiered(t *testing.T) (*TieredStore, Store, *failingStore) {
	t.Helper()
	local, err := OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	remote := &failingStore{Store: NewMemStore()}
	cache, err := NewCachedStore(remote, t.TempDir(), 256, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := NewTieredStore(local, remote, cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ts, local, remote
}

// A Log on a tiered store: sealed segments stay local and count as unconfirmed until
// Sync puts them in S3; Evict then removes only confirmed local copies, oldest first, and
// every record still reads back (from S3); a Log reopened over the same stores lists
// both sides.
func TestTieredStoreSyncEvictReadThrough(t *testing.T) {
	ts, local, remote := tiered(t)
	c := &clock{}
	l, err := Open(ts, "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	want := appendRecs(t, l, 60, 1000)
	if err := l.Seal(); err != nil {
		t.Fatal(err)
	}
	st := ts.Stats()
	if st.LocalBytes == 0 || st.UnconfirmedBytes != st.LocalBytes {
		t.Fatalf("before Sync: %+v", st)
	}
	if got := ts.Pending(); !reflect.DeepEqual(got, []string{"p/"}) {
		t.Fatalf("Pending = %v", got)
	}
	// Nothing confirmed: nothing evicted, whatever the budget.
	if n, _, _ := ts.Evict(0); n != 0 {
		t.Fatalf("evicted %d unconfirmed segments", n)
	}
	remote.down = true
	if _, err := ts.Sync("p/"); !errors.Is(err, errDown) {
		t.Fatalf("Sync with the remote down: %v", err)
	}
	if n, _, _ := ts.Evict(0); n != 0 || ts.Stats().UnconfirmedBytes != st.LocalBytes {
		t.Fatalf("after a failed Sync: evicted %d, %+v", n, ts.Stats())
	}
	remote.down = false
	if _, err := ts.Sync("p/"); err != nil {
		t.Fatal(err)
	}
	if st := ts.Stats(); st.UnconfirmedBytes != 0 || len(ts.Pending()) != 0 || len(ts.Lag()) != 0 {
		t.Fatalf("after Sync: %+v pending %v", st, ts.Pending())
	}
	segs := l.Segments()
	half := st.LocalBytes / 2
	n, freed, err := ts.Evict(half)
	if err != nil || n == 0 || ts.Stats().LocalBytes > half || ts.Stats().LocalBytes+freed != st.LocalBytes {
		t.Fatalf("Evict(%d) = %d, %d, %v; now %+v", half, n, freed, err, ts.Stats())
	}
	// Oldest first: the first segment is gone locally, the last is still there.
	if _, err := local.Get(segs[0].Name, 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oldest segment still local: %v", err)
	}
	if _, err := local.Get(segs[len(segs)-1].Name, 0, 1); err != nil {
		t.Fatalf("newest segment evicted: %v", err)
	}
	if got := readAll(t, l); !reflect.DeepEqual(got, want) {
		t.Fatal("records differ after eviction")
	}
	l2, err := Open(ts, "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, l2); !reflect.DeepEqual(got, want) {
		t.Fatal("records differ in a log reopened over both sides")
	}

	// Retention deletes on both sides, S3 first: a delete that S3 refuses keeps the local
	// copy (and the log start, checkpointed, says what Open removes later).
	remote.down = true
	if err := ts.Delete(segs[len(segs)-1].Name); !errors.Is(err, errDown) {
		t.Fatalf("Delete with S3 down: %v", err)
	}
	if _, err := local.Get(segs[len(segs)-1].Name, 0, 1); err != nil {
		t.Fatalf("local copy gone though S3 refused the delete: %v", err)
	}
	remote.down = false
	if err := l2.DeleteRecordsBefore(segs[len(segs)-1].Next); err != nil {
		t.Fatal(err)
	}
	objs, _ := remote.List("p/")
	for _, o := range objs {
		if strings.HasSuffix(o.Name, segSuffix) {
			t.Fatalf("%s still in S3 after DeleteRecords past it", o.Name)
		}
	}
	if st := ts.Stats(); st.LocalBytes != 0 {
		t.Fatalf("local segments after DeleteRecords: %+v", st)
	}
}

// An upload of an object deleted after the uploader read it does not put it back in S3.
func TestTieredStoreUploadAfterDeleteDoesNotResurrect(t *testing.T) {
	ts, local, remote := tiered(t)
	if err := local.Put("p/x.bin", []byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := local.Delete("p/x.bin"); err != nil {
		t.Fatal(err)
	}
	if err := ts.guard.Put("p/x.bin", []byte("data")); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Get("p/x.bin", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted object uploaded: %v", err)
	}
}

// listCounter counts List calls.
type listCounter struct {
	Store
	lists int
}

func (l *listCounter) List(prefix string) ([]Object, error) {
	l.lists++
	return l.Store.List(prefix)
}

// Opening many partitions at start-up costs one remote listing, not one per partition;
// after EndStartup each open lists its own prefix (and sees objects put since).
func TestTieredStoreStartupListsOnce(t *testing.T) {
	remote := &listCounter{Store: NewMemStore()}
	for p := 0; p < 20; p++ {
		l, err := Open(remote, fmt.Sprintf("t/%d/", p), smallConfig(), smallOpts(&clock{}))
		if err != nil {
			t.Fatal(err)
		}
		appendRecs(t, l, 5, 1000)
		if err := l.Seal(); err != nil {
			t.Fatal(err)
		}
	}
	local, err := OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cache, err := NewCachedStore(remote, t.TempDir(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := NewTieredStore(local, remote, cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	remote.lists = 0
	for p := 0; p < 20; p++ {
		l, err := Open(ts, fmt.Sprintf("t/%d/", p), smallConfig(), smallOpts(&clock{}))
		if err != nil {
			t.Fatal(err)
		}
		if l.NextOffset() != 15 || len(l.Segments()) == 0 {
			t.Fatalf("partition %d opened from S3 with next offset %d", p, l.NextOffset())
		}
	}
	if remote.lists != 1 {
		t.Fatalf("%d remote listings to open 20 partitions, want 1", remote.lists)
	}
	ts.EndStartup()
	l, err := Open(remote, "t/99/", smallConfig(), smallOpts(&clock{}))
	if err != nil {
		t.Fatal(err)
	}
	appendRecs(t, l, 5, 1000)
	l.Seal()
	l2, err := Open(ts, "t/99/", smallConfig(), smallOpts(&clock{}))
	if err != nil || l2.NextOffset() != 15 {
		t.Fatalf("a partition opened after start-up: %v, next %d", err, l2.NextOffset())
	}
}
