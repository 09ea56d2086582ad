package broker

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func testRecords(topic string, n int) []*kgo.Record {
	base := time.UnixMilli(1_700_000_000_000)
	out := make([]*kgo.Record, n)
	for i := range out {
		out[i] = &kgo.Record{
			Topic:     topic,
			Key:       []byte(fmt.Sprintf("key-%d", i)),
			Value:     bytes.Repeat([]byte{byte('a' + i%26)}, 10+i),
			Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(i))}, {Key: "empty"}},
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return out
}

func sameRecord(a, b *kgo.Record) bool {
	if !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) || !a.Timestamp.Equal(b.Timestamp) || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}

// TestProduceFetchRoundTrip covers idempotent and plain producers, every acks setting and
// every compression codec: records come back byte-equal (keys, values, headers, timestamps).
func TestProduceFetchRoundTrip(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	acks := map[string]kgo.Acks{"acks0": kgo.NoAck(), "acks1": kgo.LeaderAck(), "acksall": kgo.AllISRAcks()}
	for cname, codec := range codecs {
		for aname, ack := range acks {
			for _, idem := range []bool{true, false} {
				if idem && aname != "acksall" {
					continue // kgo requires acks=all for idempotence
				}
				name := fmt.Sprintf("%s-%s-idem%v", cname, aname, idem)
				t.Run(name, func(t *testing.T) {
					topic := "rt-" + name
					opts := []kgo.Opt{kgo.ProducerBatchCompression(codec), kgo.RequiredAcks(ack), kgo.AllowAutoTopicCreation()}
					if !idem {
						opts = append(opts, kgo.DisableIdempotentWrite())
					}
					cl := tb.client(t, opts...)
					recs := testRecords(topic, 50)
					if err := cl.ProduceSync(ctxT(t, 10*time.Second), recs...).FirstErr(); err != nil {
						t.Fatal(err)
					}
					got := consumeN(t, tb, topic, len(recs))
					if len(got) != len(recs) {
						t.Fatalf("got %d records, want %d", len(got), len(recs))
					}
					for i := range recs {
						if got[i].Offset != int64(i) {
							t.Fatalf("record %d has offset %d", i, got[i].Offset)
						}
						if !sameRecord(got[i], recs[i]) {
							t.Fatalf("record %d differs: got %+v want %+v", i, got[i], recs[i])
						}
					}
				})
			}
		}
	}
}
