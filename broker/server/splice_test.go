package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// testSpliced is a FetchResponse whose partitions 0 and 2 are file-backed.
type testSpliced struct {
	*kmsg.FetchResponse
	arena  []byte
	files  []FileRange
	closed *atomic.Int32
}

func (t *testSpliced) Mark(m byte) {
	for i := range t.arena {
		t.arena[i] = m
	}
}
func (t *testSpliced) Files() []FileRange { return t.files }
func (t *testSpliced) Inline() error {
	for i, f := range t.files {
		b := make([]byte, f.Len)
		if _, err := f.File.ReadAt(b, f.Off); err != nil {
			return err
		}
		t.Topics[0].Partitions[2*i].RecordBatches = b
	}
	return nil
}
func (t *testSpliced) Close() {
	t.closed.Add(1)
	for _, f := range t.files {
		f.File.Close()
	}
}

// spliceDispatcher answers Fetch with a spliced answer built from two files that are
// deleted before the answer is given, and ApiVersions plainly.
type spliceDispatcher struct {
	dir    string
	data   [2][]byte
	mem    []byte
	want   chan []byte // the inline encoding of each Fetch answer
	closed atomic.Int32
}

func (d *spliceDispatcher) Versions(key int16) (int16, int16, bool) {
	switch key {
	case 1:
		return 4, 17, true
	case 18:
		return 0, 3, true
	}
	return 0, 0, false
}

func (d *spliceDispatcher) answer(version int16, recs [3][]byte) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = version
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic = "t"
	for i := range 3 {
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition, rp.HighWatermark = int32(i), 1000+int64(i)
		rp.RecordBatches = recs[i]
		rt.Partitions = append(rt.Partitions, rp)
	}
	resp.Topics = append(resp.Topics, rt)
	return resp
}

func (d *spliceDispatcher) Dispatch(c *Conn, h *Header, req kmsg.Request, respond func(kmsg.Response)) {
	if h.Key != 1 {
		respond(req.ResponseKind())
		return
	}
	full := d.answer(h.Version, [3][]byte{d.data[0][5:905], d.mem, d.data[1][100:]})
	d.want <- AppendResponse(nil, h.Key, h.CorrelationID, full)
	if !c.ZeroCopy() {
		respond(full)
		return
	}
	sp := &testSpliced{arena: make([]byte, 2), closed: &d.closed}
	for i, off := range [][2]int64{{5, 900}, {100, int64(len(d.data[1]) - 100)}} {
		name := filepath.Join(d.dir, "f"+string(rune('0'+i)))
		f, err := os.Open(name)
		if err != nil {
			panic(err)
		}
		os.Remove(name) // deleted (retention) before the answer is written: the open file keeps it
		sp.files = append(sp.files, FileRange{File: f, Off: off[0], Len: off[1]})
	}
	sp.FetchResponse = d.answer(h.Version, [3][]byte{sp.arena[0:1], d.mem, sp.arena[1:2]})
	respond(sp)
}

func readWholeFrame(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4+binary.BigEndian.Uint32(sz[:]))
	copy(b, sz[:])
	if _, err := io.ReadFull(r, b[4:]); err != nil {
		t.Fatal(err)
	}
	return b
}

// A spliced answer reaches the client byte for byte as its inline encoding would, in
// flexible and non-flexible versions, from files deleted before the write, followed by the
// next answer on the connection; its files are closed once written.
func TestSplicedAnswerMatchesInlineEncoding(t *testing.T) {
	dir := t.TempDir()
	d := &spliceDispatcher{dir: dir, mem: []byte("in memory"), want: make(chan []byte, 1)}
	for i := range d.data {
		d.data[i] = bytes.Repeat([]byte{byte('a' + i), byte(i)}, 3000+i*70000) // the second spans chunks of the window
	}
	_, addr := startTestServer(t, d)
	c := dialDeadline(t, addr)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	for n, v := range []int16{4, 11, 12, 16, 17} {
		for i := range d.data {
			if err := os.WriteFile(filepath.Join(dir, "f"+string(rune('0'+i))), d.data[i], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		req := kmsg.NewPtrFetchRequest()
		req.Version = v
		av := kmsg.NewPtrApiVersionsRequest()
		av.Version = 0
		if _, err := c.Write(append(f.AppendRequest(nil, req, int32(2*n)), f.AppendRequest(nil, av, int32(2*n+1))...)); err != nil {
			t.Fatal(err)
		}
		got := readWholeFrame(t, c)
		want := <-d.want
		if !bytes.Equal(got, want) {
			t.Fatalf("v%d: spliced answer (%d bytes) differs from the inline encoding (%d bytes)", v, len(got), len(want))
		}
		if next := readWholeFrame(t, c); int32(binary.BigEndian.Uint32(next[4:])) != int32(2*n+1) {
			t.Fatalf("v%d: the next answer has correlation ID %d", v, binary.BigEndian.Uint32(next[4:]))
		}
		if got := d.closed.Load(); got != int32(n+1) {
			t.Fatalf("v%d: %d answers closed their files, want %d", v, got, n+1)
		}
	}
}

// A TLS connection is never zero-copy.
func TestZeroCopyOnlyOnPlainTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if (&Conn{nc: a}).ZeroCopy() {
		t.Error("a pipe is zero-copy")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !(&Conn{nc: nc}).ZeroCopy() {
		t.Error("a TCP connection is not zero-copy")
	}
}

// Ranges of one file are sent concurrently to several connections, each larger than the
// socket buffers (the sends wait for the readers) and than a writeChunk: every reader gets
// exactly its range, and the file's own position is neither used nor moved (readers share
// the descriptor). A range past the file's end is an error, not a short frame.
func TestSendRangeSharedFile(t *testing.T) {
	data := make([]byte, 3*writeChunk+12345)
	for i := range data {
		data[i] = byte(i * 7 / 5)
	}
	name := filepath.Join(t.TempDir(), "seg")
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(777, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ranges := [][2]int64{{0, int64(len(data))}, {1, 2*writeChunk + 3}, {int64(len(data)) - 10, 10}, {writeChunk - 1, writeChunk + 2}}
	type result struct {
		i   int
		got []byte
		err error
	}
	results := make(chan result, len(ranges))
	for i, r := range ranges {
		go func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				results <- result{i, nil, err}
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			got := make([]byte, r[1])
			_, err = io.ReadFull(c, got)
			results <- result{i, got, err}
		}()
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		go func() {
			err := sendRange(sc, FileRange{File: f, Off: r[0], Len: r[1]}, func() { sc.SetWriteDeadline(time.Now().Add(20 * time.Second)) })
			if err != nil {
				results <- result{i, nil, err}
			}
		}()
	}
	for range ranges {
		res := <-results
		if res.err != nil {
			t.Fatalf("range %d: %v", res.i, res.err)
		}
		r := ranges[res.i]
		if !bytes.Equal(res.got, data[r[0]:r[0]+r[1]]) {
			t.Fatalf("range %d (%d bytes at %d): the bytes differ", res.i, r[1], r[0])
		}
	}
	if pos, err := f.Seek(0, io.SeekCurrent); err != nil || pos != 777 {
		t.Fatalf("file position %d after the sends (%v), want 777", pos, err)
	}
	// Past the end.
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sendRange(sc, FileRange{File: f, Off: int64(len(data)) - 5, Len: 10}, func() {}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a range past the file's end: %v, want io.ErrUnexpectedEOF", err)
	}
}

// warnCounter counts the records of WARN level and above a logger is given.
type warnCounter struct{ n atomic.Int32 }

func (w *warnCounter) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		w.n.Add(1)
	}
	return nil
}
func (w *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnCounter) WithGroup(string) slog.Handler      { return w }

// A client that goes away in the middle of a file-backed answer (a consumer closing) is no
// warning, as on the copy path; the answer's files are still closed.
func TestSplicedAnswerPeerGoneIsNoWarning(t *testing.T) {
	dir := t.TempDir()
	d := &spliceDispatcher{dir: dir, mem: []byte("in memory"), want: make(chan []byte, 1)}
	for i := range d.data {
		d.data[i] = bytes.Repeat([]byte{byte('a' + i)}, 16<<20) // far more than the socket buffers hold
		if err := os.WriteFile(filepath.Join(dir, "f"+string(rune('0'+i))), d.data[i], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var warns warnCounter
	s := New(Config{Logger: slog.New(&warns)}, d)
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = 12
	if _, err := c.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")).AppendRequest(nil, req, 1)); err != nil {
		t.Fatal(err)
	}
	<-d.want // the answer is being sent
	var sz [4]byte
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, sz[:]); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetLinger(0) // a reset, with most of the answer unread
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for d.closed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if d.closed.Load() != 1 {
		t.Fatal("the answer's files were not closed after the peer went away")
	}
	if n := warns.n.Load(); n != 0 {
		t.Fatalf("%d warnings for a peer that closed mid-answer", n)
	}
}
