package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/klite/klite/internal/motoserver"
)

// BenchmarkS3Tier produces KLITE_S3_BENCH_MB (default 256) MiB over 4 partitions with
// acks=all into a broker on moto with the default object size and flush interval, and
// reports the S3 requests per GiB produced, the largest flush lag seen, and the
// read-through throughput of a consumer reading everything back from S3 (a local budget
// of KLITE_S3_BENCH_BUDGET_MB, default 64, evicts the rest; produce is throttled by it
// when moto takes less than the producer gives). Run with -benchtime=1x.
func BenchmarkS3Tier(b *testing.B) {
	mb, budgetMB := 256, 64
	if v, err := strconv.Atoi(os.Getenv("KLITE_S3_BENCH_MB")); err == nil && v > 0 {
		mb = v
	}
	if v, err := strconv.Atoi(os.Getenv("KLITE_S3_BENCH_BUDGET_MB")); err == nil && v > 0 {
		budgetMB = v
	}
	srv := motoserver.Start(b)
	srv.CreateBucket(b, "klite")
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		l, tbClose, addr := benchBroker(b, dir, srv, fmt.Sprintf("bench%d", i), int64(budgetMB)<<20)
		const size = 16 << 10
		n := mb << 20 / size
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(5*time.Millisecond), kgo.AllowAutoTopicCreation(),
			kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		var maxLag int64
		var maxAge time.Duration
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				by, age := l.S3FlushLag()
				maxLag, maxAge = max(maxLag, by), max(maxAge, age)
			}
		}()
		val := make([]byte, size)
		for j := range val {
			val[j] = byte(j * 7919 >> 3)
		}
		start := time.Now()
		for j := 0; j < n; j++ {
			cl.Produce(ctx, &kgo.Record{Topic: "bench", Value: val}, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		produced := time.Since(start)
		deadline := time.Now().Add(5 * time.Minute)
		for {
			if by, _ := l.S3FlushLag(); by == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("flush lag never reached zero")
			}
			time.Sleep(20 * time.Millisecond)
		}
		drained := time.Since(start)
		close(stop)
		wg.Wait()
		reqs := l.S3Requests()
		gib := float64(n*size) / (1 << 30)
		puts := reqs["PutObject"] + reqs["UploadPart"] + reqs["CreateMultipartUpload"] + reqs["CompleteMultipartUpload"]
		getsBefore := reqs["GetObject"]

		// Read everything back: most of it only S3 holds now.
		cc, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
		if err != nil {
			b.Fatal(err)
		}
		rstart := time.Now()
		got := 0
		for got < n {
			fs := cc.PollFetches(ctx)
			if ctx.Err() != nil {
				b.Fatalf("read %d of %d", got, n)
			}
			got += len(fs.Records())
		}
		read := time.Since(rstart)
		reqs2 := l.S3Requests()
		b.ReportMetric(float64(puts)/gib, "PUT/GiB")
		b.ReportMetric(float64(getsBefore)/gib, "GETproduce/GiB")
		b.ReportMetric(float64(reqs2["GetObject"]-getsBefore)/gib, "GETread/GiB")
		b.ReportMetric(float64(maxLag)/(1<<20), "maxlag-MiB")
		b.ReportMetric(maxAge.Seconds(), "maxlag-s")
		b.ReportMetric(float64(n*size)/(1<<20)/produced.Seconds(), "produce-MiB/s")
		b.ReportMetric(float64(n*size)/(1<<20)/drained.Seconds(), "inS3-MiB/s")
		b.ReportMetric(float64(n*size)/(1<<20)/read.Seconds(), "readback-MiB/s")
		b.Logf("%d MiB: requests %v (after produce), %v (after read); tier %+v", mb, reqs, reqs2, l.S3TierStats())
		cc.Close()
		cl.Close()
		cancel()
		tbClose()
	}
}

func benchBroker(b *testing.B, dir string, srv *motoserver.Server, prefix string, budget int64) (*Broker, func(), string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{DataDir: dir, AdvertisedAddr: l.Addr().String(), AutoCreateTopics: true, DefaultPartitions: 4,
		Logger: slog.New(slog.DiscardHandler),
		S3: S3Config{Bucket: "klite", Endpoint: srv.Endpoint, Region: motoserver.Region, Prefix: prefix,
			Credentials: motoserver.Credentials(), LocalBudgetBytes: budget, FlushInterval: 10 * time.Second,
			TargetObjectBytes: 64 << 20, CacheBytes: 1 << 30}}
	br, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	go br.Serve(l)
	return br, func() { br.Close() }, l.Addr().String()
}
