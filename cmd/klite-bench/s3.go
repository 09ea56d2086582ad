package main

// The S3 phase (klite only): what the S3 tier costs. A moto S3 server on loopback
// (`make moto`), a klite with --s3-bucket and a short flush interval, the lean generator
// producing for --s3-duration; then:
//   - flush lag: from the end of produce until the objects under PREFIX/logs/ hold at least
//     the bytes produced (the data path's segments; bounded by --s3-lag-wait);
//   - S3 requests per GB produced, PUT (PutObject and the multipart calls) and GET
//     (GetObject, HeadObject) and the rest, from the broker's klite_s3_requests_total on
//     /metrics (S3Store.Requests(): every attempt and part, what S3 bills), counted from
//     before produce until the lag is measured. Lease renewals and metadata snapshots are
//     included: they are part of the cost.
// --s3-only runs just this phase.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/internal/motoserver"
)

func s3Rows(o options) ([]row, error) {
	srv, err := motoserver.StartServer()
	if err != nil {
		return []row{{"S3 phase", "skipped", err.Error()}}, nil
	}
	defer srv.Stop()
	const bucket, prefix = "klite-bench", "bench"
	if err := srv.MakeBucket(bucket); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	health, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := []string{"AWS_ACCESS_KEY_ID=" + motoserver.AccessKey, "AWS_SECRET_ACCESS_KEY=" + motoserver.SecretKey, "AWS_EC2_METADATA_DISABLED=true"}
	args := append([]string{"--health-addr", health, "--s3-bucket", bucket, "--s3-endpoint", srv.Endpoint, "--s3-region", motoserver.Region,
		"--s3-prefix", prefix, "--s3-flush-interval", o.s3Flush.String()}, strings.Fields(o.kliteArgs)...)
	p, err := startKliteAt(o.bin, filepath.Join(o.dataDir, "klite-s3"), addr, env, 60*time.Second, args...)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	ctx := context.Background()
	topic := "bench-s3-" + time.Now().Format("150405")
	if err := createTopic(ctx, p.addr, topic, int32(o.partitions), nil); err != nil {
		return nil, err
	}
	req0, err := scrapeS3Requests(health)
	if err != nil {
		return nil, err
	}
	oo := o
	oo.duration = o.s3Duration
	recs, bytes, _, el, err := rawThroughput(ctx, p.addr, topic, oo, "none")
	if err != nil {
		return nil, fmt.Errorf("S3 phase produce: %w", err)
	}
	produced := time.Now()
	st, err := logstore.NewS3Store(ctx, logstore.S3Options{Bucket: bucket, Endpoint: srv.Endpoint, Region: motoserver.Region,
		Prefix: prefix + "/logs", Credentials: motoserver.Credentials()})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var inS3 int64
	lag := "not reached within " + o.s3LagWait.String()
	for i := 0; i < 100000; i++ {
		objs, err := st.List("")
		if err != nil {
			return nil, err
		}
		inS3 = 0
		for _, ob := range objs {
			inS3 += ob.Size
		}
		if inS3 >= bytes {
			lag = fmt.Sprintf("%.1f s", time.Since(produced).Seconds())
			break
		}
		if time.Since(produced) > o.s3LagWait {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	req1, err := scrapeS3Requests(health)
	if err != nil {
		return nil, err
	}
	var put, get, other int64
	for op, n := range req1 {
		n -= req0[op]
		switch op {
		case "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload":
			put += n
		case "GetObject", "HeadObject":
			get += n
		default:
			other += n
		}
	}
	gb := float64(bytes) / 1e9
	note := fmt.Sprintf("%s produced (%d records) in %.1f s; flush interval %s; moto on loopback", humanBytes(bytes), recs, el.Seconds(), o.s3Flush)
	return []row{
		{"S3: produce acks=all 1 KiB x6, lean generator", fmt.Sprintf("%.0f MB/s", float64(bytes)/1e6/el.Seconds()), note},
		{"S3: flush lag after produce", lag, fmt.Sprintf("until PREFIX/logs/ holds the bytes produced (%s there at the end)", humanBytes(inS3))},
		{"S3: PUT requests per GB produced", fmt.Sprintf("%.0f", float64(put)/gb), fmt.Sprintf("%d PutObject/multipart requests", put)},
		{"S3: GET requests per GB produced", fmt.Sprintf("%.0f", float64(get)/gb), fmt.Sprintf("%d GetObject/HeadObject requests", get)},
		{"S3: other requests per GB produced", fmt.Sprintf("%.0f", float64(other)/gb), fmt.Sprintf("%d (list, delete, bucket checks)", other)},
	}, nil
}

var s3ReqLine = regexp.MustCompile(`^klite_s3_requests_total\{operation="([^"]+)"\} (\S+)$`)

// scrapeS3Requests reads klite_s3_requests_total from the broker's /metrics.
func scrapeS3Requests(health string) (map[string]int64, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + health + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scraping S3 request counts: %w", err)
	}
	defer resp.Body.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := s3ReqLine.FindStringSubmatch(sc.Text()); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err == nil {
				out[m[1]] = int64(v)
			}
		}
	}
	return out, sc.Err()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%d B", n)
}
