package server

// Wire layout of one request frame (Kafka protocol, all integers big-endian):
//
//	+--------+---------+---------+----------------+----------------------+----------------+------+
//	| size   | api key | version | correlation id | client id            | tagged fields  | body |
//	| int32  | int16   | int16   | int32          | int16 len + bytes    | (header v2     |      |
//	|        |         |         |                | (-1 = null)          |  only)         |      |
//	+--------+---------+---------+----------------+----------------------+----------------+------+
//
// size counts everything after itself. The header is v1 for non-flexible request versions and v2
// (v1 plus tagged fields) for flexible ones; the client id stays a non-compact string in both.
// The response header is the correlation id, plus tagged fields when the response is flexible,
// except ApiVersions whose response header is always v0 (KIP-511: a client must be able to read
// it before it knows which versions the broker speaks).

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultMaxFrameBytes is Kafka's socket.request.max.bytes default (100 MiB).
const DefaultMaxFrameBytes = 100 << 20

// Errors that make the server close a connection.
var (
	ErrFrameSize     = errors.New("frame size out of range")
	ErrShortHeader   = errors.New("truncated request header")
	ErrUnknownAPIKey = errors.New("unknown API key")
	// errBody wraps a body that does not decode (the header did).
	errBody = errors.New("decoding")
)

// Header is the decoded request header.
type Header struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      *string
	// Size is the frame's length without its size prefix (Kafka's request size, which
	// producer byte-rate quotas count).
	Size int
}

// ParseRequest decodes a frame body (without the size prefix) into its header and a kmsg
// request of the right type and version. It reports ErrUnknownAPIKey for keys kmsg does not
// know; whether the version is one the broker implements is the caller's decision, so the
// body is returned undecoded (req nil) when version is above what kmsg can parse.
func ParseRequest(frame []byte) (Header, kmsg.Request, error) {
	h := Header{Size: len(frame)}
	if len(frame) < 8 {
		return h, nil, ErrShortHeader
	}
	rd := kbin.Reader{Src: frame}
	h.Key = rd.Int16()
	h.Version = rd.Int16()
	h.CorrelationID = rd.Int32()
	h.ClientID = rd.NullableString()
	if !rd.Ok() {
		return h, nil, ErrShortHeader
	}
	req := kmsg.RequestForKey(h.Key)
	if req == nil {
		return h, nil, fmt.Errorf("%w: %d", ErrUnknownAPIKey, h.Key)
	}
	if h.Version < 0 || h.Version > req.MaxVersion() {
		return h, nil, nil
	}
	req.SetVersion(h.Version)
	if req.IsFlexible() {
		skipTags(&rd)
		if !rd.Ok() {
			return h, nil, ErrShortHeader
		}
		if err := checkBodyTags(req, rd.Src); err != nil {
			return h, nil, fmt.Errorf("%w %s v%d: %w", errBody, kmsg.NameForKey(h.Key), h.Version, err)
		}
	}
	if err := req.ReadFrom(rd.Src); err != nil {
		return h, nil, fmt.Errorf("%w %s v%d: %w", errBody, kmsg.NameForKey(h.Key), h.Version, err)
	}
	if err := checkStrings(req, len(rd.Src)); err != nil {
		return h, nil, fmt.Errorf("%w %s v%d: %w", errBody, kmsg.NameForKey(h.Key), h.Version, err)
	}
	return h, req, nil
}

// AppendResponse appends a complete response frame (size, header, body) to dst.
func AppendResponse(dst []byte, key int16, correlationID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt32(dst, correlationID)
	if resp.IsFlexible() && key != 18 {
		dst = append(dst, 0) // no response header tags
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
