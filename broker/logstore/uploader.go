package logstore

// Uploader copies a partition's sealed objects from the local Store to the remote one (S3)
// and keeps track of what the remote holds, for the S3 tier (README, "S3 tier"): local
// segment space and the WAL may be given back only for data confirmed there.
//
//   - Sync(prefix) lists the local objects under prefix and puts every segment object the
//     remote does not hold yet, in base-offset order (so what is confirmed is a prefix of the
//     log plus, after a failure, nothing out of order), then the checkpoint when its bytes
//     changed. Segment objects are immutable (a compaction writes a new name), so a name
//     once confirmed stays confirmed; the checkpoint is replaced in place, and its CRC is
//     remembered to upload only a changed one.
//   - What the remote holds is learnt by one List per prefix (at the first Sync, e.g. after
//     a restart) and then from the uploader's own successful puts: a LIST per partition and
//     flush would cost more than the PUTs.
//   - CanWrite is asked before every put (the S3 lease's Valid): a broker that may have lost
//     its lease stops writing at once.
//   - Deletions are not mirrored: once the Log runs on a tiered store, retention, compaction
//     and DeleteRecords delete through it on both sides.

import (
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
	"strings"
	"sync"
)

// ErrUploadNotAllowed is returned by Sync when CanWrite says no (the lease is not valid).
var ErrUploadNotAllowed = errors.New("logstore: uploads stopped: the S3 writer lease is not valid")

// Uploader copies sealed objects from local to remote.
type Uploader struct {
	local, remote Store
	canWrite      func() bool

	mu        sync.Mutex // one Sync at a time; guards the maps
	listed    map[string]bool
	confirmed map[string]int64  // name -> size held by the remote
	ckptCRC   map[string]uint32 // checkpoint name -> CRC of the bytes the remote holds
}

// NewUploader returns an uploader from local to remote; canWrite (nil: always) is asked
// before every put.
func NewUploader(local, remote Store, canWrite func() bool) *Uploader {
	if canWrite == nil {
		canWrite = func() bool { return true }
	}
	return &Uploader{local: local, remote: remote, canWrite: canWrite,
		listed: map[string]bool{}, confirmed: map[string]int64{}, ckptCRC: map[string]uint32{}}
}

// UploadReport says what one Sync did.
type UploadReport struct {
	Uploaded []Object // in upload order
	Bytes    int64    // bytes uploaded
	Pending  []Object // segment objects still not in the remote (after a failure)
}

// Sync uploads what the remote lacks under the partition prefix (ending in "/"). On an
// error the report still lists what was uploaded before it, and Pending what was not.
func (u *Uploader) Sync(prefix string) (UploadReport, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var rep UploadReport
	if !u.listed[prefix] {
		objs, err := u.remote.List(prefix)
		if err != nil {
			return rep, fmt.Errorf("logstore: listing the remote %s: %w", prefix, err)
		}
		for _, o := range objs {
			if _, _, ok := parseSegName(prefix, o.Name); ok {
				u.confirmed[o.Name] = o.Size
			}
		}
		u.listed[prefix] = true
	}
	segs, ckpt, err := u.localSegments(prefix)
	if err != nil {
		return rep, err
	}
	var todo []Object
	for _, s := range segs {
		if size, ok := u.confirmed[s.Name]; !ok || size != s.Size {
			todo = append(todo, s)
		}
	}
	for i, s := range todo {
		if err := u.put(s.Name); err != nil {
			rep.Pending = todo[i:]
			return rep, err
		}
		u.confirmed[s.Name] = s.Size
		rep.Uploaded = append(rep.Uploaded, s)
		rep.Bytes += s.Size
	}
	if ckpt != "" {
		b, err := u.local.Get(ckpt, 0, -1)
		if errors.Is(err, ErrNotFound) {
			return rep, nil // removed since the List (the log was deleted)
		}
		if err != nil {
			return rep, err
		}
		crc := crc32.Checksum(b, crc32c)
		if old, ok := u.ckptCRC[ckpt]; !ok || old != crc {
			if !u.canWrite() {
				return rep, ErrUploadNotAllowed
			}
			if err := u.remote.Put(ckpt, b); err != nil {
				return rep, err
			}
			u.ckptCRC[ckpt] = crc
			rep.Uploaded = append(rep.Uploaded, Object{ckpt, int64(len(b))})
			rep.Bytes += int64(len(b))
		}
	}
	return rep, nil
}

// localSegments lists the partition's local segment objects in base-offset order (then
// generation) and names its checkpoint object, if any.
func (u *Uploader) localSegments(prefix string) ([]Object, string, error) {
	objs, err := u.local.List(prefix)
	if err != nil {
		return nil, "", err
	}
	type seg struct {
		Object
		base int64
		gen  uint32
	}
	var segs []seg
	ckpt := ""
	for _, o := range objs {
		if o.Name == prefix+checkpointName {
			ckpt = o.Name
			continue
		}
		if base, gen, ok := parseSegName(prefix, o.Name); ok {
			segs = append(segs, seg{o, base, gen})
		}
	}
	sort.Slice(segs, func(i, j int) bool {
		if segs[i].base != segs[j].base {
			return segs[i].base < segs[j].base
		}
		return segs[i].gen < segs[j].gen
	})
	out := make([]Object, len(segs))
	for i, s := range segs {
		out[i] = s.Object
	}
	return out, ckpt, nil
}

func (u *Uploader) put(name string) error {
	if !u.canWrite() {
		return ErrUploadNotAllowed
	}
	b, err := u.local.Get(name, 0, -1)
	if err != nil {
		return fmt.Errorf("logstore: reading %s to upload: %w", name, err)
	}
	if err := u.remote.Put(name, b); err != nil {
		return fmt.Errorf("logstore: uploading %s: %w", name, err)
	}
	return nil
}

// Confirmed reports whether the remote holds the named object as the uploader last saw it.
func (u *Uploader) Confirmed(name string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.confirmed[name]
	if !ok && strings.HasSuffix(name, "/"+checkpointName) {
		_, ok = u.ckptCRC[name]
	}
	return ok
}

// ConfirmedOffset is one past the last offset of the leading run of the partition's local
// segments that the remote holds: everything below it is in S3. -1 when the first local
// segment is not confirmed (or there is none).
func (u *Uploader) ConfirmedOffset(prefix string) (int64, error) {
	segs, _, err := u.localSegments(prefix)
	if err != nil {
		return -1, err
	}
	u.mu.Lock()
	last := ""
	var lastSize int64
	for _, s := range segs {
		if size, ok := u.confirmed[s.Name]; !ok || size != s.Size {
			break
		}
		last, lastSize = s.Name, s.Size
	}
	u.mu.Unlock()
	if last == "" {
		return -1, nil
	}
	if lastSize < trailerLen {
		return -1, fmt.Errorf("logstore: segment %s: %d bytes", last, lastSize)
	}
	t, err := u.local.Get(last, lastSize-trailerLen, trailerLen)
	if err != nil {
		return -1, err
	}
	s, err := decodeTrailer(t, lastSize)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", last, err)
	}
	return s.next, nil
}

// Lag is what the remote lacks of the partition's sealed segments: their bytes and the
// creation time (ms) of the oldest one (0 when none). The unsealed tail (the Log's, held
// by the WAL) is lag too; the caller adds it.
func (u *Uploader) Lag(prefix string) (bytes int64, oldestMs int64, err error) {
	segs, _, err := u.localSegments(prefix)
	if err != nil {
		return 0, 0, err
	}
	u.mu.Lock()
	var first *Object
	for i, s := range segs {
		if size, ok := u.confirmed[s.Name]; ok && size == s.Size {
			continue
		}
		bytes += s.Size
		if first == nil {
			first = &segs[i]
		}
	}
	u.mu.Unlock()
	if first == nil {
		return 0, 0, nil
	}
	if first.Size < trailerLen {
		return bytes, 0, fmt.Errorf("logstore: segment %s: %d bytes", first.Name, first.Size)
	}
	t, err := u.local.Get(first.Name, first.Size-trailerLen, trailerLen)
	if err != nil {
		return bytes, 0, err
	}
	s, err := decodeTrailer(t, first.Size)
	if err != nil {
		return bytes, 0, fmt.Errorf("%s: %w", first.Name, err)
	}
	return bytes, s.created, nil
}

// confirmedSize reports whether the remote holds name with size bytes.
func (u *Uploader) confirmedSize(name string, size int64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	got, ok := u.confirmed[name]
	return ok && got == size
}

// Forget drops what the uploader remembers of deleted objects.
func (u *Uploader) Forget(names ...string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, n := range names {
		delete(u.confirmed, n)
		delete(u.ckptCRC, n)
	}
}
