package logstore

// TieredStore is the Store a Log runs on when the S3 tier is configured (README, "S3
// tier"): the local store first, the remote (S3) behind it.
//
//   - Put writes locally only; the broker's flusher uploads sealed segment objects and
//     changed checkpoints with Sync (one Uploader per partition prefix, so partitions upload
//     in parallel), off the produce path.
//   - Get reads the local object, and an object that is not (or no longer) local through
//     the CachedStore (ranged GETs, a bounded block cache on local disk): read-through.
//   - List is the union of both sides (the Log's Open sees S3-only segments).
//   - Delete deletes the remote object first, then the local one: a crash in between leaves
//     at worst a local orphan, which the Log's Open removes (below the checkpointed log
//     start, or covered by a newer generation) through Delete again. An upload in flight is
//     excluded by delMu, so a deleted object is never put back in S3 by a late upload.
//   - Evict gives local space back: confirmed segment objects (in S3 byte for byte), oldest
//     created first, until local segment bytes fit the budget; their reads then go to S3.
//   - Unconfirmed is what only the local disk holds (sealed but not yet in S3): the broker
//     refuses produce once that plus the unsealed tails reach the local budget.

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
)

// TieredStore stores locally and in a remote Store; see the file comment.
type TieredStore struct {
	local  Store
	remote Store        // the S3 store, for deletes and the uploaders' puts
	cache  *CachedStore // reads of remote objects
	guard  guardedRemote

	canWrite func() bool

	listMu      sync.Mutex
	listing     map[string][]Object // partition prefix -> remote objects, during start-up
	startupDone bool

	// delMu: a Delete (write lock) waits for an upload in flight (read lock) and the upload
	// checks, under the read lock, that its local object still exists.
	delMu sync.RWMutex

	mu          sync.Mutex
	ups         map[string]*Uploader // partition prefix -> its uploader
	segs        map[string]*localSeg // local segment objects
	localBytes  int64                // bytes of local segment objects
	unconfirmed int64                // bytes of local segment objects not confirmed in S3
	forget      []string             // deleted names the uploaders may still remember
	dirty       map[string]bool      // prefixes whose checkpoint changed since their last Sync
}

type localSeg struct {
	size      int64
	created   int64
	confirmed bool
}

// NewTieredStore layers local over remote, reading remote objects through cache (whose
// remote must be the same store). canWrite (nil: always) is asked before every upload.
// It scans the local segment objects once (their trailers) for their sizes and ages.
func NewTieredStore(local, remote Store, cache *CachedStore, canWrite func() bool) (*TieredStore, error) {
	if canWrite == nil {
		canWrite = func() bool { return true }
	}
	t := &TieredStore{local: local, remote: remote, cache: cache, canWrite: canWrite,
		ups: map[string]*Uploader{}, segs: map[string]*localSeg{}, dirty: map[string]bool{}}
	t.guard = guardedRemote{t}
	objs, err := local.List("")
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if strings.HasSuffix(o.Name, "/"+checkpointName) {
			t.dirty[prefixOf(o.Name)] = true // the uploader compares it with S3's once
			continue
		}
		if !isSegName(o.Name) || o.Size < trailerLen {
			continue
		}
		tr, err := local.Get(o.Name, o.Size-trailerLen, trailerLen)
		if err != nil {
			return nil, err
		}
		s, err := decodeTrailer(tr, o.Size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Name, err)
		}
		t.addLocalLocked(o.Name, o.Size, s.created)
	}
	return t, nil
}

// isSegName reports a segment object's name (<prefix>/<base>[.c<gen>].seg).
func isSegName(name string) bool {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return false
	}
	_, _, ok := parseSegName(name[:i+1], name)
	return ok
}

func prefixOf(name string) string { return name[:strings.LastIndexByte(name, '/')+1] }

func (t *TieredStore) addLocalLocked(name string, size, created int64) {
	t.dropLocalLocked(name)
	t.segs[name] = &localSeg{size: size, created: created}
	t.localBytes += size
	t.unconfirmed += size
}

func (t *TieredStore) dropLocalLocked(name string) {
	if s := t.segs[name]; s != nil {
		t.localBytes -= s.size
		if !s.confirmed {
			t.unconfirmed -= s.size
		}
		delete(t.segs, name)
	}
}

func (t *TieredStore) Put(name string, data []byte) error {
	if err := t.local.Put(name, data); err != nil {
		return err
	}
	if strings.HasSuffix(name, "/"+checkpointName) {
		t.mu.Lock()
		t.dirty[prefixOf(name)] = true
		t.mu.Unlock()
	}
	if isSegName(name) && len(data) >= trailerLen {
		s, err := decodeTrailer(data[len(data)-trailerLen:], int64(len(data)))
		if err == nil {
			t.mu.Lock()
			t.addLocalLocked(name, int64(len(data)), s.created)
			t.mu.Unlock()
		}
	}
	return nil
}

// Create implements Creator when the local store does: the object is written locally as it
// fills, and on Commit counted (and later uploaded) as a Put object is.
func (t *TieredStore) Create(name string) (ObjectWriter, error) {
	c, ok := t.local.(Creator)
	if !ok {
		return nil, fmt.Errorf("logstore: the local store cannot write %s incrementally", name)
	}
	w, err := c.Create(name)
	if err != nil {
		return nil, err
	}
	return &tieredWriter{ObjectWriter: w, t: t, name: name}, nil
}

type tieredWriter struct {
	ObjectWriter
	t    *TieredStore
	name string
}

func (w *tieredWriter) Commit(rest ...[]byte) error {
	size := w.Size()
	for _, p := range rest {
		size += int64(len(p))
	}
	var last []byte
	if len(rest) > 0 {
		last = rest[len(rest)-1]
	}
	if err := w.ObjectWriter.Commit(rest...); err != nil {
		return err
	}
	// The footer (the last part Log commits) ends with the trailer.
	if isSegName(w.name) && len(last) >= trailerLen {
		if s, err := decodeTrailer(last[len(last)-trailerLen:], size); err == nil {
			w.t.mu.Lock()
			w.t.addLocalLocked(w.name, size, s.created)
			w.t.mu.Unlock()
		}
	}
	return nil
}

func (t *TieredStore) Get(name string, off, n int64) ([]byte, error) {
	b, err := t.local.Get(name, off, n)
	if errors.Is(err, ErrNotFound) {
		return t.cache.Get(name, off, n)
	}
	return b, err
}

// List merges both sides' listings (by name; the local size wins, they are the same bytes).
func (t *TieredStore) List(prefix string) ([]Object, error) {
	loc, err := t.local.List(prefix)
	if err != nil {
		return nil, err
	}
	rem, err := t.remoteList(prefix)
	if err != nil {
		return nil, fmt.Errorf("logstore: listing S3 under %s: %w", prefix, err)
	}
	seen := make(map[string]bool, len(loc))
	out := append([]Object(nil), loc...)
	for _, o := range loc {
		seen[o.Name] = true
	}
	for _, o := range rem {
		if !seen[o.Name] {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// remoteList lists the remote under prefix. Until EndStartup, a partition prefix is
// answered from one listing of the whole remote taken at the first call: a broker opening
// a thousand partitions sends a few LISTs (1000 keys a page), not a thousand. The listing
// is only read by Log.Open, once per partition, before anything of that partition changes.
func (t *TieredStore) remoteList(prefix string) ([]Object, error) {
	t.listMu.Lock()
	defer t.listMu.Unlock()
	if t.startupDone || strings.Count(prefix, "/") != 2 || !strings.HasSuffix(prefix, "/") {
		return t.remote.List(prefix)
	}
	if t.listing == nil {
		objs, err := t.remote.List("")
		if err != nil {
			return nil, err
		}
		t.listing = map[string][]Object{}
		for _, o := range objs {
			p := prefixOf(o.Name)
			t.listing[p] = append(t.listing[p], o)
		}
	}
	return t.listing[prefix], nil
}

// EndStartup drops the start-up listing: later opens (new topics and partitions) list
// their own prefix.
func (t *TieredStore) EndStartup() {
	t.listMu.Lock()
	t.listing, t.startupDone = nil, true
	t.listMu.Unlock()
}

// Delete removes name from S3 (and the cache), then locally.
func (t *TieredStore) Delete(name string) error {
	t.delMu.Lock()
	defer t.delMu.Unlock()
	if err := t.cache.Delete(name); err != nil {
		return fmt.Errorf("logstore: deleting %s from S3: %w", name, err)
	}
	if err := t.local.Delete(name); err != nil {
		return err
	}
	t.mu.Lock()
	t.dropLocalLocked(name)
	t.forget = append(t.forget, name)
	if strings.HasSuffix(name, "/"+checkpointName) {
		delete(t.dirty, prefixOf(name))
	}
	t.mu.Unlock()
	return nil
}

func (t *TieredStore) uploader(prefix string) *Uploader {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.ups[prefix]
	if u == nil {
		u = NewUploader(t.local, t.guard, t.canWrite)
		t.ups[prefix] = u
	}
	return u
}

// Sync uploads the partition's sealed segments and changed checkpoint that S3 lacks (see
// Uploader.Sync); calls for different prefixes may run in parallel.
func (t *TieredStore) Sync(prefix string) (UploadReport, error) {
	u := t.uploader(prefix)
	t.mu.Lock()
	forget := t.forget
	t.forget = nil
	t.mu.Unlock()
	if len(forget) > 0 {
		// Every uploader forgets: a name belongs to one prefix, and the others ignore it.
		t.mu.Lock()
		ups := make([]*Uploader, 0, len(t.ups))
		for _, x := range t.ups {
			ups = append(ups, x)
		}
		t.mu.Unlock()
		for _, x := range ups {
			if x != u {
				x.Forget(forget...)
			}
		}
	}
	t.mu.Lock()
	delete(t.dirty, prefix)
	t.mu.Unlock()
	rep, err := u.Sync(prefix)
	if len(forget) > 0 {
		u.Forget(forget...)
	}
	t.mu.Lock()
	if err != nil {
		t.dirty[prefix] = true
	}
	for name, s := range t.segs {
		if !s.confirmed && prefixOf(name) == prefix && u.confirmedSize(name, s.size) {
			s.confirmed = true
			t.unconfirmed -= s.size
		}
	}
	t.mu.Unlock()
	return rep, err
}

// Pending lists the partition prefixes with something to upload: unconfirmed segments or
// a changed checkpoint.
func (t *TieredStore) Pending() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	set := map[string]bool{}
	for p := range t.dirty {
		set[p] = true
	}
	for name, s := range t.segs {
		if !s.confirmed {
			set[prefixOf(name)] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Forget drops a partition's uploader (its topic was deleted).
func (t *TieredStore) Forget(prefix string) {
	t.mu.Lock()
	delete(t.ups, prefix)
	delete(t.dirty, prefix)
	t.mu.Unlock()
}

// PrefixLag is what S3 lacks of one partition's sealed segments.
type PrefixLag struct {
	Bytes    int64
	OldestMs int64 // creation time of the oldest unconfirmed segment
}

// Lag returns, per partition prefix, the sealed segment bytes not yet confirmed in S3 and
// the creation time of the oldest (without waiting for uploads in flight). The unsealed
// tails are lag too; the caller adds them.
func (t *TieredStore) Lag() map[string]PrefixLag {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]PrefixLag{}
	for name, s := range t.segs {
		if s.confirmed {
			continue
		}
		p := prefixOf(name)
		l, ok := out[p]
		l.Bytes += s.size
		if !ok || s.created < l.OldestMs {
			l.OldestMs = s.created
		}
		out[p] = l
	}
	return out
}

// TierStats are the tiered store's byte counts.
type TierStats struct {
	LocalBytes       int64 // local segment objects
	UnconfirmedBytes int64 // of which not yet confirmed in S3
	Cache            CacheStats
}

// Stats returns the byte counts.
func (t *TieredStore) Stats() TierStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TierStats{LocalBytes: t.localBytes, UnconfirmedBytes: t.unconfirmed, Cache: t.cache.Stats()}
}

// Evict deletes local copies of confirmed segment objects, oldest created first, until the
// local segment bytes fit in budget. It returns how many objects and bytes it gave back.
func (t *TieredStore) Evict(budget int64) (int, int64, error) {
	t.mu.Lock()
	if t.localBytes <= budget {
		t.mu.Unlock()
		return 0, 0, nil
	}
	type cand struct {
		name string
		s    *localSeg
	}
	var cands []cand
	for name, s := range t.segs {
		if s.confirmed {
			cands = append(cands, cand{name, s})
		}
	}
	over := t.localBytes - budget
	t.mu.Unlock()
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].s.created != cands[j].s.created {
			return cands[i].s.created < cands[j].s.created
		}
		return cands[i].name < cands[j].name
	})
	n, freed := 0, int64(0)
	for _, c := range cands {
		if freed >= over {
			break
		}
		// A read that opened the file keeps reading it; later reads go to S3.
		if err := t.local.Delete(c.name); err != nil {
			return n, freed, err
		}
		t.mu.Lock()
		if t.segs[c.name] == c.s {
			t.dropLocalLocked(c.name)
		}
		t.mu.Unlock()
		n++
		freed += c.s.size
	}
	return n, freed, nil
}

// Purge deletes every object under prefix (a deleted topic, "<topic-id>/", whose removal
// S3 refused or a crash interrupted): in S3 first, then locally, with uploads held off, so
// nothing of it is uploaded again. It returns how many S3 objects it deleted.
func (t *TieredStore) Purge(prefix string) (int, error) {
	t.delMu.Lock()
	defer t.delMu.Unlock()
	objs, err := t.remote.List(prefix)
	if err != nil {
		return 0, err
	}
	for i, o := range objs {
		if err := t.cache.Delete(o.Name); err != nil {
			return i, err
		}
	}
	loc, err := t.local.List(prefix)
	if err != nil {
		return len(objs), err
	}
	for _, o := range loc {
		if err := t.local.Delete(o.Name); err != nil {
			return len(objs), err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for name := range t.segs {
		if strings.HasPrefix(name, prefix) {
			t.dropLocalLocked(name)
		}
	}
	for p := range t.dirty {
		if strings.HasPrefix(p, prefix) {
			delete(t.dirty, p)
		}
	}
	for p := range t.ups {
		if strings.HasPrefix(p, prefix) {
			delete(t.ups, p)
		}
	}
	return len(objs), nil
}

// guardedRemote is the remote as the uploaders see it: a put runs under delMu's read lock
// and only while the local object still exists, so it cannot resurrect a deleted object.
type guardedRemote struct{ t *TieredStore }

func (g guardedRemote) Put(name string, data []byte) error {
	g.t.delMu.RLock()
	defer g.t.delMu.RUnlock()
	if _, err := g.t.local.Get(name, 0, 0); errors.Is(err, ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return nil // deleted since the uploader read it: nothing to upload
	}
	return g.t.cache.Put(name, data)
}

func (g guardedRemote) Get(name string, off, n int64) ([]byte, error) {
	return g.t.remote.Get(name, off, n)
}
func (g guardedRemote) List(prefix string) ([]Object, error) { return g.t.remote.List(prefix) }
func (g guardedRemote) Delete(name string) error             { return g.t.cache.Delete(name) }
