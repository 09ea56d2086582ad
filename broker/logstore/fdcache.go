package logstore

// Open segment files shared by zero-copy reads. A consumer catching up fetches the same
// segment many times in a row (16 MiB of a 1 GiB segment at a time, say): opening and
// closing the file for each fetch cost a syscall pair and dropped what the file had learnt
// (the readahead state, where the last read ended). A DirStore keeps the files its readers
// opened in a small LRU (fileCacheSize descriptors); a reader holds a reference while its
// range is sent, and reads with explicit offsets (pread, sendfile with an offset), so one
// descriptor serves any number of concurrent readers.
//
// Deleting or replacing an object (Delete, Put) drops its entry: the descriptor closes when
// its last reader releases it. A send in flight keeps reading the unlinked file's bytes
// (segments are never written in place), so it never sees another object's bytes, and the
// disk space comes back once it is done. An entry evicted for room closes the same way.

import (
	"container/list"
	"os"
	"sync"
)

// fileCacheSize bounds the descriptors a DirStore keeps open for readers between reads
// (those held by reads in flight come on top, until released).
const fileCacheSize = 256

// sharedFile is an open segment file with its readers' count.
type sharedFile struct {
	f     *os.File
	name  string
	cache *fileCache // nil: not cached, closed on the last release
	refs  int        // cache.mu (plain when cache is nil: one reader)
	gone  bool       // out of the cache: close when refs reaches 0 (cache.mu)
	elem  *list.Element

	mu sync.Mutex
	// [raFrom, raTo): the data range prefetch was last asked for, so consecutive reads
	// ask only for what is new.
	raFrom, raTo int64
	// hints: where the batch holding offset starts, for the offsets the last reads
	// stopped before (what a reader catching up asks for next), so its next read does
	// not need the offset index.
	hints [4]posHint
	nextH int
	// prefetching: a background prefetch of what follows a read runs (span.go).
	prefetching bool
}

type posHint struct{ offset, pos int64 }

// fileCache is a DirStore's LRU of open segment files.
type fileCache struct {
	mu    sync.Mutex
	max   int
	m     map[string]*sharedFile
	lru   list.List      // front: most recently used
	epoch uint64         // bumped by every forget: an open racing it is not cached
	bg    sync.WaitGroup // background prefetches (tests wait for them)
	shut  bool           // closeAll ran: nothing is cached any more
}

func newFileCache(max int) *fileCache {
	return &fileCache{max: max, m: make(map[string]*sharedFile)}
}

// acquire returns name's open file with a reference the caller releases.
func (c *fileCache) acquire(name string, open func(string) (*os.File, error)) (*sharedFile, error) {
	c.mu.Lock()
	if sf := c.m[name]; sf != nil {
		sf.refs++
		c.lru.MoveToFront(sf.elem)
		c.mu.Unlock()
		return sf, nil
	}
	epoch := c.epoch
	c.mu.Unlock()
	f, err := open(name) // outside the lock: a cold directory lookup must not stall every reader
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if sf := c.m[name]; sf != nil { // another reader opened it meanwhile
		sf.refs++
		c.lru.MoveToFront(sf.elem)
		c.mu.Unlock()
		f.Close()
		return sf, nil
	}
	sf := &sharedFile{f: f, name: name, cache: c, refs: 1}
	if epoch != c.epoch || c.shut {
		// A Delete or Put ran while it was opened: this may be the old object; serve
		// this read from it (as an uncached open would) but keep it for no other.
		sf.gone = true
		c.mu.Unlock()
		return sf, nil
	}
	c.m[name] = sf
	sf.elem = c.lru.PushFront(sf)
	var closing []*os.File
	for c.lru.Len() > c.max {
		if f := c.drop(c.lru.Back().Value.(*sharedFile)); f != nil {
			closing = append(closing, f)
		}
	}
	c.mu.Unlock()
	for _, f := range closing {
		f.Close()
	}
	return sf, nil
}

// drop takes sf out of the cache and returns its file when no reader holds it (the caller
// closes it outside the lock). c.mu held.
func (c *fileCache) drop(sf *sharedFile) *os.File {
	delete(c.m, sf.name)
	c.lru.Remove(sf.elem)
	sf.elem, sf.gone = nil, true
	if sf.refs == 0 {
		return sf.f
	}
	return nil
}

// forget drops name's entry: it was deleted or replaced.
func (c *fileCache) forget(name string) {
	c.mu.Lock()
	c.epoch++
	var f *os.File
	if sf := c.m[name]; sf != nil {
		f = c.drop(sf)
	}
	c.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

// closeAll closes the cached files (those in flight once released), and caches none from
// then on: the broker is closing.
func (c *fileCache) closeAll() {
	c.mu.Lock()
	c.shut = true
	c.epoch++
	var closing []*os.File
	for c.lru.Len() > 0 {
		if f := c.drop(c.lru.Back().Value.(*sharedFile)); f != nil {
			closing = append(closing, f)
		}
	}
	c.mu.Unlock()
	for _, f := range closing {
		f.Close()
	}
}

// isShut reports whether closeAll ran (a queued prefetch then reads nothing).
func (c *fileCache) isShut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shut
}

// open reports the descriptors the cache holds (tests).
func (c *fileCache) open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// startPrefetch reports whether a prefetch of what follows a read of the cached file sf
// may run in the background: it then holds a reference and the background prefetch (or
// the caller, if it queues none) calls donePrefetch. busy: one already runs (at most one
// per file); the caller skips its own, the next read asks again for what this one would
// have (claim records only what was asked for).
// Neither: an uncached file, prefetched by the reader itself.
func (sf *sharedFile) startPrefetch() (bg, busy bool) {
	if sf.cache == nil {
		return false, false
	}
	sf.mu.Lock()
	busy = sf.prefetching
	sf.prefetching = true
	sf.mu.Unlock()
	if busy {
		return false, true
	}
	c := sf.cache
	c.mu.Lock()
	sf.refs++
	c.mu.Unlock()
	c.bg.Add(1)
	return true, false
}

func (sf *sharedFile) donePrefetch() {
	sf.mu.Lock()
	sf.prefetching = false
	sf.mu.Unlock()
	sf.release()
	sf.cache.bg.Done()
}

// release gives back a reference from acquire (or an uncached file).
func (sf *sharedFile) release() {
	if sf.cache == nil {
		sf.f.Close()
		return
	}
	c := sf.cache
	c.mu.Lock()
	sf.refs--
	closeIt := sf.refs == 0 && sf.gone
	c.mu.Unlock()
	if closeIt {
		sf.f.Close()
	}
}

// willNeed asks the kernel to read [off, off+n) of the file ahead, skipping what the last
// request already covered (a reader moving forward asks only for the new part).
func (sf *sharedFile) willNeed(off, n int64) {
	if off, end := sf.claim(off, n); off < end {
		prefetch(sf.f, off, end-off)
	}
}

// readAhead is willNeed that reads the range itself and returns once it is in the page
// cache (readAhead in prefetch_linux.go): for the background prefetch.
func (sf *sharedFile) readAhead(off, n int64) {
	if off, end := sf.claim(off, n); off < end {
		readAhead(sf.f, off, end-off)
	}
}

// claim records [off, off+n) as asked for and returns the part of it not asked for before.
func (sf *sharedFile) claim(off, n int64) (from, end int64) {
	end = off + n
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if off >= sf.raFrom && off <= sf.raTo {
		off = max(off, sf.raTo)
		sf.raTo = max(sf.raTo, end)
	} else {
		sf.raFrom, sf.raTo = off, end
	}
	return off, end
}

// firstPrefetch reports whether no prefetch of the file was asked for yet.
func (sf *sharedFile) firstPrefetch() bool {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	return sf.raTo == 0
}

// hint returns the data position of the batch holding offset, if a read stopped there.
func (sf *sharedFile) hint(offset int64) (int64, bool) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	for _, h := range sf.hints {
		if h.offset == offset && h.offset > 0 {
			return h.pos, true
		}
	}
	return 0, false
}

// setHint records that the first batch with an offset >= offset starts at pos.
func (sf *sharedFile) setHint(offset, pos int64) {
	sf.mu.Lock()
	sf.hints[sf.nextH] = posHint{offset, pos}
	sf.nextH = (sf.nextH + 1) % len(sf.hints)
	sf.mu.Unlock()
}
