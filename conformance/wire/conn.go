package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Conn is one raw Kafka connection: frames written and read by hand so a case can send what a
// client library would refuse to (versions past kmsg's, acks=2, bodies on ApiVersions v5).
//
// Request frame:  size int32 | api_key int16 | api_version int16 | correlation_id int32 |
//
//	client_id nullable string | [tagged fields if flexible] | body
//
// Response frame: size int32 | correlation_id int32 | [tagged fields if flexible and not
//
//	ApiVersions] | body
type Conn struct {
	c       net.Conn
	corr    int32
	fmt     *kmsg.RequestFormatter
	timeout time.Duration
}

// ErrClosed is returned when the broker closed the connection instead of answering.
var ErrClosed = errors.New("connection closed by the broker")

// maxFrame bounds a response we accept; larger means a broken frame.
const maxFrame = 64 << 20

func Dial(addr string, timeout time.Duration) (*Conn, error) {
	return DialAs(addr, timeout, "klite-wire")
}

// DialAs is Dial with the requests' client ID given.
func DialAs(addr string, timeout time.Duration, clientID string) (*Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return &Conn{c: c, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID)), timeout: timeout}, nil
}

func (c *Conn) Close() error { return c.c.Close() }

// Do sends req and decodes the answer. A Produce with acks 0 gets no answer: Do returns nil, nil.
func (c *Conn) Do(req kmsg.Request) (kmsg.Response, error) {
	c.corr++
	frame := c.fmt.AppendRequest(nil, req, c.corr)
	c.c.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.c.Write(frame); err != nil {
		return nil, err
	}
	if p, ok := req.(*kmsg.ProduceRequest); ok && p.Acks == 0 {
		return nil, nil
	}
	var size [4]byte
	if _, err := io.ReadFull(c.c, size[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err) {
			return nil, ErrClosed
		}
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > maxFrame {
		return nil, fmt.Errorf("response frame size %d", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.c, body); err != nil {
		return nil, err
	}
	return DecodeResponse(req, body, c.corr)
}

// DecodeResponse decodes a response frame body (after the size) for req.
func DecodeResponse(req kmsg.Request, body []byte, corr int32) (kmsg.Response, error) {
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	body = body[4:]
	if req.IsFlexible() && req.Key() != 18 {
		r := kbin.Reader{Src: body}
		kmsg.SkipTags(&r)
		if !r.Ok() {
			return nil, fmt.Errorf("response header: truncated tagged fields")
		}
		body = r.Src
	}
	resp := req.ResponseKind()
	v := req.GetVersion()
	if v > resp.MaxVersion() {
		v = resp.MaxVersion()
	}
	// An ApiVersions request at a version the broker does not know is answered at v0
	// (KIP-511) with UNSUPPORTED_VERSION.
	if req.Key() == 18 && len(body) >= 2 && int16(binary.BigEndian.Uint16(body)) == 35 {
		v = 0
	}
	resp.SetVersion(v)
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding %s v%d response: %v", kmsg.NameForKey(req.Key()), v, err)
	}
	return resp, nil
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}
