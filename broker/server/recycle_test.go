package server

import (
	"bufio"
	"encoding/binary"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// recyclingDispatcher answers Fetch requests with record bytes in a buffer of its own that
// Recycle overwrites, as a pool reusing it would.
type recyclingDispatcher struct {
	recycled atomic.Int32
}

func (d *recyclingDispatcher) Versions(key int16) (int16, int16, bool) { return 4, 11, key == 1 }

func (d *recyclingDispatcher) Dispatch(c *Conn, h *Header, req kmsg.Request, respond func(kmsg.Response)) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(h.CorrelationID)
	}
	st := kmsg.NewFetchResponseTopic()
	st.Topic = "t"
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.RecordBatches = buf
	st.Partitions = append(st.Partitions, sp)
	resp.Topics = append(resp.Topics, st)
	respond(&recyclingFetch{FetchResponse: resp, buf: buf, d: d})
}

type recyclingFetch struct {
	*kmsg.FetchResponse
	buf []byte
	d   *recyclingDispatcher
}

func (r *recyclingFetch) Recycle() {
	for i := range r.buf {
		r.buf[i] = 0xEE
	}
	r.d.recycled.Add(1)
}

// A Recycler answer is recycled once, after its bytes are encoded: every answer reaches
// the client intact, pipelined answers gathered into one write included.
func TestRecyclerAfterEncode(t *testing.T) {
	d := &recyclingDispatcher{}
	_, addr := startTestServer(t, d)
	c := dialDeadline(t, addr)
	const n = 40
	var frames []byte
	for i := 0; i < n; i++ {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 11
		frames = append(frames, kmsg.NewRequestFormatter(kmsg.FormatterClientID("t")).AppendRequest(nil, req, int32(i))...)
	}
	if _, err := c.Write(frames); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i := 0; i < n; i++ {
		var sz [4]byte
		if _, err := io.ReadFull(br, sz[:]); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body := make([]byte, binary.BigEndian.Uint32(sz[:]))
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if id := int32(binary.BigEndian.Uint32(body)); id != int32(i) {
			t.Fatalf("response %d has correlation ID %d", i, id)
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = 11
		if err := resp.ReadFrom(body[4:]); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		recs := resp.Topics[0].Partitions[0].RecordBatches
		if len(recs) != 64<<10 {
			t.Fatalf("response %d: %d record bytes, want %d", i, len(recs), 64<<10)
		}
		for j, b := range recs {
			if b != byte(i) {
				t.Fatalf("response %d: byte %d is %#x, want %#x (recycled before it was encoded)", i, j, b, byte(i))
			}
		}
	}
	// The writer recycles right after encoding; the last may trail the client's read.
	deadline := time.Now().Add(5 * time.Second)
	for d.recycled.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := d.recycled.Load(); got != n {
		t.Fatalf("%d answers recycled, want %d", got, n)
	}
}
