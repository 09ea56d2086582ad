package logstore

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// sealedLog returns a log over a local directory store with several sealed segments and an
// unsealed tail, and what readAll sees in it.
func sealedLog(t *testing.T) (*Log, Store, []kv) {
	t.Helper()
	local, err := OpenDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	c.advance(5000) // segments are created at 5000 ms
	l, err := Open(local, "p/", smallConfig(), smallOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	want := appendRecs(t, l, 60, 1000)
	if n := len(l.Segments()); n < 3 {
		t.Fatalf("%d sealed segments, want several", n)
	}
	if l.DurableOffset() >= l.NextOffset() {
		t.Fatal("no unsealed tail")
	}
	return l, local, want
}

func segNames(t *testing.T, st Store, prefix string) []string {
	t.Helper()
	objs, err := st.List(prefix)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		if _, _, ok := parseSegName(prefix, o.Name); ok {
			out = append(out, o.Name)
		}
	}
	return out
}

// The uploader copies every sealed segment to S3 byte for byte, in offset order, reports
// them, uploads nothing twice (also after a restart: it learns the remote by listing), and
// a Log opened on the S3 store alone reads back everything that was confirmed.
func TestUploaderCopiesSealedSegmentsToS3(t *testing.T) {
	l, local, want := sealedLog(t)
	remote := newMotoStore(t, S3Options{Prefix: "cluster/logs"})
	u := NewUploader(local, remote, nil)
	rep, err := u.Sync("p/")
	if err != nil {
		t.Fatal(err)
	}
	localSegs := segNames(t, local, "p/")
	var uploaded []string
	for _, o := range rep.Uploaded {
		uploaded = append(uploaded, o.Name)
	}
	if !reflect.DeepEqual(uploaded, localSegs) || len(rep.Pending) != 0 {
		t.Fatalf("uploaded %v (pending %v), want the sealed segments %v", uploaded, rep.Pending, localSegs)
	}
	for _, n := range localSegs {
		a, _ := local.Get(n, 0, -1)
		b, err := remote.Get(n, 0, -1)
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s in S3: %d bytes, %v; local %d bytes", n, len(b), err, len(a))
		}
		if !u.Confirmed(n) {
			t.Errorf("%s not reported confirmed", n)
		}
	}
	if off, err := u.ConfirmedOffset("p/"); err != nil || off != l.DurableOffset() {
		t.Fatalf("ConfirmedOffset = %d, %v; want the durable offset %d", off, err, l.DurableOffset())
	}
	if rep, err := u.Sync("p/"); err != nil || len(rep.Uploaded) != 0 {
		t.Fatalf("second Sync uploaded %v, %v; want nothing", rep.Uploaded, err)
	}

	// More data: only the new segments go up.
	before := len(localSegs)
	want = append(want, appendRecs(t, l, 40, 5000)...)
	rep, err = u.Sync("p/")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(segNames(t, local, "p/")) - before; n == 0 || len(rep.Uploaded) != n {
		t.Fatalf("after more appends: %d uploaded, want the %d new segments", len(rep.Uploaded), n)
	}
	// A restarted uploader finds everything already there.
	if rep, err := NewUploader(local, remote, nil).Sync("p/"); err != nil || len(rep.Uploaded) != 0 {
		t.Fatalf("a new uploader uploaded %v, %v; want nothing", rep.Uploaded, err)
	}
	// Disaster recovery at the log level: the S3 objects alone are the sealed log.
	rl, err := Open(remote, "p/", smallConfig(), smallOpts(&clock{}))
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, rl)
	var wantDurable []kv
	for _, r := range want {
		if r.off < l.DurableOffset() {
			wantDurable = append(wantDurable, r)
		}
	}
	if rl.NextOffset() != l.DurableOffset() || !reflect.DeepEqual(got, wantDurable) {
		t.Fatalf("log read from S3: next %d, %d records; want next %d, %d records", rl.NextOffset(), len(got), l.DurableOffset(), len(wantDurable))
	}
}

// A failed upload stops the round: what went up before it is confirmed and contiguous, the
// rest is reported pending, and the next Sync finishes in order.
func TestUploaderFailureLeavesContiguousConfirmedPrefix(t *testing.T) {
	l, local, _ := sealedLog(t)
	remote := &faultStore{Store: NewMemStore(), limit: 2}
	u := NewUploader(local, remote, nil)
	segs := segNames(t, local, "p/")
	rep, err := u.Sync("p/")
	if !errors.Is(err, errInjected) {
		t.Fatalf("Sync: %v, want the injected failure", err)
	}
	if len(rep.Uploaded) != 2 || rep.Uploaded[0].Name != segs[0] || rep.Uploaded[1].Name != segs[1] || len(rep.Pending) != len(segs)-2 {
		t.Fatalf("report %+v, want the first two of %v uploaded and the rest pending", rep, segs)
	}
	if u.Confirmed(segs[2]) {
		t.Errorf("%s confirmed though its upload failed", segs[2])
	}
	var pendingBytes int64
	for _, o := range rep.Pending {
		pendingBytes += o.Size
	}
	if lag, oldest, err := u.Lag("p/"); err != nil || lag != pendingBytes || oldest != 5000 {
		t.Fatalf("Lag = %d bytes, oldest %d, %v; want %d bytes, created at 5000 (the test clock)", lag, oldest, err, pendingBytes)
	}
	off, err := u.ConfirmedOffset("p/")
	if err != nil || off != l.Segments()[1].Next {
		t.Fatalf("ConfirmedOffset = %d, %v; want the end of the second segment %d", off, err, l.Segments()[1].Next)
	}
	remote.mu.Lock()
	remote.limit = 1 << 30
	remote.mu.Unlock()
	rep, err = u.Sync("p/")
	if err != nil || len(rep.Uploaded) != len(segs)-2 || rep.Uploaded[0].Name != segs[2] {
		t.Fatalf("resumed Sync: %+v, %v", rep, err)
	}
	if off, _ := u.ConfirmedOffset("p/"); off != l.DurableOffset() {
		t.Fatalf("ConfirmedOffset after resuming = %d, want %d", off, l.DurableOffset())
	}
	if lag, oldest, err := u.Lag("p/"); err != nil || lag != 0 || oldest != 0 {
		t.Fatalf("Lag after resuming = %d, %d, %v; want none", lag, oldest, err)
	}
}

// Without a valid lease nothing is written.
func TestUploaderNeedsTheLease(t *testing.T) {
	_, local, _ := sealedLog(t)
	remote := NewMemStore()
	rep, err := NewUploader(local, remote, func() bool { return false }).Sync("p/")
	if !errors.Is(err, ErrUploadNotAllowed) || len(rep.Uploaded) != 0 {
		t.Fatalf("Sync without the lease: %+v, %v", rep, err)
	}
	if objs, _ := remote.List(""); len(objs) != 0 {
		t.Fatalf("remote holds %v", objs)
	}
}

// The checkpoint (log start offset) goes up when it changes, and only then.
func TestUploaderCheckpoint(t *testing.T) {
	l, local, _ := sealedLog(t)
	remote := NewMemStore()
	u := NewUploader(local, remote, nil)
	if err := l.DeleteRecordsBefore(5); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Sync("p/"); err != nil {
		t.Fatal(err)
	}
	a, _ := local.Get("p/"+checkpointName, 0, -1)
	if b, err := remote.Get("p/"+checkpointName, 0, -1); err != nil || !bytes.Equal(a, b) {
		t.Fatalf("checkpoint in the remote: %x, %v; want %x", b, err, a)
	}
	if !u.Confirmed("p/" + checkpointName) {
		t.Error("checkpoint not reported confirmed")
	}
	if rep, _ := u.Sync("p/"); len(rep.Uploaded) != 0 {
		t.Fatalf("unchanged checkpoint uploaded again: %v", rep.Uploaded)
	}
	if err := l.DeleteRecordsBefore(7); err != nil {
		t.Fatal(err)
	}
	if rep, _ := u.Sync("p/"); len(rep.Uploaded) != 1 || rep.Uploaded[0].Name != "p/"+checkpointName {
		t.Fatalf("changed checkpoint: uploaded %v", rep.Uploaded)
	}
}
