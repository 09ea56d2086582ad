package wire

import (
	"encoding/base64"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzDecodeResponse: whatever a broker sends back, the harness's frame decoding returns an
// error or a response, never panics.
func FuzzDecodeResponse(f *testing.F) {
	f.Add(int16(3), int16(12), []byte{0, 0, 0, 1, 0, 0, 0, 0, 0})
	f.Add(int16(18), int16(5), []byte{0, 0, 0, 1, 0, 35, 0, 0, 0, 0})
	f.Add(int16(1), int16(17), []byte{0, 0, 0, 1, 0xff})
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		req := kmsg.RequestForKey(key & 0x7f)
		if req == nil || len(body) < 4 {
			return
		}
		if version < 0 || version > req.MaxVersion()+1 {
			version = req.MaxVersion()
		}
		req.SetVersion(version)
		DecodeResponse(req, body, int32(body[0])<<24|int32(body[1])<<16|int32(body[2])<<8|int32(body[3]))
	})
}

// FuzzDecodeBatches: record-batch bytes from a Fetch answer are shown as batches or kept
// as they are, never a panic or an endless loop.
func FuzzDecodeBatches(f *testing.F) {
	b, _ := buildBatch(map[string]any{"values": []any{"a", "b"}})
	f.Add(b)
	f.Add(b[:20])
	f.Add(append(append([]byte{}, b...), b...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		decodeBatches(base64.StdEncoding.EncodeToString(raw))
	})
}
