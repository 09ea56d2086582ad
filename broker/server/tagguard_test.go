package server

import (
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// hugeTagCount is a 5-byte uvarint tagged-field count of 2^32-1.
var hugeTagCount = []byte{0xff, 0xff, 0xff, 0xff, 0x0f}

// tagBombApiVersions is a 32-byte ApiVersions v3 frame whose body's top-level tagged-field
// count is 2^32-1 with nothing after it. kmsg v1.15.0 alone spins on it for tens of seconds.
func tagBombApiVersions() []byte {
	f := []byte{0, 0, 0, 0, 0, 18, 0, 3, 0, 0, 0, 7, 0, 2, 'a', 'b', 0} // size, key, version, corr, client id, no header tags
	f = append(f, 5, 'a', 'b', 'c', 'd', 5, '1', '.', '0', '0')         // software name, version
	f = append(f, hugeTagCount...)
	binary.BigEndian.PutUint32(f, uint32(len(f)-4))
	return f
}

func TestTagBombRequestsAreRejected(t *testing.T) {
	if f := tagBombApiVersions(); len(f) != 32 {
		t.Fatalf("ApiVersions frame is %d bytes, want 32", len(f))
	}
	// Produce v9: one topic, one partition with an empty record set, then a partition-level
	// tag count of 2^32-1.
	produce := []byte{0, 0, 0, 9, 0, 0, 0, 1, 0, 2, 'c', 'l', 0}
	produce = append(produce, 0, 0xff, 0xff, 0, 0, 0x13, 0x88) // no txn id, acks -1, timeout 5000
	produce = append(produce, 2, 2, 't', 2, 0, 0, 0, 0, 1)     // 1 topic "t", 1 partition 0, empty records
	produce = append(produce, hugeTagCount...)
	// Metadata v12: one topic whose tag count is 2^32-1.
	metadata := []byte{0, 3, 0, 12, 0, 0, 0, 1, 0, 2, 'c', 'l', 0}
	metadata = append(metadata, 2)                   // 1 topic
	metadata = append(metadata, make([]byte, 16)...) // topic ID
	metadata = append(metadata, 2, 't')              // name
	metadata = append(metadata, hugeTagCount...)
	// Header: a header tag count of 2^32-1 (the body is never reached).
	header := []byte{0, 18, 0, 3, 0, 0, 0, 1, 0, 2, 'c', 'l'}
	header = append(header, hugeTagCount...)
	for name, body := range map[string][]byte{
		"api versions": tagBombApiVersions()[4:], "produce": produce, "metadata": metadata, "header": header,
	} {
		done := make(chan error, 1)
		go func() {
			_, _, err := ParseRequest(body)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: parsed without error", name)
			} else if name != "header" && !errors.Is(err, ErrTagCount) {
				t.Errorf("%s: err %v, want ErrTagCount", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: ParseRequest still running after 10s", name)
		}
	}
}

// The 32-byte request closes its connection (and only that one: the server still answers).
func TestTagBombClosesConnection(t *testing.T) {
	_, addr := startTestServer(t, &holdDispatcher{release: make(chan struct{})})
	c := dialDeadline(t, addr)
	if _, err := c.Write(tagBombApiVersions()); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if n, err := c.Read(b[:]); err != io.EOF {
		t.Fatalf("read after the request: %d bytes, err %v; want the connection closed (EOF)", n, err)
	}
	// A well-formed request on a new connection is still answered.
	c2 := dialDeadline(t, addr)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	if _, err := c2.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("ok")).AppendRequest(nil, req, 2)); err != nil {
		t.Fatal(err)
	}
	if got := readCorrelationIDs(t, c2, 1); got[0] != 2 {
		t.Fatalf("correlation ID %d, want 2", got[0])
	}
}

// Flexible requests with large uvarint-looking bytes in fixed-width and opaque fields (-1
// values, binary record data) still decode.
func TestTagGuardKeepsValidRequests(t *testing.T) {
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 12
	fetch.ReplicaID, fetch.MaxWaitMillis, fetch.MinBytes, fetch.MaxBytes = -1, 500, 1, 52428800
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.CurrentLeaderEpoch, fp.FetchOffset, fp.LogStartOffset, fp.PartitionMaxBytes = -1, 1<<40-1, -1, 1048576
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)

	produce := kmsg.NewPtrProduceRequest()
	produce.Version = 9
	produce.Acks = -1
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = make([]byte, 4096)
	for i := range pp.Records {
		pp.Records[i] = 0xff // every position starts a maximal uvarint
	}
	pp.UnknownTags.Set(7, []byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)

	join := kmsg.NewPtrJoinGroupRequest()
	join.Version = 9
	join.Group, join.MemberID, join.ProtocolType = "g", "", "consumer"
	proto := kmsg.NewJoinGroupRequestProtocol()
	proto.Name = "range"
	proto.Metadata = []byte{0, 3, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x80, 0x80, 0x80, 0x80, 0x01}
	join.Protocols = append(join.Protocols, proto)

	for _, req := range []kmsg.Request{fetch, produce, join} {
		f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("c")).AppendRequest(nil, req, 5)
		_, got, err := ParseRequest(f[4:])
		if err != nil || got == nil {
			t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
		}
	}
}
