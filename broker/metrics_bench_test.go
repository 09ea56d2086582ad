package broker

import (
	"log/slog"
	"testing"

	"github.com/klite/klite/broker/metrics"
	"github.com/klite/klite/broker/server"
	"github.com/klite/klite/broker/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkProduceDispatch is one acks=all Produce request (6 partitions, a 16-record batch
// each) through Dispatch to the in-memory WAL and back, with metrics off and on: the CPU the
// metrics add per request, without the disk and network noise of make bench. Compare runs
// alternately: go test -c, then -test.bench 'ProduceDispatch/off' and '.../on' in turn.
func BenchmarkProduceDispatch(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			cfg := Config{DataDir: b.TempDir(), WAL: storage.NewMemWAL(), Meta: storage.NewMemMetaLog(), Logger: slog.New(slog.DiscardHandler)}
			if mode == "on" {
				cfg.Metrics = metrics.New()
			}
			br, err := Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			if _, e, msg := br.createTopic("bench", 6, nil, false, false, nil); e != nil {
				b.Fatal(e, msg)
			}
			batch := rawBatch(-1, -1, -1, 16, 1000, 1)
			c := &server.Conn{ID: 1, Principal: "User:ANONYMOUS"}
			h := &server.Header{Key: 0, Version: 9}
			done := make(chan kmsg.Response, 1)
			respond := func(r kmsg.Response) { done <- r }
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req := kmsg.NewPtrProduceRequest()
				req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic = "bench"
				for p := int32(0); p < 6; p++ {
					rp := kmsg.NewProduceRequestTopicPartition()
					rp.Partition, rp.Records = p, append([]byte(nil), batch...) // validation assigns offsets in place
					rt.Partitions = append(rt.Partitions, rp)
				}
				req.Topics = append(req.Topics, rt)
				br.Dispatch(c, h, req, respond)
				if r := (<-done).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
					b.Fatalf("produce error %d %v", r.Topics[0].Partitions[0].ErrorCode, *r.Topics[0].Partitions[0].ErrorMessage)
				}
			}
		})
	}
}
