package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// bigDispatcher answers Metadata with a response of about bigResponseBytes (70 topics with
// 30,000-byte names) and ApiVersions with its empty response.
type bigDispatcher struct{}

const bigResponseBytes = 70 * 30_000

var bigName = strings.Repeat("t", 30_000)

func (bigDispatcher) Versions(key int16) (int16, int16, bool) {
	switch key {
	case 3:
		return 0, 12, true
	case 18:
		return 0, 3, true
	}
	return 0, 0, false
}

func (bigDispatcher) Dispatch(c *Conn, h *Header, req kmsg.Request, respond func(kmsg.Response)) {
	resp := req.ResponseKind()
	if m, ok := resp.(*kmsg.MetadataResponse); ok {
		for i := 0; i < 70; i++ {
			t := kmsg.NewMetadataResponseTopic()
			t.Topic = kmsg.StringPtr(bigName)
			m.Topics = append(m.Topics, t)
		}
	}
	respond(resp)
}

func startServerWith(t *testing.T, cfg Config, d Dispatcher) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(cfg, d)
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, l.Addr().String()
}

// dial connects to addr; the connection is closed before the server shuts down.
func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// await polls cond every few milliseconds for at most 20 s.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 4000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// Many connections ask for a ~2 MB Metadata answer several times and never read. The encoded
// responses held by the server never exceed the response budget (writers wait for it, and
// those connections stop reading), and a well-behaved client on another connection is still
// answered.
func TestResponseBudgetBoundsUnreadResponses(t *testing.T) {
	const limit = 5<<20 + 12345
	s, addr := startServerWith(t, Config{MaxResponseMemoryBytes: limit}, bigDispatcher{})
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	const conns, perConn = 30, 4
	for i := 0; i < conns; i++ {
		c := dial(t, addr)
		c.SetReadBuffer(4096) // the kernel absorbs less of what is never read
		var reqs []byte
		for j := 0; j < perConn; j++ {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 12
			reqs = append(reqs, f.AppendRequest(nil, req, int32(j))...)
		}
		if _, err := c.Write(reqs); err != nil {
			t.Fatal(err)
		}
	}
	// Back-pressure happened: responses waited for the budget.
	await(t, "a response waiting for budget", func() bool { return s.Stats().ResponseWaits > 0 })

	good := dial(t, addr)
	good.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(good)
	for i := 0; i < 3; i++ {
		req := kmsg.NewPtrApiVersionsRequest()
		if _, err := good.Write(f.AppendRequest(nil, req, int32(100+i))); err != nil {
			t.Fatal(err)
		}
		if got := readCorrelationIDs(t, br, 1); got[0] != int32(100+i) {
			t.Fatalf("well-behaved client got correlation ID %d, want %d", got[0], 100+i)
		}
	}
	st := s.Stats()
	if st.ResponseBytesPeak > limit {
		t.Fatalf("held %d response bytes at peak, budget %d", st.ResponseBytesPeak, limit)
	}
	if st.ResponseBytesPeak < bigResponseBytes {
		t.Fatalf("peak %d: the big responses were never held", st.ResponseBytesPeak)
	}
}

// One response larger than the whole budget still goes out (alone), so no size deadlocks.
func TestResponseLargerThanBudgetGoesAlone(t *testing.T) {
	s, addr := startServerWith(t, Config{MaxResponseMemoryBytes: 64 << 10}, bigDispatcher{})
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	var reqs []byte
	for j := 0; j < 3; j++ {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		reqs = append(reqs, f.AppendRequest(nil, req, int32(j))...)
	}
	if _, err := c.Write(reqs); err != nil {
		t.Fatal(err)
	}
	if got := readCorrelationIDs(t, bufio.NewReader(c), 3); got[2] != 2 {
		t.Fatalf("correlation IDs %v", got)
	}
	await(t, "the budget to be free", func() bool { return s.Stats().ResponseBytes == 0 })
}

// Connections announcing 100 MB frames and stalling after 100 KiB hold about what they sent
// (a 128 KiB buffer each), not what they announced, and give it back when they close.
func TestStalledHugeFramesHoldWhatWasSent(t *testing.T) {
	s, addr := startServerWith(t, Config{}, bigDispatcher{})
	const n, sent = 20, 100 << 10
	var conns []*net.TCPConn
	for i := 0; i < n; i++ {
		c := dial(t, addr)
		half := binary.BigEndian.AppendUint32(nil, 100_000_000)
		half = append(half, make([]byte, sent)...)
		if _, err := c.Write(half); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Each has read 100 KiB into a buffer grown from 64 KiB to 128 KiB, and then waits.
	await(t, "all half-frames read", func() bool { return s.Stats().RequestBytes == n*128<<10 })
	if st := s.Stats(); st.RequestBytesPeak != n*128<<10 {
		t.Fatalf("stalled half-frames held %d bytes at peak, want %d (128 KiB each)", st.RequestBytesPeak, n*128<<10)
	}
	for _, c := range conns {
		c.Close()
	}
	await(t, "the request budget to be free", func() bool { return s.Stats().RequestBytes == 0 })
}

// When the request budget is exhausted by a stalled frame, a new frame waits (it is not
// read) until budget is released; then it is answered.
func TestRequestBudgetBackPressure(t *testing.T) {
	s, addr := startServerWith(t, Config{MaxRequestMemoryBytes: 256 << 10}, bigDispatcher{})
	staller := dial(t, addr)
	// 300 KiB announced, 64 KiB + 1 sent: the frame takes its whole buffer (alone: larger
	// than the budget), a pooled one of 384 KiB, and stalls.
	held := int64(holdFor(300 << 10))
	half := append(binary.BigEndian.AppendUint32(nil, 300<<10), make([]byte, 64<<10+1)...)
	if _, err := staller.Write(half); err != nil {
		t.Fatal(err)
	}
	await(t, "the stalled frame's bytes taken", func() bool { return s.Stats().RequestBytes == held })
	good := dial(t, addr)
	good.SetDeadline(time.Now().Add(20 * time.Second))
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	if _, err := good.Write(f.AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 7)); err != nil {
		t.Fatal(err)
	}
	await(t, "the request to wait for budget", func() bool { return s.Stats().RequestWaits == 1 })
	staller.Close()
	if got := readCorrelationIDs(t, bufio.NewReader(good), 1); got[0] != 7 {
		t.Fatalf("correlation ID %d", got[0])
	}
	if st := s.Stats(); st.RequestBytesPeak != held || held != 384<<10 {
		t.Fatalf("peak %d, want the stalled frame's buffer alone (%d)", st.RequestBytesPeak, held)
	}
}

// Connections that announce 16 MiB frames (the pooled range) and send nothing more hold
// 64 KiB each, not 16 MiB, so a handful of them cannot exhaust the request budget and stop
// everyone else's reading.
func TestStalledFramesDoNotExhaustRequestBudget(t *testing.T) {
	s, addr := startServerWith(t, Config{MaxRequestMemoryBytes: 2 << 20}, bigDispatcher{})
	const n = 20
	for i := 0; i < n; i++ {
		c := dial(t, addr)
		if _, err := c.Write(binary.BigEndian.AppendUint32(nil, maxPooledFrame)); err != nil {
			t.Fatal(err)
		}
	}
	await(t, "all frames started", func() bool { return s.Stats().RequestBytes == n*firstStep })
	good := dial(t, addr)
	good.SetDeadline(time.Now().Add(20 * time.Second))
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	if _, err := good.Write(f.AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 7)); err != nil {
		t.Fatal(err)
	}
	if got := readCorrelationIDs(t, bufio.NewReader(good), 1); got[0] != 7 {
		t.Fatalf("correlation ID %d", got[0])
	}
	if st := s.Stats(); st.RequestWaits != 0 || st.RequestBytesPeak > n*firstStep+1024 {
		t.Fatalf("waits %d, peak %d: stalled frames took more than their first step", st.RequestWaits, st.RequestBytesPeak)
	}
}

// An idle connection gives its read buffer back: the reader waits for the socket without
// one, and takes one again when bytes arrive.
func TestIdleConnectionReleasesReadBuffer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client := dial(t, l.Addr().String())
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if !canPeek {
		t.Skip("no peeking on this platform: idle connections keep their buffer")
	}
	idle := make(chan bool, 4)
	testHookIdle = func(r *connReader) { idle <- r.buf == nil }
	defer func() { testHookIdle = nil }()
	r := newConnReader(sc)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2; i++ {
			rd, err := r.next()
			if err != nil {
				t.Error(err)
				return
			}
			var b [3]byte
			if _, err := io.ReadFull(rd, b[:]); err != nil || string(b[:]) != "abc" {
				t.Errorf("read %q, %v", b, err)
				return
			}
		}
		r.release()
	}()
	for i := 0; i < 2; i++ {
		if released := <-idle; !released {
			t.Fatal("idle connection still holds its read buffer")
		}
		client.Write([]byte("abc"))
	}
	wg.Wait()
}

// ApiVersions above the broker's versions is answered whatever its body (Kafka answers
// UNSUPPORTED_VERSION; the client then retries at v0), even when the body does not decode
// at that version.
func TestApiVersionsAboveMaxWithUndecodableBody(t *testing.T) {
	_, addr := startServerWith(t, Config{}, bigDispatcher{})
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	// key 18, v5, correlation 9, client id "x", no header tags, then a compact string whose
	// length runs past the frame.
	body := []byte{0, 18, 0, 5, 0, 0, 0, 9, 0, 1, 'x', 0, 0x7f, 'a'}
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)); err != nil {
		t.Fatal(err)
	}
	if got := readCorrelationIDs(t, bufio.NewReader(c), 1); got[0] != 9 {
		t.Fatalf("correlation ID %d, want 9", got[0])
	}
}

// A half-frame stalling exactly at a growth step (64 KiB sent) holds 64 KiB: the buffer
// grows only when more bytes arrive.
func TestStalledFrameAtStepDoesNotGrow(t *testing.T) {
	s, addr := startServerWith(t, Config{}, bigDispatcher{})
	c := dial(t, addr)
	half := append(binary.BigEndian.AppendUint32(nil, 100_000_000), make([]byte, 64<<10)...)
	if _, err := c.Write(half); err != nil {
		t.Fatal(err)
	}
	// Send one more byte on a second connection stalled the same way, so the test knows the
	// first one's 64 KiB were consumed when the second one has grown.
	c2 := dial(t, addr)
	if _, err := c2.Write(append(half, 1)); err != nil {
		t.Fatal(err)
	}
	await(t, "both half-frames read", func() bool { return s.Stats().RequestBytes >= 64<<10+128<<10 })
	if got := s.Stats().RequestBytes; got != 64<<10+128<<10 {
		t.Fatalf("held %d bytes, want %d (64 KiB + 128 KiB)", got, 64<<10+128<<10)
	}
}

// pipeListener hands out one end of an in-memory pipe: nothing is buffered in a kernel, so
// a client that does not read blocks the server's writes at once.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// countingDispatcher is bigDispatcher counting the requests it was given.
type countingDispatcher struct {
	bigDispatcher
	mu sync.Mutex
	n  int
}

func (d *countingDispatcher) Dispatch(c *Conn, h *Header, req kmsg.Request, respond func(kmsg.Response)) {
	d.mu.Lock()
	d.n++
	d.mu.Unlock()
	d.bigDispatcher.Dispatch(c, h, req, respond)
}

// A client that pipelines many requests with big answers and reads none: once more than
// connDoneAnswers answers (or connHoldBytes bytes) wait to be written, its connection reads
// no further request, so the broker does not build answers for all of them.
func TestUnreadAnswersStopTheConnectionsReader(t *testing.T) {
	d := &countingDispatcher{}
	l := &pipeListener{conns: make(chan net.Conn, 1), done: make(chan struct{})}
	s := New(Config{}, d)
	go s.Serve(l)
	client, server := net.Pipe()
	l.conns <- server
	t.Cleanup(func() {
		client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	const n = 2000
	var reqs []byte
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	for j := 0; j < n; j++ {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		reqs = append(reqs, f.AppendRequest(nil, req, int32(j))...)
	}
	go client.Write(reqs) // blocks once the server stops reading; ends when client closes
	roomWaits := func() int64 {
		s.resps.mu.Lock()
		defer s.resps.mu.Unlock()
		return s.resps.roomWaits
	}
	// The writer blocks writing the first answer (nobody reads the pipe) and holds its
	// bytes; the reader then stops for good.
	await(t, "the reader to stop", func() bool { return roomWaits() == 1 })
	d.mu.Lock()
	got := d.n
	d.mu.Unlock()
	if got < 1 || got > connDoneAnswers+1 {
		t.Fatalf("%d requests dispatched while no answer could be written, want 1..%d", got, connDoneAnswers+1)
	}
	// The writer holds the first answer, blocked writing it; the reader is still stopped.
	await(t, "the first answer held", func() bool { return s.Stats().ResponseBytes >= bigResponseBytes })
	d.mu.Lock()
	again := d.n
	d.mu.Unlock()
	if again != got || roomWaits() != 1 {
		t.Fatalf("dispatched %d then %d, reader stops %d: the reader went on", got, again, roomWaits())
	}
}

// A client that sends requests and reads none of the answers: while its first answer waits
// to be written the reader reads no further request (as Kafka mutes the connection), so one
// answer is built for it, not one per pipelined request.
func TestStuckWriterStopsReaderAtOnce(t *testing.T) {
	d := &countingDispatcher{}
	l := &pipeListener{conns: make(chan net.Conn, 1), done: make(chan struct{})}
	s := New(Config{WriteTimeout: -1}, d)
	go s.Serve(l)
	client, server := net.Pipe()
	l.conns <- server
	t.Cleanup(func() {
		client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	var reqs []byte
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	for j := 0; j < 200; j++ {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		reqs = append(reqs, f.AppendRequest(nil, req, int32(j))...)
	}
	go client.Write(reqs)
	await(t, "the first answer held by a stuck write", func() bool { return s.Stats().ResponseBytes >= bigResponseBytes })
	roomWaits := func() int64 {
		s.resps.mu.Lock()
		defer s.resps.mu.Unlock()
		return s.resps.roomWaits
	}
	await(t, "the reader to stop", func() bool { return roomWaits() >= 1 })
	d.mu.Lock()
	got := d.n
	d.mu.Unlock()
	if got != 1 {
		t.Fatalf("%d requests dispatched while the first answer could not be written, want 1", got)
	}
}

// A peer that stops reading is closed after WriteTimeout, and its response budget comes back.
func TestWriteTimeoutClosesStalledPeer(t *testing.T) {
	s, addr := startServerWith(t, Config{WriteTimeout: 300 * time.Millisecond}, bigDispatcher{})
	c := dial(t, addr)
	c.SetReadBuffer(4096)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	var reqs []byte
	for j := 0; j < 8; j++ { // 17 MB of answers: more than the kernel buffers absorb
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		reqs = append(reqs, f.AppendRequest(nil, req, int32(j))...)
	}
	if _, err := c.Write(reqs); err != nil {
		t.Fatal(err)
	}
	await(t, "the stalled connection closed", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 0
	})
	if st := s.Stats(); st.ResponseBytes != 0 {
		t.Fatalf("%d response bytes still held after the close", st.ResponseBytes)
	}
}

// sizedDispatcher is bigDispatcher telling the server, before it builds a Metadata answer,
// how much memory the answer will hold.
type sizedDispatcher struct{ bigDispatcher }

func (d *sizedDispatcher) ResponseEstimate(h *Header, req kmsg.Request) int64 {
	if h.Key == 3 {
		return bigResponseBytes
	}
	return 0
}

// Many connections ask for big Metadata answers and never read. Answers built and not yet
// encoded hold build budget, answers encoded hold response budget: neither exceeds its
// limit however many connections ask, so built answers waiting for the response budget
// cannot pile up one per connection.
func TestBuildBudgetBoundsBuiltAnswers(t *testing.T) {
	const limit = 5<<20 + 12345 // two estimates
	d := &sizedDispatcher{}
	s, addr := startServerWith(t, Config{MaxResponseMemoryBytes: limit}, d)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	const conns, perConn = 30, 4
	for i := 0; i < conns; i++ {
		c := dial(t, addr)
		c.SetReadBuffer(4096)
		var reqs []byte
		for j := 0; j < perConn; j++ {
			req := kmsg.NewPtrMetadataRequest()
			req.Version = 12
			reqs = append(reqs, f.AppendRequest(nil, req, int32(j))...)
		}
		if _, err := c.Write(reqs); err != nil {
			t.Fatal(err)
		}
	}
	await(t, "a request waiting for build budget", func() bool { return s.Stats().BuildWaits > 0 })
	good := dial(t, addr)
	good.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := good.Write(f.AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 7)); err != nil {
		t.Fatal(err)
	}
	if got := readCorrelationIDs(t, bufio.NewReader(good), 1); got[0] != 7 {
		t.Fatalf("correlation ID %d", got[0])
	}
	st := s.Stats()
	if st.BuildBytesPeak > limit || st.BuildBytesPeak < bigResponseBytes {
		t.Fatalf("build budget peak %d, want %d..%d", st.BuildBytesPeak, bigResponseBytes, limit)
	}
	if st.ResponseBytesPeak > limit {
		t.Fatalf("response budget peak %d over %d", st.ResponseBytesPeak, limit)
	}
}

func (d *sizedDispatcher) ResponseMemory(resp kmsg.Response) int64 { return 0 }

// meteredDispatcher estimates nothing before building a Metadata answer (as a long-polling
// Fetch whose data arrives while it waits) but tells what the built answer holds.
type meteredDispatcher struct{ bigDispatcher }

func (d *meteredDispatcher) ResponseEstimate(h *Header, req kmsg.Request) int64 { return 0 }

func (d *meteredDispatcher) ResponseMemory(resp kmsg.Response) int64 {
	if _, ok := resp.(*kmsg.MetadataResponse); ok {
		return bigResponseBytes
	}
	return 0
}

// An answer larger than its estimate is counted at its built size as it is given, even past
// the budget: the budget then shows what built answers hold, and everything goes back once
// the connections are gone.
func TestBuildBudgetCountsBuiltSize(t *testing.T) {
	const limit = 1 << 20 // less than one answer
	s, addr := startServerWith(t, Config{MaxResponseMemoryBytes: limit}, &meteredDispatcher{})
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	var cs []net.Conn
	for i := 0; i < 3; i++ {
		c := dial(t, addr)
		c.SetReadBuffer(4096)
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		if _, err := c.Write(f.AppendRequest(nil, req, 1)); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	await(t, "built answers counted", func() bool { return s.Stats().BuildBytesPeak >= bigResponseBytes })
	for _, c := range cs {
		c.Close()
	}
	await(t, "the budgets given back", func() bool {
		st := s.Stats()
		return st.BuildBytes == 0 && st.ResponseBytes == 0
	})
}

// Once every connection waits for bytes again after traffic, OnIdle runs (the broker hands
// the burst's memory back then); a connection reading a frame is not idle.
func TestOnIdleAfterTraffic(t *testing.T) {
	idle := make(chan struct{}, 10)
	s, addr := startServerWith(t, Config{OnIdle: func() { idle <- struct{}{} }}, bigDispatcher{})
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	if _, err := c.Write(f.AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 7)); err != nil {
		t.Fatal(err)
	}
	if got := readCorrelationIDs(t, bufio.NewReader(c), 1); got[0] != 7 {
		t.Fatalf("correlation ID %d", got[0])
	}
	select {
	case <-idle:
	case <-time.After(10 * time.Second):
		t.Fatal("OnIdle not called after the connection went idle")
	}
	// Half a frame: the connection is busy until the rest comes.
	if _, err := c.Write([]byte{0, 0, 0, 100, 1}); err != nil {
		t.Fatal(err)
	}
	await(t, "the connection busy", func() bool { return s.busy.Load() == 1 })
}

// An idle connection keeps no writer goroutine: it parks once its answers are written and
// the next request starts one again, answers in order.
func TestWriterParksWhileIdle(t *testing.T) {
	s, addr := startServerWith(t, Config{}, bigDispatcher{})
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	parked := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for sc := range s.conns {
			if sc.w == nil {
				return false
			}
			sc.w.mu.Lock()
			running := sc.w.running
			sc.w.mu.Unlock()
			return !running
		}
		return false
	}
	for round := int32(0); round < 3; round++ {
		var reqs []byte
		for i := int32(0); i < 3; i++ {
			reqs = append(reqs, f.AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 10*round+i)...)
		}
		if _, err := c.Write(reqs); err != nil {
			t.Fatal(err)
		}
		got := readCorrelationIDs(t, br, 3)
		for i, id := range got {
			if id != 10*round+int32(i) {
				t.Fatalf("round %d: correlation IDs %v", round, got)
			}
		}
		await(t, "the writer parked", parked)
	}
}

// Four frames each larger than half the request budget, all with their first 64 KiB read
// before any grows: each waits for room the others hold, and nothing else holds any. The
// waiter holding the most goes over the limit, so all four are answered (before, the
// readers waited for each other for good: the bench's 1000-partition phase under a 16 MiB
// budget stopped the broker this way).
func TestFramesWaitingForEachOtherAllGoThrough(t *testing.T) {
	s, addr := startServerWith(t, Config{MaxRequestMemoryBytes: 512 << 10}, bigDispatcher{})
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	for i := 0; i < 10; i++ {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(bigName)
		req.Topics = append(req.Topics, rt)
	}
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")).AppendRequest(nil, req, 9)
	if len(frame) < 256<<10 || holdFor(len(frame)-4)-firstStep <= (512<<10)-4*firstStep {
		t.Fatalf("frame of %d bytes does not make the readers wait for each other", len(frame))
	}
	const n = 4
	conns := make([]*net.TCPConn, n)
	for i := range conns {
		conns[i] = dial(t, addr)
		conns[i].SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := conns[i].Write(frame[:4+firstStep]); err != nil {
			t.Fatal(err)
		}
	}
	await(t, "every frame's first step read", func() bool { return s.Stats().RequestBytes == n*firstStep })
	for _, c := range conns {
		if _, err := c.Write(frame[4+firstStep : 4+firstStep+1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		if _, err := c.Write(frame[4+firstStep+1:]); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range conns {
		if got := readCorrelationIDs(t, bufio.NewReader(c), 1); got[0] != 9 {
			t.Fatalf("connection %d: correlation ID %d", i, got[0])
		}
	}
	await(t, "the request budget to be free", func() bool { return s.Stats().RequestBytes == 0 })
	if st := s.Stats(); st.RequestWaits == 0 {
		t.Fatalf("no reader waited for the budget: the test did not make them wait (%+v)", st)
	}
}
