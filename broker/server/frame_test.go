package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestReadFrameLimits(t *testing.T) {
	for _, n := range []int32{0, -1, -2147483648, 101} {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(n))
		if _, _, err := readTestFrame(bytes.NewReader(b[:]), 100); !errors.Is(err, ErrFrameSize) {
			t.Errorf("size %d: err %v, want ErrFrameSize", n, err)
		}
	}
	in := append(binary.BigEndian.AppendUint32(nil, 3), 'a', 'b', 'c')
	got, pooled, err := readTestFrame(bytes.NewReader(in), 100)
	if err != nil || string(got) != "abc" || pooled != nil {
		t.Fatalf("readPooledFrame = %q, %v (pooled %v)", got, err, pooled != nil)
	}
}

// Frames in the pooled range come in buffers of their size class, and buffers go back to
// the pool they came from.
func TestFramePoolClasses(t *testing.T) {
	// Classes: 16K, 24K, 32K, 48K, 64K, 96K, 128K, 192K, 256K, 384K, 512K, 768K, 1M, 1.5M, 2M, 3M,
	// 4M, 6M, 8M, 12M, 16M; the first five are small (up to firstStep).
	if n := len(frameClassSizes); n != 21 || smallClasses != 5 || frameClassSizes[0] != minPooledFrame || frameClassSizes[n-1] != maxPooledFrame {
		t.Fatalf("classes %v", frameClassSizes)
	}
	cases := []struct{ n, size int }{
		{minPooledFrame - 1, -1}, {minPooledFrame, 16 << 10}, {minPooledFrame + 1, 24 << 10},
		{20 << 10, 24 << 10}, {firstStep, 64 << 10}, {firstStep + 1, 96 << 10},
		{1 << 20, 1 << 20}, {1<<20 + 1, 3 << 19}, {6_000_200, 6 << 20}, {maxPooledFrame, 16 << 20}, {maxPooledFrame + 1, -1},
	}
	for _, c := range cases {
		got := -1
		if i := frameClass(c.n); i >= 0 {
			got = frameClassSizes[i]
		}
		if got != c.size {
			t.Errorf("frame of %d bytes: buffer %d, want %d", c.n, got, c.size)
		}
	}
	body := bytes.Repeat([]byte{7}, 300<<10)
	in := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	got, pooled, err := readTestFrame(bytes.NewReader(in), 1<<30)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("readPooledFrame: %v", err)
	}
	if pooled == nil || cap(*pooled) != 384<<10 {
		t.Fatalf("300 KiB frame not in a 384 KiB pooled buffer")
	}
	testFrames.put(pooled)
}

// The pool keeps buffers only while those handed out and those kept fit in its limit (the
// request budget), forgets disowned ones, and lets its free buffers go once idle.
func TestFramePoolSizedToLimit(t *testing.T) {
	p := newFramePool(1 << 20) // room for four 256 KiB buffers
	var bufs []*[]byte
	for range 6 {
		_, b := p.get(256 << 10)
		bufs = append(bufs, b)
	}
	if out, kept := p.stats(); out != 6*256<<10 || kept != 0 {
		t.Fatalf("6 taken: out %d kept %d", out, kept)
	}
	p.disown(bufs[5]) // a non-Produce request keeps its frame
	for _, b := range bufs[:5] {
		p.put(b)
	}
	out, kept := p.stats()
	if out != 0 || kept != 1<<20 || p.dropped != 1 {
		t.Fatalf("all back: out %d kept %d dropped %d, want 0, 1 MiB, 1", out, kept, p.dropped)
	}
	// A taken buffer comes from the free ones.
	_, b := p.get(200 << 10)
	if out, kept := p.stats(); out != 256<<10 || kept != 3*256<<10 || cap(*b) != 256<<10 {
		t.Fatalf("reuse: out %d kept %d", out, kept)
	}
	p.put(b)
	// Another size: the free buffers of other sizes make room for it.
	_, big := p.get(1 << 20)
	if out, kept := p.stats(); out != 1<<20 || kept != 0 {
		t.Fatalf("new size: out %d kept %d, want 1 MiB, 0", out, kept)
	}
	p.put(big)
	if out, kept := p.stats(); out != 0 || kept != 1<<20 {
		t.Fatalf("new size back: out %d kept %d, want 0, 1 MiB", out, kept)
	}
	// A frame as large as the limit, read in two steps (readFrame): the first step's small
	// buffer does not push the free large one out, so the frame reuses it.
	_, first := p.get(firstStep)
	if out, kept := p.stats(); out != firstStep || kept != 1<<20 {
		t.Fatalf("first step: out %d kept %d, want 64 KiB, 1 MiB", out, kept)
	}
	_, whole := p.get(1 << 20)
	p.put(first)
	if whole != big {
		t.Fatalf("a frame as large as the limit did not reuse the free buffer")
	}
	p.put(whole)
	if out, kept := p.stats(); out != 0 || kept != 1<<20+firstStep {
		t.Fatalf("frame back: out %d kept %d, want 0, 1 MiB and the first step's 64 KiB", out, kept)
	}
	// First steps coming back while the limit is full are kept, up to maxFreeSmall: each
	// frame's first step reuses one instead of allocating.
	_, whole = p.get(1 << 20)
	var firsts []*[]byte
	for range maxFreeSmall + 2 {
		_, f := p.get(firstStep)
		firsts = append(firsts, f)
	}
	for _, f := range firsts {
		p.put(f)
	}
	if n := len(p.free[smallClasses-1]); n != maxFreeSmall {
		t.Fatalf("%d first-step buffers kept, want %d", n, maxFreeSmall)
	}
	_, f := p.get(firstStep)
	if f != firsts[maxFreeSmall-1] {
		t.Fatalf("a first step did not reuse a free buffer")
	}
	p.put(f)
	p.put(whole)
	if held := p.held(); held != 1<<20 {
		t.Fatalf("held %d with everything back, want the 1 MiB buffer (first steps aside)", held)
	}
	// Other connections hold first steps (waiting for the budget) as that frame comes back:
	// it is kept all the same, for the next of them.
	_, first = p.get(firstStep)
	_, whole = p.get(1 << 20)
	p.put(first)
	_, waiting := p.get(firstStep)
	p.put(whole)
	if out, _ := p.stats(); out != firstStep || len(p.free[frameClass(1<<20)]) != 1 {
		t.Fatalf("frame back while a first step is out: out %d, %d free 1 MiB buffers; want 64 KiB, 1", out, len(p.free[frameClass(1<<20)]))
	}
	p.put(waiting)
	// Idle: the timer drops the free buffers once a check finds no take since the last.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, kept := p.stats(); kept == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("free buffers kept after %v idle", 10*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestParseRequestRoundTrip(t *testing.T) {
	for _, v := range []int16{0, 8, 9, 12} { // v9+ is flexible (header v2)
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t")}}
		f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("cid")).AppendRequest(nil, req, 42)
		h, got, err := ParseRequest(f[4:])
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		m := got.(*kmsg.MetadataRequest)
		if h.Key != 3 || h.Version != v || h.CorrelationID != 42 || *h.ClientID != "cid" || len(m.Topics) != 1 || *m.Topics[0].Topic != "t" {
			t.Fatalf("v%d: header %+v request %+v", v, h, m)
		}
	}
}

// FuzzReadRequest feeds arbitrary bytes to the framing and header/body decoding: it must
// never panic, and whatever decodes must re-encode and decode to the same header.
func FuzzReadRequest(f *testing.F) {
	for _, req := range []kmsg.Request{kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrMetadataRequest(), kmsg.NewPtrProduceRequest(), kmsg.NewPtrFetchRequest()} {
		req.SetVersion(req.MaxVersion())
		f.Add(kmsg.NewRequestFormatter(kmsg.FormatterClientID("seed")).AppendRequest(nil, req, 1))
	}
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 8, 0, 18, 0, 99, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		frame, _, err := readTestFrame(bytes.NewReader(data), 1<<16)
		if err != nil {
			return
		}
		type parsed struct {
			h   Header
			req kmsg.Request
			err error
		}
		ch := make(chan parsed, 1)
		go func() {
			h, req, err := ParseRequest(frame)
			ch <- parsed{h, req, err}
		}()
		var res parsed
		select {
		case res = <-ch:
		case <-time.After(2 * time.Second):
			// kmsg (v1.15.0) loops up to 2^32 times over a tagged-field count that exceeds
			// the remaining bytes; such inputs take seconds but end. Known upstream issue,
			// not a crash: skip them rather than report a hang.
			return
		}
		h, req, err := res.h, res.req, res.err
		if err != nil || req == nil || (h.Key == 7 && h.Version == 0) {
			// ControlledShutdown v0 has a header without client id; klite never serves it.
			return
		}
		if req.Key() != h.Key || req.GetVersion() != h.Version {
			t.Fatalf("request %d v%d under header %+v", req.Key(), req.GetVersion(), h)
		}
		var cid *string
		if h.ClientID != nil {
			cid = h.ClientID
		}
		opts := []kmsg.RequestFormatterOpt{}
		if cid != nil {
			opts = append(opts, kmsg.FormatterClientID(*cid))
		}
		again := kmsg.NewRequestFormatter(opts...).AppendRequest(nil, req, h.CorrelationID)
		h2, req2, err := ParseRequest(again[4:])
		if err != nil || req2 == nil || h2.Key != h.Key || h2.Version != h.Version || h2.CorrelationID != h.CorrelationID {
			t.Fatalf("re-encoded request does not decode the same: %v %+v vs %+v", err, h2, h)
		}
	})
}

// testFrames is the frame pool of readTestFrame.
var testFrames = newFramePool(0)

// readTestFrame reads a frame with an unbounded request budget.
func readTestFrame(r io.Reader, max int32) ([]byte, *[]byte, error) {
	b := newBudget(0)
	frame, pooled, charged, err := readFrame(r, max, b, testFrames, nil, nil)
	if used, _, _ := b.stats(); used != charged {
		panic("readFrame: charged differs from what the budget holds")
	}
	return frame, pooled, err
}

// A frame above the pooled range is read into a buffer that doubles as bytes arrive, and
// ends up whole and exact; the budget holds its final buffer (the frame's size, capped at
// doubling from 64 KiB: never more than twice the bytes read).
func TestReadFrameGrowsLargeFrames(t *testing.T) {
	body := make([]byte, maxPooledFrame+12345)
	for i := range body {
		body[i] = byte(i * 7)
	}
	in := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	b := newBudget(0)
	got, pooled, charged, err := readFrame(bytes.NewReader(in), 1<<30, b, testFrames, nil, nil)
	if err != nil || pooled != nil || !bytes.Equal(got, body) {
		t.Fatalf("readFrame: err %v, pooled %v, equal %v", err, pooled != nil, bytes.Equal(got, body))
	}
	if used, _, _ := b.stats(); charged != int64(len(body)) || used != charged {
		t.Fatalf("charged %d, budget holds %d, want %d", charged, used, len(body))
	}
	// Truncated after 100 KiB: the buffer held is 128 KiB, not the announced size.
	b = newBudget(0)
	_, _, charged, err = readFrame(bytes.NewReader(in[:4+100<<10]), 1<<30, b, testFrames, nil, nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) || charged != 128<<10 {
		t.Fatalf("truncated frame: err %v, charged %d, want 128 KiB", err, charged)
	}
}
