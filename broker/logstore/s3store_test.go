package logstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/klite/klite/internal/motoserver"
)

// newMotoStore starts a moto server for t, creates a bucket and returns an S3Store on it
// (opts.Bucket, Endpoint, Region and Credentials are filled in).
func newMotoStore(t *testing.T, opts S3Options) *S3Store {
	t.Helper()
	return motoStoreOn(t, motoserver.Start(t), opts)
}

func motoStoreOn(t *testing.T, srv *motoserver.Server, opts S3Options) *S3Store {
	t.Helper()
	if opts.Bucket == "" {
		opts.Bucket = "klite-test"
		srv.CreateBucket(t, opts.Bucket)
	}
	opts.Endpoint, opts.Region, opts.Credentials = srv.Endpoint, motoserver.Region, motoserver.Credentials()
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	st, err := NewS3Store(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CheckBucket(); err != nil {
		t.Fatal(err)
	}
	return st
}

// Objects above the threshold go up as multipart uploads: the object reads back whole and
// by range across part boundaries, and no upload is left open.
func TestS3StoreMultipart(t *testing.T) {
	st := newMotoStore(t, S3Options{Prefix: "mp", MultipartThreshold: 6 << 20, PartSize: 5 << 20})
	data := make([]byte, 11<<20+123) // three parts: 5 MiB, 5 MiB, 1 MiB+123
	rand.Read(data)
	if err := st.Put("big/seg", data); err != nil {
		t.Fatal(err)
	}
	got, err := st.Get("big/seg", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get whole: %d bytes, %v; want %d bytes equal", len(got), err, len(data))
	}
	off := int64(5<<20 - 10) // spans the first part boundary
	got, err = st.Get("big/seg", off, 20)
	if err != nil || !bytes.Equal(got, data[off:off+20]) {
		t.Fatalf("Get across a part boundary: %x, %v", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ups, err := st.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("klite-test")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("%d multipart uploads left open", len(ups.Uploads))
	}
	reqs := st.Requests()
	if reqs["CreateMultipartUpload"] != 1 || reqs["UploadPart"] != 3 || reqs["CompleteMultipartUpload"] != 1 || reqs["PutObject"] != 0 {
		t.Errorf("requests %v, want one multipart upload of three parts", reqs)
	}
	// S3 gives a multipart object the ETag "<md5 of the part md5s>-<parts>".
	head, err := st.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("klite-test"), Key: aws.String("mp/big/seg")})
	if err != nil {
		t.Fatal(err)
	}
	if etag := aws.ToString(head.ETag); !strings.HasSuffix(strings.Trim(etag, `"`), "-3") {
		t.Errorf("ETag %s: not a three-part upload", etag)
	}
}

// A server that stops answering fails a call within its Timeout after bounded retries,
// and the error is not ErrNotFound (callers must not read "gone" into "unreachable").
func TestS3StoreUnreachable(t *testing.T) {
	srv := motoserver.Start(t)
	st := motoStoreOn(t, srv, S3Options{Prefix: "x", MaxAttempts: 3, MaxBackoff: 50 * time.Millisecond, Timeout: 20 * time.Second})
	if err := st.Put("a/b", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := st.Put("a/c", []byte("v")); err == nil {
		t.Fatal("Put succeeded with the server stopped")
	}
	_, err := st.Get("a/b", 0, -1)
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Get with the server stopped: %v, want an error other than ErrNotFound", err)
	}
	if _, err := st.List("a/"); err == nil {
		t.Fatal("List succeeded with the server stopped")
	}
}

// A server that hangs (paused, state kept) fails calls after bounded attempts of
// ReadTimeout each, and the same store works again once it answers.
func TestS3StoreHungServer(t *testing.T) {
	srv := motoserver.Start(t)
	st := motoStoreOn(t, srv, S3Options{Prefix: "x", MaxAttempts: 2, MaxBackoff: 10 * time.Millisecond,
		ReadTimeout: 300 * time.Millisecond, Timeout: 20 * time.Second})
	if err := st.Put("a/b", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	gets := st.Requests()["GetObject"]
	_, err := st.Get("a/b", 0, -1)
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get from a hung server: %v, want a read timeout after the attempts", err)
	}
	if n := st.Requests()["GetObject"] - gets; n != 2 {
		t.Errorf("%d GetObject attempts against the hung server, want MaxAttempts (2)", n)
	}
	if err := st.Put("a/c", []byte("w")); err == nil {
		t.Fatal("Put to a hung server succeeded")
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get("a/b", 0, -1); err != nil || string(got) != "v" {
		t.Fatalf("Get after the server came back: %q, %v", got, err)
	}
}

// BenchmarkS3Store measures PUT and GET of whole objects against moto on loopback, to know
// the order of magnitude (moto is far slower than S3 per byte): go test -run NONE
// -bench BenchmarkS3Store -benchtime 10x ./broker/logstore/
func BenchmarkS3Store(b *testing.B) {
	srv := motoserver.Start(b)
	b.Logf("moto_server start: %v", srv.StartTime)
	srv.CreateBucket(b, "bench")
	st, err := NewS3Store(context.Background(), S3Options{Bucket: "bench", Endpoint: srv.Endpoint,
		Region: motoserver.Region, Credentials: motoserver.Credentials()})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for _, size := range []int{1 << 20, 16 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		name := fmt.Sprintf("obj-%d", size)
		b.Run(fmt.Sprintf("put-%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				if err := st.Put(name, data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("get-%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				if got, err := st.Get(name, 0, -1); err != nil || len(got) != size {
					b.Fatal(len(got), err)
				}
			}
		})
		b.Run(fmt.Sprintf("get-range-64KiB-of-%dMiB", size>>20), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if got, err := st.Get(name, int64(size/2), 64<<10); err != nil || len(got) != 64<<10 {
					b.Fatal(len(got), err)
				}
			}
		})
	}
}
