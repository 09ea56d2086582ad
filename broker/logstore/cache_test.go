package logstore

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"reflect"
	"sync"
	"testing"
)

// countingStore counts Gets (the remote's requests).
type countingStore struct {
	Store
	mu   sync.Mutex
	gets int
}

func (c *countingStore) Get(name string, off, n int64) ([]byte, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.Store.Get(name, off, n)
}

func (c *countingStore) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets
}

// Every range of a segment object reads the same through the cache as from the remote;
// a cached block is not fetched again; the budget holds; Put and Delete drop what is
// cached; other objects pass through.
func TestCachedStoreBlocks(t *testing.T) {
	remote := &countingStore{Store: NewMemStore()}
	dir := t.TempDir()
	c, err := NewCachedStore(remote, dir, 1024, 4096)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 10_000)
	rand.Read(data)
	exact := make([]byte, 4096) // a whole number of blocks
	rand.Read(exact)
	for name, d := range map[string][]byte{"p/00000000000000000000.seg": data, "p/00000000000000000100.seg": exact} {
		if err := remote.Put(name, d); err != nil {
			t.Fatal(err)
		}
		for _, r := range [][2]int64{{0, -1}, {0, 1}, {1023, 2}, {1024, 1024}, {1000, 3000}, {9999, 5}, {4095, -1},
			{4096, -1}, {4096, 10}, {10_000, -1}, {20_000, 3}, {5, 0}, {0, 1 << 20}} {
			got, err := c.Get(name, r[0], r[1])
			want, _ := sliceRange(d, r[0], r[1])
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s Get(%d, %d): %d bytes, %v; want %d bytes", name, r[0], r[1], len(got), err, len(want))
			}
		}
	}
	if st := c.Stats(); st.Bytes > 4096 || st.Hits == 0 {
		t.Fatalf("stats %+v: over the 4096-byte budget, or no hit", st)
	}
	if files, _ := os.ReadDir(dir); len(files) != c.Stats().Blocks+1 { // and tmp/
		t.Fatalf("%d files for %d cached blocks", len(files), c.Stats().Blocks)
	}
	// Cached: the same read again costs no remote request.
	if _, err := c.Get("p/00000000000000000100.seg", 0, 2048); err != nil {
		t.Fatal(err)
	}
	before := remote.count()
	if _, err := c.Get("p/00000000000000000100.seg", 100, 1500); err != nil || remote.count() != before {
		t.Fatalf("a cached range went to the remote (%d requests), %v", remote.count()-before, err)
	}
	if _, err := c.Get("p/00000000000000099999.seg", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing segment: %v", err)
	}
	// Put replaces, Delete removes, through the cache.
	if err := c.Put("p/00000000000000000100.seg", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get("p/00000000000000000100.seg", 0, -1); string(got) != "new" {
		t.Fatalf("after Put: %q", got)
	}
	if err := c.Delete("p/00000000000000000100.seg"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get("p/00000000000000000100.seg", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after Delete: %v", err)
	}
	// Non-segment objects are not cached.
	if err := c.Put("p/checkpoint", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	c.Get("p/checkpoint", 0, -1)
	remote.Store.Put("p/checkpoint", []byte("v2")) // replaced behind the cache's back
	if got, _ := c.Get("p/checkpoint", 0, -1); string(got) != "v2" {
		t.Fatalf("checkpoint served stale: %q", got)
	}
}

func TestCachedStoreConformance(t *testing.T) {
	c, err := NewCachedStore(NewMemStore(), t.TempDir(), 4, 64)
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, c)
}

// Read-through from S3: a log whose segments are only in the bucket reads back through the
// cache, and a second full read is served without a GetObject.
func TestCachedStoreReadsLogFromS3(t *testing.T) {
	l, local, _ := sealedLog(t)
	remote := newMotoStore(t, S3Options{Prefix: "cluster/logs"})
	if _, err := NewUploader(local, remote, nil).Sync("p/"); err != nil {
		t.Fatal(err)
	}
	c, err := NewCachedStore(remote, t.TempDir(), 512, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := Open(local, "p/", smallConfig(), smallOpts(&clock{}))
	if err != nil {
		t.Fatal(err)
	}
	want := readAll(t, direct)
	rl, err := Open(c, "p/", smallConfig(), smallOpts(&clock{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rl); !reflect.DeepEqual(got, want) || rl.NextOffset() != l.DurableOffset() {
		t.Fatalf("through the cache: %d records (next %d); want %d (next %d)", len(got), rl.NextOffset(), len(want), l.DurableOffset())
	}
	gets := remote.Requests()["GetObject"]
	if got := readAll(t, rl); !reflect.DeepEqual(got, want) {
		t.Fatal("second read differs")
	}
	if n := remote.Requests()["GetObject"] - gets; n != 0 {
		t.Fatalf("second full read sent %d GetObject requests, want 0 (all cached)", n)
	}
}

// Concurrent readers of overlapping ranges under constant eviction all get the right bytes.
func TestCachedStoreConcurrentReadsWithEviction(t *testing.T) {
	remote := NewMemStore()
	c, err := NewCachedStore(remote, t.TempDir(), 256, 1024) // four blocks cached at most
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string][]byte{}
	for i, name := range []string{"a/00000000000000000000.seg", "a/00000000000000000500.seg", "b/00000000000000000000.seg"} {
		d := make([]byte, 3000+i*700)
		rand.Read(d)
		objs[name] = d
		if err := remote.Put(name, d); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				for name, d := range objs {
					off := int64((g*131 + i*97) % len(d))
					n := int64((g*53+i*29)%900) - 50 // some negative: to the end
					got, err := c.Get(name, off, n)
					want, _ := sliceRange(d, off, n)
					if err != nil || !bytes.Equal(got, want) {
						select {
						case errs <- name:
						default:
						}
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for name := range errs {
		t.Errorf("a concurrent read of %s returned wrong bytes", name)
	}
	if st := c.Stats(); st.Bytes > 1024 {
		t.Errorf("cache holds %d bytes, budget 1024", st.Bytes)
	}
}

// A range over blocks the cache lacks is one ranged GET per run of missing blocks (at
// most 16 blocks each), not one per block; cached blocks in the middle split the run.
func TestCachedStoreCoalescesMissingBlocks(t *testing.T) {
	remote := &countingStore{Store: NewMemStore()}
	c, err := NewCachedStore(remote, t.TempDir(), 1024, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 40*1024+7)
	rand.Read(data)
	const name = "p/00000000000000000000.seg"
	remote.Put(name, data)
	check := func(off, n int64, wantGets int) {
		t.Helper()
		before := remote.count()
		got, err := c.Get(name, off, n)
		want, _ := sliceRange(data, off, n)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Get(%d, %d): %d bytes, %v", off, n, len(got), err)
		}
		if g := remote.count() - before; g != wantGets {
			t.Fatalf("Get(%d, %d): %d remote GETs, want %d", off, n, g, wantGets)
		}
	}
	check(5*1024+10, 100, 1)      // block 5
	check(0, 10*1024, 2)          // blocks 0-4 and 6-9: two runs around the cached 5
	check(0, 10*1024, 0)          // all cached
	check(10*1024, 20*1024+50, 2) // blocks 10-30: 16 then 5
	check(30*1024, 1<<20, 1)      // 31-40 (the last one short); 30 cached
	check(40*1024, -1, 0)
}
