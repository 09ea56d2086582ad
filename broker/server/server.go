// Package server accepts Kafka protocol connections, frames and decodes requests with kmsg,
// hands them to a Dispatcher and writes the responses back in request order. It knows nothing
// of topics or groups: everything Kafka-specific beyond the wire format lives in the Dispatcher.
package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Dispatcher is the broker side of the server.
type Dispatcher interface {
	// Versions reports the implemented version range of an API key; ok false means the key
	// is not implemented (the connection is closed, as Kafka does).
	Versions(key int16) (min, max int16, ok bool)
	// Dispatch handles one request. respond must be called exactly once, from any goroutine;
	// respond(nil) sends nothing (Produce acks=0). For an ApiVersions request whose version
	// is outside Versions, req is an empty ApiVersionsRequest carrying that version and the
	// Dispatcher answers with a v0 UNSUPPORTED_VERSION response (KIP-511).
	Dispatch(c *Conn, h *Header, req kmsg.Request, respond func(kmsg.Response))
}

// CloseConnection is a response value that sends nothing and closes the connection once the
// responses to earlier requests are written (Kafka does this for a failed acks=0 produce, so
// the client notices).
var CloseConnection kmsg.Response = closeConn{}

type closeConn struct{ kmsg.Response }

// CloseAfter wraps a response that is written and then, delay later, closes the connection (a
// failed SASL authentication is answered and dropped; Kafka waits
// connection.failed.authentication.delay.ms, so the client reads the answer before it sees the
// close). The Dispatcher must refuse anything the client sends meanwhile.
func CloseAfter(resp kmsg.Response, delay time.Duration) kmsg.Response {
	return closeAfter{resp, delay}
}

type closeAfter struct {
	kmsg.Response
	delay time.Duration
}

// Config configures a Server.
type Config struct {
	// MaxFrameBytes caps a request frame (default DefaultMaxFrameBytes).
	MaxFrameBytes int32
	// MaxInFlight bounds the requests per connection read but not yet answered; reading
	// pauses while it is reached (default 128).
	MaxInFlight int
	Logger      *slog.Logger
}

// Conn is one client connection. Auth holds per-connection authentication state (SASL).
type Conn struct {
	ID     uint64
	Remote net.Addr
	nc     net.Conn
	// Principal is "User:ANONYMOUS" until authentication sets it.
	Principal string
	// Auth is free for the Dispatcher's per-connection SASL state machine.
	Auth any
	// rawToken, when set, handles the next frame as a bare SASL token (see ExpectRawToken).
	rawToken func(token []byte) (resp []byte, ok bool)
}

// TLS returns the connection's TLS state once its handshake is done (always so by the time
// a request has been read), or nil for a plaintext connection.
func (c *Conn) TLS() *tls.ConnectionState {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	if !st.HandshakeComplete {
		return nil
	}
	return &st
}

// ExpectRawToken makes the next frame on c a bare SASL token rather than a Kafka request:
// after SaslHandshake v0 the client sends size-prefixed tokens without request headers, and
// the server answers each with a size-prefixed token (Kafka's pre-KIP-152 framing). fn
// returns the answer, or ok false to close the connection; it may call ExpectRawToken again
// for the next token. Call it from Dispatch before responding, so it is in place when the
// next frame is read (Dispatch runs on the connection's reading goroutine).
func (c *Conn) ExpectRawToken(fn func(token []byte) (resp []byte, ok bool)) { c.rawToken = fn }

// rawFrame is a response written as-is behind a size prefix (a bare SASL token).
type rawFrame struct {
	kmsg.Response
	b []byte
}

// RemoteHost is the client's IP (or the whole address if it has no port).
func (c *Conn) RemoteHost() string {
	if c.Remote == nil {
		return ""
	}
	h, _, err := net.SplitHostPort(c.Remote.String())
	if err != nil {
		return c.Remote.String()
	}
	return h
}

// Server serves the Kafka protocol on one or more listeners.
type Server struct {
	cfg  Config
	d    Dispatcher
	log  *slog.Logger
	next atomic.Uint64

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	closing   bool
	force     chan struct{}  // closed when Shutdown gives up waiting for in-flight requests
	wg        sync.WaitGroup // connections and accept loops
}

// New returns a server dispatching to d.
func New(cfg Config, d Dispatcher) *Server {
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 128
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{cfg: cfg, d: d, log: cfg.Logger, listeners: map[net.Listener]struct{}{}, conns: map[*Conn]struct{}{}, force: make(chan struct{})}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server: closed")

// Serve accepts connections on l until Shutdown. l may be a TLS listener.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := &Conn{ID: s.next.Add(1), Remote: nc.RemoteAddr(), nc: nc, Principal: "User:ANONYMOUS"}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// Shutdown stops accepting, stops reading new requests, waits until every request already
// read has been answered (or ctx ends), then closes all connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		// Wake the reader; the writer drains what is in flight and closes the socket.
		c.nc.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		close(s.force)
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

type slot struct {
	key     int16
	corr    int32
	version int16
	setVer  bool
	done    chan struct{}
	resp    kmsg.Response
}

func (s *Server) serveConn(c *Conn) {
	defer s.wg.Done()
	queue := make(chan *slot, s.cfg.MaxInFlight)
	writerDone := make(chan struct{})
	go s.writeLoop(c, queue, writerDone)
	err := s.readLoop(c, queue)
	close(queue)
	if err != nil && !errors.Is(err, io.EOF) && !isClosedOrTimeout(err) {
		s.log.Warn("closing connection", "conn", c.ID, "remote", c.Remote.String(), "err", err)
		// A malformed request: answer nothing further, close now.
		c.nc.Close()
	}
	<-writerDone
	c.nc.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func isClosedOrTimeout(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Server) readLoop(c *Conn, queue chan<- *slot) error {
	// Buffered: a small request costs one read syscall instead of two (size, then body), and
	// several pipelined requests often arrive in one read. Frames larger than the buffer are
	// read straight into their own slice.
	br := bufio.NewReaderSize(c.nc, readBufferSize)
	for {
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if closing {
			return nil
		}
		frame, pooled, err := readPooledFrame(br, s.cfg.MaxFrameBytes)
		if err != nil {
			return err
		}
		if fn := c.rawToken; fn != nil {
			c.rawToken = nil
			resp, ok := fn(frame)
			if !ok {
				return errRawToken
			}
			sl := &slot{done: make(chan struct{}), resp: rawFrame{b: resp}}
			close(sl.done)
			queue <- sl
			continue
		}
		h, req, err := ParseRequest(frame)
		if err != nil {
			return err
		}
		min, max, ok := s.d.Versions(h.Key)
		if !ok {
			return ErrUnknownAPIKey
		}
		sl := &slot{key: h.Key, corr: h.CorrelationID, version: h.Version, setVer: true, done: make(chan struct{})}
		if h.Version < min || h.Version > max || req == nil {
			if h.Key != 18 {
				return errors.New("unsupported version " + kmsg.NameForKey(h.Key))
			}
			r := kmsg.NewPtrApiVersionsRequest()
			r.Version = h.Version
			req = r
			sl.setVer = false
		}
		if h.Key != 0 {
			pooled = nil // the request may keep slices of its frame (see framepool.go)
		}
		queue <- sl // blocks while MaxInFlight requests are unanswered
		var once atomic.Bool
		s.d.Dispatch(c, &h, req, func(resp kmsg.Response) {
			if !once.CompareAndSwap(false, true) {
				panic("server: respond called twice")
			}
			sl.resp = resp
			close(sl.done)
			putFrame(pooled) // a Produce request is done with its frame once answered
		})
	}
}

// errRawToken closes a connection whose bare SASL token was refused.
var errRawToken = errors.New("SASL token refused")

// readBufferSize is the per-connection read buffer.
const readBufferSize = 32 << 10

// maxWriteBatch bounds the bytes of responses gathered into one write.
const maxWriteBatch = 1 << 20

// writeLoop writes responses in request order. Responses that are already complete when the
// previous one is written are gathered into one write (pipelined produce and fetch requests
// often complete together after one fsync), so a burst costs one syscall, not one each;
// the loop writes what it has before it waits for a response that is not ready yet.
func (s *Server) writeLoop(c *Conn, queue <-chan *slot, done chan<- struct{}) {
	defer close(done)
	var buf []byte
	broken := false
	flush := func() {
		if len(buf) > 0 && !broken {
			if _, err := c.nc.Write(buf); err != nil {
				broken = true
				c.nc.Close() // the reader notices and stops
			}
		}
		buf = buf[:0]
		if cap(buf) > 4*maxWriteBatch {
			buf = nil
		}
	}
	var held *slot // taken from the queue while gathering, not handled yet
	for {
		sl := held
		held = nil
		if sl == nil {
			select {
			case n, ok := <-queue:
				if !ok {
					flush()
					return
				}
				sl = n
			default:
				flush() // about to block: send what is gathered
				n, ok := <-queue
				if !ok {
					return
				}
				sl = n
			}
		}
		select {
		case <-sl.done:
		default:
			flush() // about to wait for this response: send what is gathered
			select {
			case <-sl.done:
			case <-s.force:
				broken = true
			}
		}
		if sl.resp == nil || broken {
			continue
		}
		if _, ok := sl.resp.(closeConn); ok {
			flush()
			broken = true
			c.nc.Close()
			continue
		}
		last, delay := false, time.Duration(0)
		if ca, ok := sl.resp.(closeAfter); ok {
			sl.resp, last, delay = ca.Response, true, ca.delay
		}
		if r, ok := sl.resp.(rawFrame); ok {
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(r.b)))
			buf = append(buf, r.b...)
			continue
		}
		if sl.setVer {
			sl.resp.SetVersion(sl.version)
		}
		buf = AppendResponse(buf, sl.key, sl.corr, sl.resp)
		if last {
			flush()
			broken = true
			if delay <= 0 {
				c.nc.Close()
			} else {
				time.AfterFunc(delay, func() { c.nc.Close() })
			}
			continue
		}
		if len(buf) >= maxWriteBatch {
			flush()
		}
	}
}
