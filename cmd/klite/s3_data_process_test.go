//go:build integration

package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/internal/motoserver"
)

func s3Value(i, size int) []byte {
	v := make([]byte, size)
	rand.New(rand.NewSource(int64(i))).Read(v)
	copy(v, fmt.Sprintf("%08d", i))
	return v
}

func segBytes(dir string) int64 {
	var n int64
	filepath.Walk(filepath.Join(dir, "segments"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(p, ".seg") {
			n += info.Size()
		}
		return nil
	})
	return n
}

// History larger than local disk, across processes (issue 11): klite with a 2 MiB local
// budget takes 24 MiB with acks=all, moto paused for part of it (produce goes on from
// local disk), keeps its local segments within the budget once S3 took the backlog, and
// after SIGTERM and a restart on the same data directory serves every record from offset 0
// and by timestamp, reading S3 through the block cache.
func TestProcessS3HistoryLargerThanLocalDisk(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	t.Setenv("AWS_ACCESS_KEY_ID", motoserver.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", motoserver.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	const budget, size, n = 2 << 20, 8 << 10, 3000
	flags := []string{"--s3-bucket", "klite", "--s3-endpoint", srv.Endpoint, "--s3-region", motoserver.Region,
		"--s3-prefix", "hist", "--s3-flush-interval", "200ms", "--s3-target-object-bytes", "1048576",
		"--s3-local-budget-bytes", fmt.Sprint(budget), "--s3-cache-bytes", "2097152"}
	dir := t.TempDir()
	p := startKlite(t, dir, flags...)
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.DefaultProduceTopic("hist"), kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(0), kgo.RecordRetries(1000), kgo.RetryTimeout(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := time.UnixMilli(1_700_000_000_000)
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			cl.Produce(ctx, &kgo.Record{Value: s3Value(i, size), Timestamp: base.Add(time.Duration(i) * time.Millisecond)},
				func(r *kgo.Record, err error) {
					if err != nil {
						t.Errorf("produce %d: %v", i, err)
					}
				})
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 1000)
	// Pause only once S3 holds all of it: the budget then has room for what follows.
	st, err := logstore.NewS3Store(ctx, logstore.S3Options{Bucket: "klite", Endpoint: srv.Endpoint, Region: motoserver.Region,
		Prefix: "hist/logs", Credentials: motoserver.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	inS3 := func() int64 {
		objs, err := st.List("")
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, o := range objs {
			if strings.HasSuffix(o.Name, ".seg") {
				n += o.Size
			}
		}
		return n
	}
	for deadline := time.Now().Add(60 * time.Second); inS3() < 1000*size; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("S3 holds %d bytes of the %d produced", inS3(), 1000*size)
		}
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	produce(1000, 1100) // 800 KiB with S3 unreachable: within the budget
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	produce(1100, n)
	deadline := time.Now().Add(90 * time.Second)
	for segBytes(dir) > budget {
		if time.Now().After(deadline) {
			t.Fatalf("local segments %d bytes, budget %d\n%s", segBytes(dir), budget, p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopKlite(t, p)
	if !strings.Contains(p.logs.String(), "final upload round done") {
		t.Fatalf("no final upload round in the logs:\n%s", p.logs)
	}

	p = startKlite(t, dir, flags...)
	defer stopKlite(t, p)
	start := time.Now()
	cc, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.ConsumeTopics("hist"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	next := 0
	for next < n {
		fs := cc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", next, n)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		for _, r := range fs.Records() {
			if r.Offset != int64(next) || !bytes.Equal(r.Value, s3Value(next, size)) {
				t.Fatalf("record %d: offset %d value %.8q", next, r.Offset, r.Value)
			}
			next++
		}
	}
	took := time.Since(start)
	t.Logf("read %d MiB back in %v (%.1f MiB/s), local segments %d bytes", n*size>>20, took, float64(n*size)/(1<<20)/took.Seconds(), segBytes(dir))
	adm := kadm.NewClient(cc)
	for _, i := range []int{0, 1, 999, 1050, 2500, n - 1} {
		lo, err := adm.ListOffsetsAfterMilli(ctx, base.Add(time.Duration(i)*time.Millisecond).UnixMilli(), "hist")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup("hist", 0)
		if o.Err != nil || o.Offset != int64(i) {
			t.Fatalf("offset for the timestamp of record %d: %d, %v", i, o.Offset, o.Err)
		}
	}
}
