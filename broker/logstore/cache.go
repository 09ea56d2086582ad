package logstore

// CachedStore is the read-through side of the S3 tier (README, "S3 tier"): reads of segment
// objects go to the remote store in aligned blocks, and the blocks are kept in a local
// directory, least recently used evicted past a byte budget (--s3-cache-bytes). A fetch at
// any offset of a 64 MiB object costs the block it needs (plus the footer block the index
// lookup reads), not the whole object. Not wired into the broker yet.
//
// Cache files, one per block, flat in the cache directory (wiped at open: the cache is
// only a copy):
//
//	<dir>/<name with "/" as "~">.<block number>     bytes [n*BlockSize, (n+1)*BlockSize)
//	                                                of the object (the last block shorter)
//	<dir>/tmp/block-*                               a block being written (then renamed)
//
// Only segment objects (".seg" names) are cached: they are immutable, so a cached block is
// never stale. Everything else (checkpoints, replaced in place) and every Put, List and
// Delete passes through; Put and Delete drop the name's cached blocks.

import (
	"container/list"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// CachedStore reads segment objects of remote through a bounded local block cache.
type CachedStore struct {
	remote    Store
	dir       string
	blockSize int64
	budget    int64

	mu    sync.Mutex
	used  int64
	lru   *list.List // of *cacheEntry, most recently used at the front
	byKey map[cacheKey]*list.Element
	hits  int64
	miss  int64
}

type cacheKey struct {
	name  string
	block int64
}

type cacheEntry struct {
	key  cacheKey
	size int64
}

// NewCachedStore caches remote's segment blocks of blockSize bytes (default 1 MiB) in dir,
// using at most budget bytes (at least one block is kept, whatever the budget).
func NewCachedStore(remote Store, dir string, blockSize, budget int64) (*CachedStore, error) {
	if blockSize <= 0 {
		blockSize = 1 << 20
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	return &CachedStore{remote: remote, dir: dir, blockSize: blockSize, budget: budget,
		lru: list.New(), byKey: map[cacheKey]*list.Element{}}, nil
}

// CacheStats are the cache's counters.
type CacheStats struct {
	Hits, Misses int64 // blocks served from the cache / fetched
	Bytes        int64 // bytes cached now
	Blocks       int
}

// Stats returns the counters.
func (c *CachedStore) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Hits: c.hits, Misses: c.miss, Bytes: c.used, Blocks: c.lru.Len()}
}

func (c *CachedStore) path(k cacheKey) string {
	return filepath.Join(c.dir, strings.ReplaceAll(k.name, "/", "~")+"."+strconv.FormatInt(k.block, 10))
}

func (c *CachedStore) Put(name string, data []byte) error {
	c.drop(name)
	return c.remote.Put(name, data)
}

func (c *CachedStore) List(prefix string) ([]Object, error) { return c.remote.List(prefix) }

func (c *CachedStore) Delete(name string) error {
	c.drop(name)
	return c.remote.Delete(name)
}

func (c *CachedStore) Get(name string, off, n int64) ([]byte, error) {
	if !strings.HasSuffix(name, segSuffix) {
		return c.remote.Get(name, off, n)
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("logstore: negative offset %d", off)
	}
	if n == 0 {
		return c.remote.Get(name, off, 0) // existence only
	}
	out := []byte{}
	b := off / c.blockSize
	for {
		count := int64(1) // to the end (n < 0): a block at a time
		if n > 0 {
			count = min((off+n-1)/c.blockSize-b+1, maxRunBlocks)
		}
		blks, err := c.blocks(name, b, count)
		if err != nil {
			return nil, err
		}
		if len(blks) == 0 {
			return out, nil // past the object's end
		}
		for _, blk := range blks {
			start := b * c.blockSize
			lo := max(off-start, 0)
			if lo < int64(len(blk)) {
				hi := int64(len(blk))
				if n > 0 {
					hi = min(hi, off+n-start)
				}
				out = append(out, blk[lo:hi]...)
			}
			if int64(len(blk)) < c.blockSize || n > 0 && start+c.blockSize >= off+n {
				return out, nil // the object's last block, or the range is complete
			}
			b++
		}
	}
}

// maxRunBlocks bounds the blocks one ranged GET fetches (16 MiB with 1 MiB blocks).
const maxRunBlocks = 16

// blocks returns blocks b..b+count-1 of name (fewer when the object ends before), from the
// cache or the remote: each run of blocks the cache lacks is one ranged GET (a sequential
// read of 16 MiB costs one request, not sixteen), then cached. A missing object is
// ErrNotFound.
func (c *CachedStore) blocks(name string, b, count int64) ([][]byte, error) {
	var out [][]byte
	for i := int64(0); i < count; {
		if data, ok := c.cached(cacheKey{name, b + i}); ok {
			out = append(out, data)
			if int64(len(data)) < c.blockSize {
				return out, nil
			}
			i++
			continue
		}
		j := i + 1
		for j < count && !c.has(cacheKey{name, b + j}) {
			j++
		}
		c.mu.Lock()
		c.miss += j - i
		c.mu.Unlock()
		data, err := c.remote.Get(name, (b+i)*c.blockSize, (j-i)*c.blockSize)
		if err != nil {
			return nil, err
		}
		for k := i; k < j; k++ {
			lo := (k - i) * c.blockSize
			if lo >= int64(len(data)) {
				// Past the end: no block, and none cached. Were the object missing, Get
				// would have said ErrNotFound.
				return out, nil
			}
			blk := data[lo:min(lo+c.blockSize, int64(len(data)))]
			c.store(cacheKey{name, b + k}, blk)
			out = append(out, blk)
			if int64(len(blk)) < c.blockSize {
				return out, nil
			}
		}
		i = j
	}
	return out, nil
}

func (c *CachedStore) has(k cacheKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.byKey[k]
	return ok
}

// cached returns a cached block (ok false when it is not, or no longer, cached).
func (c *CachedStore) cached(k cacheKey) ([]byte, bool) {
	c.mu.Lock()
	e, ok := c.byKey[k]
	if ok {
		c.lru.MoveToFront(e)
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	// Read without the lock; an eviction in between removes the file, and then the block
	// is fetched again.
	data, err := os.ReadFile(c.path(k))
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if cur, ok := c.byKey[k]; ok && cur == e {
			c.removeLocked(e) // listed but unreadable (removed from outside): forget it
		}
		return nil, false
	}
	c.hits++
	return data, true
}

// store caches a block fetched from the remote, evicting the least recently used past
// the budget.
func (c *CachedStore) store(k cacheKey, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[k]; ok {
		return // fetched concurrently
	}
	if err := c.writeFile(c.path(k), data); err != nil {
		return // a full cache disk: serve uncached
	}
	c.byKey[k] = c.lru.PushFront(&cacheEntry{k, int64(len(data))})
	c.used += int64(len(data))
	for c.used > c.budget && c.lru.Len() > 1 {
		c.removeLocked(c.lru.Back())
	}
}

// writeFile writes through a temporary file and a rename: a reader that found the block
// listed reads without the lock, and may open the path while an evicted block is being
// cached again there; it must see a whole file, never one being written.
func (c *CachedStore) writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "block-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func (c *CachedStore) removeLocked(e *list.Element) {
	ce := e.Value.(*cacheEntry)
	c.lru.Remove(e)
	delete(c.byKey, ce.key)
	c.used -= ce.size
	os.Remove(c.path(ce.key)) // on failure the file stays until the next open wipes the directory
}

// drop forgets every cached block of name.
func (c *CachedStore) drop(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.lru.Front(); e != nil; {
		next := e.Next()
		if e.Value.(*cacheEntry).key.name == name {
			c.removeLocked(e)
		}
		e = next
	}
}
