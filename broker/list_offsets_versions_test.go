package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestListOffsetsTimestampVersions: special timestamps below the ListOffsets version that
// defines them, and negative timestamps Kafka does not define, are UNSUPPORTED_VERSION; a
// partition listed twice is answered once with INVALID_REQUEST (Kafka 4.0's ReplicaManager).
func TestListOffsetsTimestampVersions(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "lov", 2, nil)
	conn := dialRaw(t, tb.addr)
	corr := int32(0)
	list := func(version int16, parts map[int32]int64, dup bool) []kmsg.ListOffsetsResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = version
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "lov"
		for p, ts := range parts {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = p, ts
			rt.Partitions = append(rt.Partitions, rp)
			if dup {
				rt.Partitions = append(rt.Partitions, rp)
			}
		}
		req.Topics = append(req.Topics, rt)
		corr++
		if _, err := conn.Write(frame(req, corr)); err != nil {
			t.Fatal(err)
		}
		resp := kmsg.NewPtrListOffsetsResponse()
		resp.Version = version
		readResponse(t, conn, resp, version >= 6)
		return resp.Topics[0].Partitions
	}
	for _, c := range []struct {
		version int16
		ts      int64
		want    *kerr.Error
	}{
		{6, -3, kerr.UnsupportedVersion}, {7, -3, nil},
		{7, -4, kerr.UnsupportedVersion}, {8, -4, nil},
		{8, -5, kerr.UnsupportedVersion}, {9, -5, nil},
		{10, -6, kerr.UnsupportedVersion}, {10, -100, kerr.UnsupportedVersion},
		{1, -1, nil}, {1, -2, nil},
	} {
		got := list(c.version, map[int32]int64{0: c.ts}, false)
		if len(got) != 1 || (c.want == nil && got[0].ErrorCode != 0) || (c.want != nil && got[0].ErrorCode != c.want.Code) {
			t.Errorf("v%d timestamp %d: %+v, want %v", c.version, c.ts, got, c.want)
		}
	}
	got := list(10, map[int32]int64{1: -1}, true)
	if len(got) != 1 || got[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("duplicate partition: %+v, want one INVALID_REQUEST row", got)
	}
}
