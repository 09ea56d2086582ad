package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// holdDispatcher answers ApiVersions requests; requests with an odd correlation ID are held
// until release is closed, so later (even) responses complete before earlier ones.
type holdDispatcher struct {
	release chan struct{}
	wg      sync.WaitGroup
}

func (d *holdDispatcher) Versions(key int16) (int16, int16, bool) { return 0, 3, key == 18 }

func (d *holdDispatcher) Dispatch(c *Conn, h *Header, req kmsg.Request, respond func(kmsg.Response)) {
	resp := req.ResponseKind()
	if h.CorrelationID%2 == 0 {
		respond(resp)
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		<-d.release
		respond(resp)
	}()
}

func startTestServer(t *testing.T, d Dispatcher) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{}, d)
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, l.Addr().String()
}

// dialDeadline connects to a test server; the connection fails its reads and writes after
// 10 s and is closed when the test ends.
func dialDeadline(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func readCorrelationIDs(t *testing.T, r io.Reader, n int) []int32 {
	t.Helper()
	var out []int32
	for len(out) < n {
		var sz [4]byte
		if _, err := io.ReadFull(r, sz[:]); err != nil {
			t.Fatalf("after %d responses: %v", len(out), err)
		}
		body := make([]byte, binary.BigEndian.Uint32(sz[:]))
		if _, err := io.ReadFull(r, body); err != nil || len(body) < 4 {
			t.Fatalf("response body: %v (len %d)", err, len(body))
		}
		out = append(out, int32(binary.BigEndian.Uint32(body)))
	}
	return out
}

// Responses that complete out of order are still written in request order, including when
// several completed responses are gathered into one write.
func TestResponsesInRequestOrderWhenCompletedOutOfOrder(t *testing.T) {
	d := &holdDispatcher{release: make(chan struct{})}
	_, addr := startTestServer(t, d)
	c := dialDeadline(t, addr)
	const n = 20
	var frames []byte
	for i := 0; i < n; i++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 0
		frames = append(frames, kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")).AppendRequest(nil, req, int32(i))...)
	}
	if _, err := c.Write(frames); err != nil {
		t.Fatal(err)
	}
	// Nothing can be written before response 1 (held) except response 0.
	br := bufio.NewReader(c)
	if got := readCorrelationIDs(t, br, 1); got[0] != 0 {
		t.Fatalf("first response has correlation ID %d, want 0", got[0])
	}
	close(d.release)
	got := readCorrelationIDs(t, br, n-1)
	for i, id := range got {
		if id != int32(i+1) {
			t.Fatalf("response %d has correlation ID %d, want %d (all: %v)", i+1, id, i+1, got)
		}
	}
	d.wg.Wait()
}

// max.connections: at the limit a new connection is not served until one closes; raising
// the limit serves it at once.
func TestMaxConnectionsWaitsForASlot(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var limit sync.Map // "n" -> int
	limit.Store("n", 2)
	s := New(Config{MaxConnections: func() int { v, _ := limit.Load("n"); return v.(int) }}, &holdDispatcher{})
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	corr := int32(0)
	// ask sends an ApiVersions (even correlation ID: answered at once) and reports whether
	// its answer came within wait.
	ask := func(c net.Conn, wait time.Duration) bool {
		t.Helper()
		req := kmsg.NewPtrApiVersionsRequest()
		corr += 2
		if _, err := c.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")).AppendRequest(nil, req, corr)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(wait))
		var sz [4]byte
		_, err := io.ReadFull(c, sz[:])
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return false
			}
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(sz[:]))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatal(err)
		}
		return true
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := dial(), dial()
	if !ask(a, 10*time.Second) || !ask(b, 10*time.Second) {
		t.Fatal("connections within the limit not served")
	}
	c := dial() // accepted by the kernel, not served
	if ask(c, 300*time.Millisecond) {
		t.Fatal("a third connection was served with max.connections 2")
	}
	a.Close()
	// Served once a slot is free: the answer to its first request arrives.
	if !ask(c, 10*time.Second) {
		t.Fatal("the waiting connection not served after another closed")
	}
	d := dial()
	if ask(d, 300*time.Millisecond) {
		t.Fatal("a fourth connection was served at the limit")
	}
	limit.Store("n", 3)
	s.LimitsChanged()
	if !ask(d, 10*time.Second) {
		t.Fatal("the waiting connection not served after the limit was raised")
	}
}
