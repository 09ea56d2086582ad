package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRestartKeepsEverything produces to several topics (one with LogAppendTime), restarts
// the broker (cleanly, then by abandoning it without Close, as after a crash) and checks that
// topics, topic IDs, cluster ID, offsets and records all come back.
func TestRestartKeepsEverything(t *testing.T) {
	for _, crash := range []bool{false, true} {
		name := "clean"
		if crash {
			name = "crash"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			tb := startBroker(t, dir)
			adm := tb.admin(t)
			createTopic(t, adm, "r1", 3, nil)
			lat := "LogAppendTime"
			createTopic(t, adm, "r2", 1, map[string]*string{"message.timestamp.type": &lat})
			cl := tb.client(t, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
			recs := testRecords("r1", 40)
			for i, r := range recs {
				r.Partition = int32(i % 3)
			}
			cl2 := tb.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err := cl2.ProduceSync(ctxT(t, 10*time.Second), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(ctxT(t, 10*time.Second), testRecords("r2", 5)...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			td, err := adm.ListTopics(ctxT(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			ids := map[string][16]byte{"r1": td["r1"].ID, "r2": td["r2"].ID}
			cid := tb.ClusterID()
			before := consumeN(t, tb, "r2", 5)

			if crash {
				tb.abandon()
			} else if err := tb.Close(); err != nil {
				t.Fatal(err)
			}
			tb = startBroker(t, dir)
			adm = tb.admin(t)
			if tb.ClusterID() != cid {
				t.Fatalf("cluster id changed from %s to %s", cid, tb.ClusterID())
			}
			td, err = adm.ListTopics(ctxT(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			for n, id := range ids {
				if td[n].ID != id {
					t.Fatalf("topic %s id changed", n)
				}
			}
			if len(td["r1"].Partitions) != 3 {
				t.Fatalf("r1 has %d partitions after restart", len(td["r1"].Partitions))
			}
			ends, err := adm.ListEndOffsets(ctxT(t, 5*time.Second), "r1", "r2")
			if err != nil {
				t.Fatal(err)
			}
			for p := int32(0); p < 3; p++ {
				if o, _ := ends.Lookup("r1", p); o.Offset != 14 && o.Offset != 13 {
					t.Fatalf("r1/%d end offset %d", p, o.Offset)
				}
			}
			got := consumeN(t, tb, "r1", 40)
			byKey := map[string]*kgo.Record{}
			for _, r := range got {
				byKey[string(r.Key)] = r
			}
			for _, r := range recs {
				g := byKey[string(r.Key)]
				if g == nil || !sameRecord(g, r) || g.Partition != r.Partition {
					t.Fatalf("record %s lost or changed after restart", r.Key)
				}
			}
			after := consumeN(t, tb, "r2", 5)
			for i := range before {
				if !sameRecord(before[i], after[i]) || after[i].Attrs.TimestampType() != 1 {
					t.Fatalf("LogAppendTime record %d changed after restart", i)
				}
			}
			// New data continues at the right offsets.
			r := tb.client(t).ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: "r2", Value: []byte("x")})
			if rec, err := r.First(); err != nil || rec.Offset != 5 {
				t.Fatalf("produce after restart: %v offset %v", err, rec)
			}
		})
	}
}

// TestLogAppendTime checks that a LogAppendTime topic stamps the broker's time on the batch
// (returned in the produce response and seen by consumers) while a CreateTime topic keeps
// the producer's timestamps.
func TestLogAppendTime(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	tb := startBroker(t, t.TempDir(), func(c *Config) { c.Now = func() time.Time { return now } })
	adm := tb.admin(t)
	lat := "LogAppendTime"
	createTopic(t, adm, "lat", 1, map[string]*string{"message.timestamp.type": &lat})
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression()} {
		cl := tb.client(t, kgo.ProducerBatchCompression(codec))
		recs := testRecords("lat", 3)
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// kgo ignores the response's log append time; check it on the wire.
	r := rawProduce(t, tb.client(t), "lat", rawBatch(-1, -1, -1, 2, 1000, 1))
	if r.ErrorCode != 0 || r.BaseOffset != 6 || r.LogAppendTime != now.UnixMilli() {
		t.Fatalf("raw produce: error %d base %d log append time %d", r.ErrorCode, r.BaseOffset, r.LogAppendTime)
	}
	if r := rawProduce(t, tb.client(t), "r-create", nil); r.ErrorCode == 0 {
		t.Fatal("produce without records succeeded")
	}
	got := consumeN(t, tb, "lat", 8)
	for _, r := range got {
		if !r.Timestamp.Equal(now) || r.Attrs.TimestampType() != 1 {
			t.Fatalf("record %d: timestamp %v type %d, want %v type 1", r.Offset, r.Timestamp, r.Attrs.TimestampType(), now)
		}
	}
	off, ts := rawListOffset(t, tb.client(t), "lat", now.UnixMilli())
	if off != 0 || ts != now.UnixMilli() {
		t.Fatalf("lookup by log append time = (%d, %d)", off, ts)
	}
}
