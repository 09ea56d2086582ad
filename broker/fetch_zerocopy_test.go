package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/broker/server"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// zeroCopyTopic fills a one-partition topic with small segments: plain batches of varying
// sizes, committed and aborted transactions, and a transaction left open (the last stable
// offset stays inside the data), then seals the tail so every batch is in a segment file.
func zeroCopyTopic(t *testing.T, tb *testBroker, topic string) {
	t.Helper()
	s := func(v string) *string { return &v }
	createTopic(t, tb.admin(t), topic, 1, map[string]*string{"segment.bytes": s("8192")})
	ctx := ctxT(t, 30*time.Second)
	opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression())}
	plain := tb.client(t, opts...)
	txn := tb.client(t, append(opts, kgo.TransactionalID("zc-"+topic))...)
	for i := range 40 {
		var recs []*kgo.Record
		for j := range 1 + i%5 {
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(j)), Value: bytes.Repeat([]byte{byte(i)}, 20+(i*j*97)%1500)})
		}
		if i%4 != 3 {
			if err := plain.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := txn.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, kgo.TransactionEndTry(i%8 == 3)); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("after the open one")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tb.drain.Seal(logstore.PartitionKey(tb.topic(topic).id, 0)); err != nil {
		t.Fatal(err)
	}
}

// rawFetch sends req on c and returns the whole answer frame.
func rawFetch(t *testing.T, c io.ReadWriter, req *kmsg.FetchRequest, corr int32) []byte {
	t.Helper()
	if _, err := c.Write(frame(req, corr)); err != nil {
		t.Fatal(err)
	}
	var sz [4]byte
	if _, err := io.ReadFull(c, sz[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4+binary.BigEndian.Uint32(sz[:]))
	copy(b, sz[:])
	if _, err := io.ReadFull(c, b[4:]); err != nil {
		t.Fatal(err)
	}
	return b
}

// A Fetch answered from segment files over TCP is byte for byte the copy path's answer, at
// every offset, across segment boundaries, in flexible and older versions, with byte limits
// that cut batches, read_uncommitted and read_committed (aborted transactions listed, the
// open one holding the last stable offset back).
func TestZeroCopyFetchMatchesCopyPath(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	zeroCopyTopic(t, tb, "zc")
	p := tb.topic("zc").partition(0)
	if n := len(p.log().Segments()); n < 4 {
		t.Fatalf("%d segments, want several", n)
	}
	logStart, hwm := p.offsets()
	if p.lso() >= hwm {
		t.Fatalf("LSO %d, HWM %d: want an open transaction", p.lso(), hwm)
	}
	c := dialRaw(t, tb.addr)
	before := zeroCopyRanges.Load()
	corr := int32(0)
	for off := logStart; off <= hwm; off++ {
		for _, v := range []int16{4, 11, 16} {
			for _, iso := range []int8{0, 1} {
				for _, lim := range [][2]int32{{1 << 20, 1 << 20}, {1 << 20, 700}, {2500, 1 << 20}, {0, 1 << 20}} {
					c.SetDeadline(time.Now().Add(10 * time.Second))
					req := tb.fetchReq("zc", off, 0, 0, lim[0], lim[1])
					req.Version, req.IsolationLevel = v, iso
					corr++
					got := rawFetch(t, c, req, corr)
					resp := tb.fetchResponse(&ReqCtx{Version: v, Principal: "User:ANONYMOUS"}, req, nil)
					resp.Version = v
					want := server.AppendResponse(nil, 1, corr, resp)
					if !bytes.Equal(got, want) {
						t.Fatalf("offset %d v%d isolation %d limits %v: %d bytes over TCP, copy path %d bytes", off, v, iso, lim, len(got), len(want))
					}
				}
			}
		}
	}
	if zeroCopyRanges.Load() == before {
		t.Fatal("no answer came from a segment file")
	}
}

// Retention deletes the segments of a file-backed answer before it is written: the answer
// still carries the bytes read before (the open files keep them), never another segment's.
func TestZeroCopyFetchSurvivesRetention(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	zeroCopyTopic(t, tb, "zr")
	p := tb.topic("zr").partition(0)
	segs := p.log().Segments()
	req := tb.fetchReq("zr", 0, 0, 0, 1<<20, 1<<20)
	req.Version = 16
	rc := &ReqCtx{Version: 16, Principal: "User:ANONYMOUS"}
	want := tb.fetchResponse(rc, req, nil)
	zc := &zeroCopy{max: 1}
	resp := zc.answer(tb.fetchResponse(rc, req, zc))
	ff, ok := resp.(*fileFetch)
	if !ok {
		t.Fatalf("answer from segments is a %T, want a file-backed one", resp)
	}
	defer ff.Close()
	if err := p.log().DeleteRecordsBefore(segs[len(segs)-1].Base); err != nil {
		t.Fatal(err)
	}
	if got := p.log().Segments(); len(got) != 1 {
		t.Fatalf("%d segments left after DeleteRecords, want 1", len(got))
	}
	if err := ff.Inline(); err != nil {
		t.Fatal(err)
	}
	if got, w := ff.Topics[0].Partitions[0].RecordBatches, want.Topics[0].Partitions[0].RecordBatches; !bytes.Equal(got, w) {
		t.Fatalf("file-backed answer after retention: %d bytes, want the %d read before", len(got), len(w))
	}
}

// An answer holds at most maxZeroCopyRanges files open: a fetch of more partitions from
// segments sends the rest from memory, and the answer is the copy path's all the same.
func TestZeroCopyFetchBoundsOpenFiles(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	const parts = maxZeroCopyRanges + 6
	createTopic(t, tb.admin(t), "many", parts, nil)
	cl := tb.client(t, kgo.DefaultProduceTopic("many"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for p := range int32(parts) {
		recs = append(recs, &kgo.Record{Partition: p, Value: []byte(fmt.Sprint("value ", p))})
	}
	if err := cl.ProduceSync(ctxT(t, 20*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	tp := tb.topic("many")
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.MaxBytes, req.SessionEpoch = 16, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "many", tp.id
	for p := range int32(parts) {
		if err := tb.drain.Seal(logstore.PartitionKey(tp.id, p)); err != nil {
			t.Fatal(err)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = p, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	c := dialRaw(t, tb.addr)
	before := zeroCopyRanges.Load()
	got := rawFetch(t, c, req, 7)
	resp := tb.fetchResponse(&ReqCtx{Version: 16, Principal: "User:ANONYMOUS"}, req, nil)
	resp.Version = 16
	if want := server.AppendResponse(nil, 1, 7, resp); !bytes.Equal(got, want) {
		t.Fatalf("answer of %d partitions: %d bytes over TCP, copy path %d bytes", parts, len(got), len(want))
	}
	if n := zeroCopyRanges.Load() - before; n != maxZeroCopyRanges {
		t.Fatalf("%d partitions sent from files, want %d", n, maxZeroCopyRanges)
	}
}

// segFilesOpen returns the descriptors of this process open on segment files under dir,
// and how many of those files are deleted.
func segFilesOpen(t *testing.T, dir string) (n, deleted int) {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	for _, e := range es {
		p, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			continue
		}
		if strings.HasSuffix(p, ".seg") {
			n++
		} else if strings.HasSuffix(p, ".seg (deleted)") {
			n++
			deleted++
		}
	}
	return n, deleted
}

// nextAfter returns the offset after the last batch of recs (-1: none).
func nextAfter(recs []byte) int64 {
	next := int64(-1)
	for len(recs) >= 61 {
		size := 12 + int(int32(binary.BigEndian.Uint32(recs[8:])))
		if size > len(recs) {
			break
		}
		next = int64(binary.BigEndian.Uint64(recs)) + int64(int32(binary.BigEndian.Uint32(recs[23:]))) + 1
		recs = recs[size:]
	}
	return next
}

// Consumers catching up on one partition at the same time, over separate connections and
// with different byte limits, share the segments' open files: every answer is byte for
// byte the copy path's, read after read across segment boundaries. Retention afterwards
// leaves no descriptor on a deleted segment.
func TestZeroCopyFetchConcurrentCatchUp(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	zeroCopyTopic(t, tb, "zcc")
	p := tb.topic("zcc").partition(0)
	segs := p.log().Segments()
	logStart, _ := p.offsets()
	before := zeroCopyRanges.Load()
	limits := []int32{700, 2500, 9000, 1 << 20}
	errs := make(chan error, len(limits))
	for i, lim := range limits {
		c := dialRaw(t, tb.addr)
		go func() {
			errs <- func() error {
				c.SetDeadline(time.Now().Add(30 * time.Second))
				off, corr := logStart, int32(0)
				for range 10_000 { // bounded: each read moves forward or ends the loop
					req := tb.fetchReq("zcc", off, 0, 0, 1<<20, lim)
					req.Version = []int16{4, 11, 16, 17}[i]
					corr++
					if _, err := c.Write(frame(req, corr)); err != nil {
						return err
					}
					var sz [4]byte
					if _, err := io.ReadFull(c, sz[:]); err != nil {
						return err
					}
					got := make([]byte, 4+binary.BigEndian.Uint32(sz[:]))
					copy(got, sz[:])
					if _, err := io.ReadFull(c, got[4:]); err != nil {
						return err
					}
					resp := tb.fetchResponse(&ReqCtx{Version: req.Version, Principal: "User:ANONYMOUS"}, req, nil)
					resp.Version = req.Version
					if want := server.AppendResponse(nil, 1, corr, resp); !bytes.Equal(got, want) {
						return fmt.Errorf("limit %d offset %d: %d bytes over TCP, copy path %d bytes", lim, off, len(got), len(want))
					}
					next := nextAfter(resp.Topics[0].Partitions[0].RecordBatches)
					if next < 0 {
						return nil // caught up (the open transaction holds the rest back)
					}
					off = next
				}
				return fmt.Errorf("limit %d: not caught up after 10000 reads", lim)
			}()
		}()
	}
	for range limits {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if zeroCopyRanges.Load()-before < int64(len(segs)) {
		t.Fatalf("%d answers from segment files, want at least one per segment", zeroCopyRanges.Load()-before)
	}
	// Background prefetches may hold a file a little longer: wait for the count to settle.
	settled := func(ok func(n, del int) bool) (n, del int) {
		for deadline := time.Now().Add(10 * time.Second); ; {
			n, del = segFilesOpen(t, dir)
			if ok(n, del) || time.Now().After(deadline) {
				return n, del
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if n, del := settled(func(n, del int) bool { return n > 0 && n <= len(segs) && del == 0 }); n == 0 || n > len(segs) || del != 0 {
		t.Fatalf("%d segment files open (%d deleted) after the reads, want some, one per segment at most", n, del)
	}
	if err := p.log().DeleteRecordsBefore(segs[len(segs)-1].Base); err != nil {
		t.Fatal(err)
	}
	if n, del := settled(func(n, del int) bool { return n <= 1 && del == 0 }); n > 1 || del != 0 {
		t.Fatalf("%d segment files open (%d deleted) after retention left one segment", n, del)
	}
}
