// Package server accepts Kafka protocol connections, frames and decodes requests with kmsg,
// hands them to a Dispatcher and writes the responses back in request order. It knows nothing
// of topics or groups: everything Kafka-specific beyond the wire format lives in the Dispatcher.
package server

import (
	"context"
	"crypto/tls"
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

// ResponseSizer is implemented by a Dispatcher that can bound the memory of a request's
// answer before building it (Metadata: from the topics it will list; Fetch: from the data
// it can read now). The server reserves that much of the build budget
// (Config.MaxResponseMemoryBytes, counted apart from encoded bytes) before dispatching and
// gives it back once the answer is encoded, so answers built and waiting for the response
// budget cannot together exceed it: without it, 2,000 connections each asking for a 3 MB
// Metadata answer held 2,000 built answers at once.
type ResponseSizer interface {
	// ResponseEstimate returns the memory the answer to req will hold once built, or 0 if
	// it is small or cannot be told in advance.
	ResponseEstimate(h *Header, req kmsg.Request) int64
	// ResponseMemory returns the memory a built answer holds, or 0 to keep the estimate.
	// When it answers, the reservation becomes that figure as the answer is given: the
	// excess goes back, and what the estimate missed (a long poll's data that arrived while
	// it waited) is taken even beyond the budget (the answer exists), so no connection
	// dispatches an estimated request until enough is written.
	ResponseMemory(resp kmsg.Response) int64
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
	// pauses while it is reached (default 32: clients pipeline 5 to 8; each idle
	// connection keeps a queue of this many slots).
	MaxInFlight int
	// MaxRequestMemoryBytes bounds the bytes of request frames read but not yet answered,
	// across all connections (Kafka's queued.max.request.bytes); a connection waits before
	// reading a frame that does not fit, and the pool of request buffers is sized to it
	// (default DefaultMaxRequestMemoryBytes; negative: unbounded).
	MaxRequestMemoryBytes int64
	// MaxResponseMemoryBytes bounds the bytes of encoded responses not yet written, across
	// all connections; a connection whose response does not fit stops reading requests
	// until written bytes make room (default DefaultMaxResponseMemoryBytes; negative:
	// unbounded). It bounds as much again the estimated memory of answers being built or
	// built and not yet encoded (see ResponseSizer).
	MaxResponseMemoryBytes int64
	// WriteTimeout closes a connection whose peer takes no bytes of a response for this
	// long (a client that stopped reading holds its answers and their budget until then;
	// Kafka closes such connections after connections.max.idle.ms). Default
	// DefaultWriteTimeout; negative: never.
	WriteTimeout time.Duration
	Logger       *slog.Logger
	// OnIdle, if set, is called (on a goroutine of its own) once every connection has been
	// waiting for bytes, with no request being read, for a second after traffic: the moment
	// to hand a burst's memory back (the goroutines of 10,000 connections kept the stacks
	// their requests grew until the next garbage collection, 6 KB each).
	OnIdle func()
	// ConnOpened and ConnClosed, if set, are called once for each connection: when it is
	// accepted (before its first request is read) and when it is gone (on the goroutine that
	// dispatched its requests, after the last one). The broker counts connections with them.
	ConnOpened, ConnClosed func(*Conn)
	// MaxConnections, if set, bounds the connections served at once (Kafka's
	// max.connections): at the limit a listener accepts one more connection and waits to
	// serve it until another closes, leaving the rest in the listen backlog, as Kafka's
	// acceptor does. It is read at each accept; call LimitsChanged after raising it.
	MaxConnections func() int
}

// DefaultWriteTimeout is Config.WriteTimeout's default: far longer than any client waits
// between two reads, far shorter than Kafka's 10-minute idle close, so a stalled peer gives
// its memory back within a minute.
const DefaultWriteTimeout = 60 * time.Second

// Default memory budgets. Requests: what keeps the WAL's group commit busy (a group being
// written and fsynced while the next ones fill: 3 x 4 MiB) with room to spare; more only
// holds memory while requests wait for the disk (measured: 32 MiB produced as fast as 1 GiB
// with a tenth of the memory, and 16 MiB as fast as 32 with one franz-go producer or the
// lean generator, ~30 MB less peak RSS). Responses: a small share of a 24 GiB
// machine, far above what normal traffic holds.
const (
	DefaultMaxRequestMemoryBytes  = 16 << 20
	DefaultMaxResponseMemoryBytes = 1 << 30
)

// Conn is one client connection. Auth holds per-connection authentication state (SASL).
type Conn struct {
	ID     uint64
	Remote net.Addr
	nc     net.Conn
	// Principal is "User:ANONYMOUS" until authentication sets it.
	Principal string
	// Auth is free for the Dispatcher's per-connection SASL state machine.
	Auth any

	// respWaiting is set (under the response budget's lock) while the writer waits for
	// response budget; the reader reads no new request meanwhile.
	respWaiting bool
	// respHeld is what the writer holds of the response budget (under its lock): encoded
	// responses not yet written. Above connHoldBytes the client is not keeping up and the
	// reader reads no new request, so a client that pipelines requests and does not read
	// cannot make the broker build answer after answer for it.
	respHeld int64
	// respDone counts answers given (respond called) and not yet written, under the
	// response budget's lock. Above connDoneAnswers the reader stops too: an answer's
	// bytes are known only once the writer encodes it, which may be after the reader has
	// dispatched many more requests.
	respDone int
	// respWriting is set (under the response budget's lock) while the writer is in a write
	// call: while it is, the reader reads no request beyond one queued behind the write, so
	// a peer that stops reading holds at most one answer built and not encoded (answers are
	// accounted in the budget only once encoded) besides those dispatched before the stall.
	respWriting bool
	// buildHeld is what c holds of the build budget (under its lock): estimates of answers
	// dispatched and not yet encoded.
	buildHeld int64
	// broken is closed by the writer when the connection can no longer be written, so a
	// reader waiting for budget stops.
	broken chan struct{}
	// rawToken, when set, handles the next frame as a bare SASL token (see ExpectRawToken).
	rawToken func(token []byte) (resp []byte, ok bool)
	// mute holds back the next request while a quota throttle lasts (mute.go).
	mute connMute
	// w is the handoff between the reader and the writer goroutine (writer.go).
	w *writerState
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

// IsTLS reports whether c came through a TLS listener (whether or not its handshake is done).
func (c *Conn) IsTLS() bool {
	_, ok := c.nc.(*tls.Conn)
	return ok
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
	stop      chan struct{}  // closed when Shutdown starts: readers waiting for budget stop
	reqs      *budget        // request frames read, not yet answered
	frames    *framePool     // Produce frame buffers, sized to reqs
	resps     *budget        // encoded responses not yet written
	builds    *budget        // estimated answers dispatched, not yet encoded (ResponseSizer)
	wg        sync.WaitGroup // connections and accept loops
	busy      atomic.Int64   // connections reading a request (connReader.busy)
	connGone  *sync.Cond     // on mu: a connection closed, the limit changed, or Shutdown
	wakes     atomic.Uint64  // connections that became busy, ever
}

// New returns a server dispatching to d.
func New(cfg Config, d Dispatcher) *Server {
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 32
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxRequestMemoryBytes == 0 {
		cfg.MaxRequestMemoryBytes = DefaultMaxRequestMemoryBytes
	}
	if cfg.MaxResponseMemoryBytes == 0 {
		cfg.MaxResponseMemoryBytes = DefaultMaxResponseMemoryBytes
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	s := &Server{
		cfg: cfg, d: d, log: cfg.Logger, listeners: map[net.Listener]struct{}{}, conns: map[*Conn]struct{}{},
		force: make(chan struct{}), stop: make(chan struct{}),
		reqs: newBudget(cfg.MaxRequestMemoryBytes), frames: newFramePool(cfg.MaxRequestMemoryBytes), resps: newBudget(cfg.MaxResponseMemoryBytes),
		builds: newBudget(cfg.MaxResponseMemoryBytes),
	}
	s.connGone = sync.NewCond(&s.mu)
	return s
}

// LimitsChanged wakes listeners waiting for a connection slot to read MaxConnections again.
func (s *Server) LimitsChanged() {
	s.mu.Lock()
	s.connGone.Broadcast()
	s.mu.Unlock()
}

// Stats is a snapshot of the server's memory accounting.
type Stats struct {
	// RequestBytes are the bytes of request frames read (or being read) and not yet
	// answered; RequestBytesPeak is the most ever held; RequestWaits counts frames that
	// waited for the budget.
	RequestBytes, RequestBytesPeak, RequestWaits int64
	// ResponseBytes are the bytes of encoded responses not yet written; ResponseBytesPeak is
	// the most ever held; ResponseWaits counts responses that waited for the budget.
	ResponseBytes, ResponseBytesPeak, ResponseWaits int64
	// BuildBytes are the estimated bytes of answers dispatched and not yet encoded
	// (ResponseSizer); BuildBytesPeak the most ever held; BuildWaits counts requests that
	// waited for the build budget before being dispatched.
	BuildBytes, BuildBytesPeak, BuildWaits int64
}

// Stats reports the memory accounting.
func (s *Server) Stats() Stats {
	var st Stats
	st.RequestBytes, st.RequestBytesPeak, st.RequestWaits = s.reqs.stats()
	st.ResponseBytes, st.ResponseBytesPeak, st.ResponseWaits = s.resps.stats()
	st.BuildBytes, st.BuildBytesPeak, st.BuildWaits = s.builds.stats()
	return st
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
		c := &Conn{ID: s.next.Add(1), Remote: nc.RemoteAddr(), nc: nc, Principal: "User:ANONYMOUS", broken: make(chan struct{})}
		s.mu.Lock()
		for waited := false; !s.closing && s.cfg.MaxConnections != nil && len(s.conns) >= s.cfg.MaxConnections(); waited = true {
			if !waited {
				s.log.Debug("max.connections reached: waiting for a connection to close", "connections", len(s.conns))
			}
			s.connGone.Wait()
		}
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		if s.cfg.ConnOpened != nil {
			s.cfg.ConnOpened(c)
		}
		go s.serveConn(c)
	}
}

// Shutdown stops accepting, stops reading new requests, waits until every request already
// read has been answered (or ctx ends), then closes all connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		close(s.stop)
	}
	s.closing = true
	s.connGone.Broadcast()
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
	// reserved is the build budget taken for this answer (ResponseSizer), given back
	// once it is encoded or dropped.
	reserved int64
}

func (s *Server) serveConn(c *Conn) {
	defer s.wg.Done()
	c.w = newWriterState(s.cfg.MaxInFlight)
	queue, writerDone := c.w.queue, c.w.done
	err := s.readLoop(c, queue)
	s.closeQueue(c)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, errStopped) && !isClosedOrTimeout(err) {
		s.log.Warn("closing connection", "conn", c.ID, "remote", c.Remote.String(), "err", err)
		// A malformed request: answer nothing further, close now.
		c.nc.Close()
	}
	<-writerDone
	c.nc.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.connGone.Broadcast()
	s.mu.Unlock()
	if s.cfg.ConnClosed != nil {
		s.cfg.ConnClosed(c)
	}
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
	// several pipelined requests often arrive in one read. The buffer goes back to a pool
	// while the connection is idle (connReader).
	rd := newConnReader(c.nc)
	rd.onBusy, rd.onIdle = s.connBusy, s.connIdle
	defer rd.close()
	waiting := func() bool {
		return c.respWaiting || c.respHeld > connHoldBytes || c.respDone > connDoneAnswers ||
			(c.respWriting && len(queue) > 0)
	}
	for {
		select {
		case <-s.stop:
			return nil
		default:
		}
		// Back-pressure from responses: no new request while this connection's writer waits
		// for response budget or is behind (more than connHoldBytes or connDoneAnswers
		// answers not yet written), or while the budget is exhausted.
		if !s.resps.waitRoom(waiting, s.stop, c.broken) {
			return nil
		}
		r, err := rd.next()
		if err != nil {
			return err
		}
		frame, pooled, charged, err := readFrame(r, s.cfg.MaxFrameBytes, s.reqs, s.frames, s.stop, c.broken)
		if err != nil {
			s.reqs.release(charged, nil)
			return err
		}
		if fn := c.rawToken; fn != nil {
			c.rawToken = nil
			resp, ok := fn(frame)
			s.frames.put(pooled)
			s.reqs.release(charged, nil)
			if !ok {
				return errRawToken
			}
			s.resps.mu.Lock()
			c.respDone++ // as respond does: the writer counts it written
			s.resps.mu.Unlock()
			sl := &slot{done: make(chan struct{}), resp: rawFrame{b: resp}}
			close(sl.done)
			s.send(c, sl)
			continue
		}
		// drop gives back what the frame holds when it is not dispatched.
		drop := func() { s.frames.put(pooled); s.reqs.release(charged, nil) }
		h, req, err := ParseRequest(frame)
		min, max, ok := s.d.Versions(h.Key)
		if err != nil && !(errors.Is(err, errBody) && h.Key == 18 && ok && h.Version > max) {
			// An ApiVersions request above the versions the broker speaks is answered
			// UNSUPPORTED_VERSION whatever its body (KIP-511); anything else undecodable
			// closes the connection.
			drop()
			return err
		}
		if !ok {
			drop()
			return ErrUnknownAPIKey
		}
		sl := &slot{key: h.Key, corr: h.CorrelationID, version: h.Version, setVer: true, done: make(chan struct{})}
		if h.Version < min || h.Version > max || req == nil {
			if h.Key != 18 {
				drop()
				return errors.New("unsupported version " + kmsg.NameForKey(h.Key))
			}
			r := kmsg.NewPtrApiVersionsRequest()
			r.Version = h.Version
			req = r
			sl.setVer = false
		}
		if h.Key != 0 {
			s.frames.disown(pooled) // the request may keep slices of its frame (see framepool.go)
			pooled = nil
		}
		if !c.waitUnmuted(s.stop, c.broken) { // a throttled client (mute.go)
			drop()
			return nil
		}
		sizer, _ := s.d.(ResponseSizer)
		if sizer != nil && sl.setVer {
			if est := sizer.ResponseEstimate(&h, req); est > 0 {
				if !s.builds.acquireOwned(est, &c.buildHeld, s.stop, c.broken) {
					drop()
					return nil
				}
				sl.reserved = est
			}
		}
		s.send(c, sl) // blocks while MaxInFlight requests are unanswered
		var once atomic.Bool
		s.d.Dispatch(c, &h, req, func(resp kmsg.Response) {
			if !once.CompareAndSwap(false, true) {
				panic("server: respond called twice")
			}
			if _, ok := resp.(closeConn); resp != nil && !ok {
				s.resps.mu.Lock()
				c.respDone++
				s.resps.mu.Unlock()
				if sizer != nil && sl.setVer {
					s.trueUp(c, sl, sizer.ResponseMemory(resp))
				}
			}
			sl.resp = resp
			close(sl.done)
			s.frames.put(pooled) // a Produce request is done with its frame once answered
			s.reqs.release(charged, nil)
		})
	}
}

// serverIdleAfter is how long every connection waits for bytes before Config.OnIdle.
const serverIdleAfter = time.Second

func (s *Server) connBusy() {
	s.busy.Add(1)
	s.wakes.Add(1)
}

// connIdle counts a connection idle; the last one arms Config.OnIdle, which runs if no
// connection became busy meanwhile.
func (s *Server) connIdle() {
	if s.busy.Add(-1) != 0 || s.cfg.OnIdle == nil {
		return
	}
	w := s.wakes.Load()
	time.AfterFunc(serverIdleAfter, func() {
		if s.busy.Load() == 0 && s.wakes.Load() == w {
			s.frames.dropFree() // before OnIdle hands the memory back: the pool's own idle check may come a second later
			s.cfg.OnIdle()
		}
	})
}

// errRawToken closes a connection whose bare SASL token was refused.
var errRawToken = errors.New("SASL token refused")

// readBufferSize is the per-connection read buffer.
const readBufferSize = 32 << 10
