package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestListOffsetsTimestampLookup checks that a timestamp lookup returns the first record
// with timestamp >= target, inside batches (compressed or not), across batches, for
// timestamps that are not monotonic, plus earliest, latest and max timestamp.
func TestListOffsetsTimestampLookup(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.ZstdCompression(), kgo.Lz4Compression()} {
		topic := "ts-" + codec2name(codec)
		createTopic(t, adm, topic, 1, nil)
		cl := tb.client(t, kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(50*time.Millisecond))
		// Three batches of 10; timestamps 1000 + 10*i except record 15, which jumps ahead.
		var want []int64
		for b := 0; b < 3; b++ {
			var recs []*kgo.Record
			for i := b * 10; i < b*10+10; i++ {
				ts := int64(1000 + 10*i)
				if i == 15 {
					ts = 5000
				}
				want = append(want, ts)
				recs = append(recs, &kgo.Record{Topic: topic, Value: []byte("v"), Timestamp: time.UnixMilli(ts)})
			}
			if err := cl.ProduceSync(ctxT(t, 10*time.Second), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if p, _ := tb.partition(topic, 0); storedBatches(t, p) != 3 {
			t.Fatalf("%s: %d batches stored, want 3 (the lookups must look inside batches)", topic, storedBatches(t, p))
		}
		cases := []struct {
			ts, wantOff, wantTS int64
		}{
			{0, 0, 1000},
			{1000, 0, 1000},
			{1001, 1, 1010},
			{1095, 10, 1100}, // first record of the second batch
			{1141, 15, 5000}, // inside a batch; the out-of-order record is the first >= target
			{1160, 15, 5000},
			{1200, 15, 5000},
			{1291, 15, 5000},
			{5000, 15, 5000},
			{5001, 30, -1}, // kadm reports "no such record" as the end offset
		}
		for _, c := range cases {
			off, ts := lookupTS(t, adm, topic, c.ts)
			if off != c.wantOff || ts != c.wantTS {
				t.Errorf("%s: lookup %d = (%d, %d), want (%d, %d)", topic, c.ts, off, ts, c.wantOff, c.wantTS)
			}
		}
		starts, err := adm.ListStartOffsets(ctxT(t, 5*time.Second), topic)
		if err != nil || starts[topic][0].Offset != 0 {
			t.Errorf("earliest: %v %+v", err, starts)
		}
		ends, err := adm.ListEndOffsets(ctxT(t, 5*time.Second), topic)
		if err != nil || ends[topic][0].Offset != 30 {
			t.Errorf("latest: %v %+v", err, ends)
		}
		if off, ts := rawListOffset(t, tb.client(t), topic, 5001); off != -1 || ts != -1 {
			t.Errorf("%s: raw lookup past the end = (%d, %d), want (-1, -1)", topic, off, ts)
		}
		off, ts := lookupTS(t, adm, topic, -3)
		if off != 15 || ts != 5000 {
			t.Errorf("%s: max timestamp = (%d, %d), want (15, 5000)", topic, off, ts)
		}
	}
}

func codec2name(c kgo.CompressionCodec) string {
	switch c {
	case kgo.ZstdCompression():
		return "zstd"
	case kgo.Lz4Compression():
		return "lz4"
	case kgo.GzipCompression():
		return "gzip"
	case kgo.SnappyCompression():
		return "snappy"
	}
	return "none"
}

func lookupTS(t *testing.T, adm *kadm.Client, topic string, ts int64) (int64, int64) {
	t.Helper()
	var res kadm.ListedOffsets
	var err error
	if ts == -3 {
		res, err = adm.ListMaxTimestampOffsets(ctxT(t, 5*time.Second), topic)
	} else {
		res, err = adm.ListOffsetsAfterMilli(ctxT(t, 5*time.Second), ts, topic)
	}
	if err != nil {
		t.Fatal(err)
	}
	lo := res[topic][0]
	if lo.Err != nil {
		t.Fatal(lo.Err)
	}
	return lo.Offset, lo.Timestamp
}

func rawListOffset(t *testing.T, cl *kgo.Client, topic string, ts int64) (int64, int64) {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 5*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("list offsets error %d", p.ErrorCode)
	}
	return p.Offset, p.Timestamp
}

// storedBatches counts the batches in p's log.
func storedBatches(t *testing.T, p *partition) int {
	t.Helper()
	data, err := p.log().Read(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for len(data) >= batchHeaderLen {
		h, _ := parseBatchHeader(data)
		data = data[12+int(h.Length):]
		n++
	}
	return n
}

// TestListOffsetsIsolationAndEmptyTopics: an isolation level other than 0 or 1 answers every
// partition as asked (a duplicate and an empty topic included) with UNKNOWN_SERVER_ERROR; a
// valid request leaves a topic listed with no partitions out of the answer (Kafka 4.0).
func TestListOffsetsIsolationAndEmptyTopics(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "lo", 1, nil)
	send := func(isolation int8) *kmsg.ListOffsetsResponse {
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 6
		req.IsolationLevel = isolation
		full := kmsg.NewListOffsetsRequestTopic()
		full.Topic = "lo"
		for _, p := range []int32{0, 0, 7} {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = p, -1
			full.Partitions = append(full.Partitions, rp)
		}
		empty := kmsg.NewListOffsetsRequestTopic()
		empty.Topic = "lo"
		req.Topics = append(req.Topics, full, empty)
		conn := dialRaw(t, tb.addr) // raw: a client would split the request by partition leader
		if _, err := conn.Write(frame(req, 1)); err != nil {
			t.Fatal(err)
		}
		resp := kmsg.NewPtrListOffsetsResponse()
		resp.Version = req.Version
		readResponse(t, conn, resp, resp.IsFlexible())
		return resp
	}
	r := send(3)
	if len(r.Topics) != 2 || len(r.Topics[0].Partitions) != 3 || len(r.Topics[1].Partitions) != 0 {
		t.Fatalf("isolation 3: %+v, want both topics, three partitions", r.Topics)
	}
	for _, p := range r.Topics[0].Partitions {
		if p.ErrorCode != kerr.UnknownServerError.Code || p.Offset != -1 || p.Timestamp != -1 || p.LeaderEpoch != -1 {
			t.Fatalf("isolation 3: partition %+v, want UNKNOWN_SERVER_ERROR and -1s", p)
		}
	}
	r = send(0)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 2 {
		t.Fatalf("isolation 0: %+v, want one topic (the empty one left out) with partitions 0 and 7", r.Topics)
	}
}
