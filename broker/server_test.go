package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/klite/klite/broker/server"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func frame(req kmsg.Request, corr int32) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, corr)
}

// readResponse reads one response frame and decodes it into resp (of the given version).
func readResponse(t *testing.T, c net.Conn, resp kmsg.Response, flexibleHeader bool) int32 {
	t.Helper()
	var sz [4]byte
	if _, err := io.ReadFull(c, sz[:]); err != nil {
		t.Fatalf("reading response size: %v", err)
	}
	buf := make([]byte, binary.BigEndian.Uint32(sz[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	corr := int32(binary.BigEndian.Uint32(buf))
	body := buf[4:]
	if flexibleHeader {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decoding response: %v", err)
	}
	return corr
}

// expectClosed waits for the broker to close the connection.
func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: connection still open", what)
		}
		return // EOF or reset: closed
	}
}

// TestMalformedFramesCloseOnlyThatConnection sends broken frames on raw connections while a
// regular client keeps producing on another connection.
func TestMalformedFramesCloseOnlyThatConnection(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "mf", 1, nil)
	good := tb.client(t)

	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	unknownKey := append(be32(10), 0x27, 0x0f, 0, 0, 0, 0, 0, 1) // key 9999
	unknownKey = append(unknownKey, 0, 0)
	produce := kmsg.NewPtrProduceRequest()
	produce.Version = 9
	produce.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "mf"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = rawBatch(-1, -1, -1, 3, 1000, 1)
	rt.Partitions = append(rt.Partitions, rp)
	produce.Topics = append(produce.Topics, rt)
	full := frame(produce, 1)
	truncBody := full[4 : len(full)-20]
	truncated := append(be32(uint32(len(truncBody))), truncBody...)
	garbage := append(be32(16), []byte("this is garbage!")...)
	oldFetch := kmsg.NewPtrFetchRequest()
	oldFetch.Version = 3 // below the KIP-896 floor

	cases := []struct {
		name string
		data []byte
	}{
		{"huge length", be32(0x7fffffff)},
		{"over the frame cap", be32(server.DefaultMaxFrameBytes + 1)},
		{"negative length", be32(0xfffffff0)},
		{"zero length", be32(0)},
		{"garbage", garbage},
		{"unknown api key", unknownKey},
		{"truncated request", truncated},
		{"unsupported fetch version", frame(oldFetch, 1)},
	}
	for i, c := range cases {
		conn := dialRaw(t, tb.addr)
		if _, err := conn.Write(c.data); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, conn, c.name)
		rec := &kgo.Record{Topic: "mf", Value: []byte(c.name)}
		res, err := good.ProduceSync(ctxT(t, 10*time.Second), rec).First()
		if err != nil || res.Offset != int64(i) {
			t.Fatalf("after %s: other client's produce: %v offset %v", c.name, err, res)
		}
	}
	// The valid produce frame on a fresh connection still works.
	conn := dialRaw(t, tb.addr)
	conn.Write(full)
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 9
	if corr := readResponse(t, conn, resp, true); corr != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("valid raw produce: corr %d %+v", corr, resp)
	}
}

// TestApiVersions: the registry is advertised, and an unsupported ApiVersions version gets a
// v0 UNSUPPORTED_VERSION answer with the key list (KIP-511).
func TestApiVersions(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	conn := dialRaw(t, tb.addr)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "raw", "1"
	conn.Write(frame(req, 7))
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 3
	if corr := readResponse(t, conn, resp, false); corr != 7 || resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions v3: corr %d error %d", corr, resp.ErrorCode)
	}
	want := map[int16][2]int16{0: {0, 12}, 1: {4, 17}, 2: {1, 10}, 3: {0, 13}, 18: {0, 4}, 19: {2, 7}, 20: {1, 6}, 22: {0, 5}, 48: {0, 1}, 49: {0, 1}}
	got := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		if k.MaxVersion > kmsg.RequestForKey(k.ApiKey).MaxVersion() {
			t.Errorf("key %d advertised beyond what kmsg can parse", k.ApiKey)
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %d advertised %v, want %v", k, got[k], v)
		}
	}

	// Version 99: answered in v0 with UNSUPPORTED_VERSION and, as Kafka 4.0, only the
	// ApiVersions entry in the key list (no features, which v0 cannot carry anyway).
	unk := []byte{0, 18, 0, 99, 0, 0, 0, 9, 0, 3, 'r', 'a', 'w', 0, 1, 2, 3}
	conn.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(unk))), unk...))
	v0 := kmsg.NewPtrApiVersionsResponse()
	if corr := readResponse(t, conn, v0, false); corr != 9 || v0.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("ApiVersions v99: corr %d error %d", corr, v0.ErrorCode)
	}
	if len(v0.ApiKeys) != 1 || v0.ApiKeys[0].ApiKey != 18 || v0.ApiKeys[0].MinVersion != 0 || v0.ApiKeys[0].MaxVersion != 4 {
		t.Fatalf("ApiVersions v99: keys %+v, want only {18 0 4}", v0.ApiKeys)
	}
}

// ApiVersions v5 (above the broker's v4, known to kmsg) is answered UNSUPPORTED_VERSION in v0
// whatever its body, as Kafka does, instead of closing the connection when the body does not
// decode at v5 (issue 19).
func TestApiVersionsV5WithBodyUnsupported(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	conn := dialRaw(t, tb.addr)
	for i, body := range [][]byte{
		{4, 'r', 'a', 'w', 2, '1', 0},  // a v3-style body: decodes at v5
		{0x7f, 'a'},                    // a compact string running past the frame
		{0xff, 0xff, 0xff, 0xff, 0xff}, // an invalid varint
	} {
		corr := int32(20 + i)
		f := []byte{0, 18, 0, 5, 0, 0, 0, byte(corr), 0, 3, 'r', 'a', 'w', 0}
		f = append(f, body...)
		conn.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(f))), f...))
		v0 := kmsg.NewPtrApiVersionsResponse()
		if got := readResponse(t, conn, v0, false); got != corr || v0.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("ApiVersions v5 body %x: corr %d error %d, want %d UNSUPPORTED_VERSION", body, got, v0.ErrorCode, corr)
		}
	}
}

// TestPipelinedResponsesInOrder: a long-polling fetch followed by quick requests on the same
// connection; responses come back in request order.
func TestPipelinedResponsesInOrder(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "po", 1, nil)
	conn := dialRaw(t, tb.addr)
	f := tb.fetchReq("po", 0, 400, 1, 1<<20, 1<<20)
	f.Version = 12
	var out []byte
	out = append(out, frame(f, 1)...)
	for i := int32(2); i <= 4; i++ {
		m := kmsg.NewPtrMetadataRequest()
		m.Version = 12
		out = append(out, frame(m, i)...)
	}
	start := time.Now()
	conn.Write(out)
	fr := kmsg.NewPtrFetchResponse()
	fr.Version = 12
	if corr := readResponse(t, conn, fr, true); corr != 1 || time.Since(start) < 350*time.Millisecond {
		t.Fatalf("first response corr %d after %v, want the fetch after its wait", corr, time.Since(start))
	}
	for i := int32(2); i <= 4; i++ {
		mr := kmsg.NewPtrMetadataResponse()
		mr.Version = 12
		if corr := readResponse(t, conn, mr, true); corr != i {
			t.Fatalf("response %d has correlation id %d", i, corr)
		}
	}
}

// TestCloseAnswersInFlightRequests: a long-polling fetch in flight when the broker closes is
// answered (early, empty) before the connection closes, and Close returns promptly.
func TestCloseAnswersInFlightRequests(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "cl", 1, nil)
	conn := dialRaw(t, tb.addr)
	f := tb.fetchReq("cl", 0, 20000, 1, 1<<20, 1<<20)
	f.Version = 12
	conn.Write(frame(f, 5))
	time.Sleep(200 * time.Millisecond) // let the fetch start waiting (a missed wait only makes the test pass trivially faster)
	start := time.Now()
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %v with a fetch in flight", took)
	}
	fr := kmsg.NewPtrFetchResponse()
	fr.Version = 12
	if corr := readResponse(t, conn, fr, true); corr != 5 || fr.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("in-flight fetch: corr %d %+v", corr, fr)
	}
	expectClosed(t, conn, "after Close")
}

// TestAcksZeroInvalidClosesConnection: acks=0 produce gets no response; an invalid one closes
// the connection (Kafka's way to tell the client), a valid one keeps it open.
func TestAcksZeroInvalidClosesConnection(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "a0", 1, nil)
	produce := func(batch []byte) *kmsg.ProduceRequest {
		req := kmsg.NewPtrProduceRequest()
		req.Version = 9
		req.Acks = 0
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "a0"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"

	conn := dialRaw(t, tb.addr)
	conn.Write(append(frame(produce(rawBatch(-1, -1, -1, 2, 1000, 1)), 1), frame(av, 2)...))
	avr := kmsg.NewPtrApiVersionsResponse()
	avr.Version = 3
	if corr := readResponse(t, conn, avr, false); corr != 2 {
		t.Fatalf("after a valid acks=0 produce the next response has corr %d, want 2", corr)
	}
	bad := rawBatch(-1, -1, -1, 2, 1000, 1)
	bad[len(bad)-1] ^= 1
	conn.Write(frame(produce(bad), 3))
	expectClosed(t, conn, "invalid acks=0 produce")
	// The valid batch becomes durable in the background; the invalid one never is.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, hwm := tb.partitionOffsets(t, "a0", 0)
		if hwm == 2 {
			break
		}
		if hwm > 2 || time.Now().After(deadline) {
			t.Fatalf("high watermark %d, want 2 (only the valid batch)", hwm)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHandlerPanicClosesOnlyThatConnection: a panicking handler is recovered; its
// connection is closed and the broker keeps serving.
func TestHandlerPanicClosesOnlyThatConnection(t *testing.T) {
	const key = 57 // UpdateFeatures: not implemented by klite
	if _, ok := handlers[key]; ok {
		t.Skip("key 57 is implemented now; pick another unused key")
	}
	handlers[key] = handlerSpec{key: key, min: 0, max: 1, fn: func(*Broker, *ReqCtx, kmsg.Request, func(kmsg.Response)) {
		panic("boom")
	}}
	t.Cleanup(func() { delete(handlers, key) })
	tb := startBroker(t, t.TempDir())
	conn := dialRaw(t, tb.addr)
	req := kmsg.NewPtrUpdateFeaturesRequest()
	req.Version = 0
	conn.Write(frame(req, 1))
	expectClosed(t, conn, "panicking handler")
	createTopic(t, tb.admin(t), "after-panic", 1, nil)
}

// TestAcksZeroFrameKeptUntilAppended: an acks=0 Produce is answered (nil) only once its
// batches are appended, so the server does not reuse its pooled frame while the partition
// log still copies from it. Before, the answer came at the end of dispatch and the next
// pipelined request was read into the same buffer before the WAL's fsync: the log stored
// the next request's bytes in place of this one's (requests alternate between two
// partitions, so the next one carries the same offset and the log cannot tell).
func TestAcksZeroFrameKeptUntilAppended(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "a0f", 2, nil)
	conn := dialRaw(t, tb.addr)
	const pairs = 4
	for k := range pairs {
		// A pair of requests written at once, one per partition at the same offset, each one
		// record of 80 KiB: the frames are in the server's pooled range (64 KiB and up) and
		// of the same size class.
		var pipelined []byte
		for part := range int32(2) {
			i := 2*k + int(part)
			r := kmsg.Record{Value: bytes.Repeat([]byte{byte('A' + i)}, 80<<10)}
			r.Length = int32(len(r.AppendTo(nil)) - 1)
			req := kmsg.NewPtrProduceRequest()
			req.Version = 9
			req.Acks = 0
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "a0f"
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition = part
			rp.Records = singleRecordBatch(r.AppendTo(nil))
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			pipelined = append(pipelined, frame(req, int32(i))...)
		}
		if _, err := conn.Write(pipelined); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for part := range int32(2) {
			for {
				if _, hwm := tb.partitionOffsets(t, "a0f", part); hwm == int64(k+1) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("pair %d: partition %d not at offset %d", k, part, k+1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
	recs := consumeN(t, tb, "a0f", 2*pairs)
	for _, r := range recs {
		want := byte('A' + int(2*r.Offset) + int(r.Partition))
		if len(r.Value) != 80<<10 || r.Value[0] != want || r.Value[len(r.Value)-1] != want {
			t.Fatalf("partition %d offset %d: %d bytes of %q, want 80 KiB of %q", r.Partition, r.Offset, len(r.Value), r.Value[:1], want)
		}
	}
}

// singleRecordBatch wraps one encoded record in an uncompressed RecordBatch v2.
func singleRecordBatch(rec []byte) []byte {
	b := make([]byte, batchHeaderLen, batchHeaderLen+len(rec))
	binary.BigEndian.PutUint32(b[8:], uint32(batchHeaderLen-12+len(rec)))
	binary.BigEndian.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	binary.BigEndian.PutUint64(b[43:], ^uint64(0)) // producer ID -1
	binary.BigEndian.PutUint16(b[51:], 0xffff)
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)
	binary.BigEndian.PutUint32(b[57:], 1)
	b = append(b, rec...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32c))
	return b
}
