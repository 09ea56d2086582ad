package logstore

// S3Store: the Store in an S3 bucket (AWS or any S3-compatible server), issue 11.
//
// Object names map to keys under a prefix:
//
//	s3://BUCKET/PREFIX/NAME        one object per Store name, bytes exactly as Put
//
// klite's layout under --s3-prefix P (the broker builds the stores; see README's S3 notes):
//
//	P/lease                        the writer lease (s3lease.go), outside every Store
//	P/logs/<partition>/...         partition segments and checkpoints (S3Store, prefix P/logs)
//	P/meta/...                     metadata snapshots (S3Store, prefix P/meta)
//
// How S3 meets the Store contract:
//   - Put is atomic and durable when it returns: S3 makes an object visible only when its
//     PutObject (or CompleteMultipartUpload) succeeds, whole, and has been strongly
//     read-after-write consistent for GET, LIST and overwrite since December 2020. A replace
//     is therefore atomic: a reader sees the old object or the whole new one. The Log never
//     needs a rename: compaction writes each cleaned group as a new object name (a newer
//     generation) and deletes the old ones after, and checkpoints are single-object replaces,
//     so the crash rules of Open hold on S3 unchanged.
//   - Objects above MultipartThreshold go up as a multipart upload (parts in parallel); the
//     object exists only once CompleteMultipartUpload succeeds, and a failed upload is aborted
//     so no parts linger (a bucket lifecycle rule for incomplete uploads catches a crash).
//   - Get(off, n) is one ranged GET (Range: bytes=off-off+n-1); a range starting at or past the
//     end answers 416 from S3, which is the Store's "reading past the end returns what exists".
//   - List pages through ListObjectsV2 (1000 keys a page); S3 lists in UTF-8 byte order,
//     which for the Store's ASCII names is the sorted order the interface promises.
//   - Delete of a missing key succeeds on S3, as the interface wants.
//   - Transient failures (5xx, throttling, connection resets, an attempt whose connection is
//     silent for ReadTimeout) are retried by the SDK's standard retryer with jittered
//     exponential backoff, MaxAttempts in all; each Store call has a deadline (Timeout) over
//     all its attempts.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// S3Options configure an S3Store.
type S3Options struct {
	Bucket string
	// Region of the bucket (default: the SDK's chain, AWS_REGION and ~/.aws/config; else us-east-1).
	Region string
	// Endpoint of an S3-compatible server (e.g. http://127.0.0.1:9000); when set, addressing is
	// path-style (http://host/bucket/key), which such servers expect.
	Endpoint string
	// Prefix is prepended to every name, with a slash (empty: names are keys).
	Prefix string
	// Credentials override the standard AWS chain (environment, shared files, SSO, web
	// identity, ECS and EC2 roles), which is used when nil.
	Credentials aws.CredentialsProvider

	// MultipartThreshold: objects larger than this go up in parts of PartSize (defaults 32 MiB
	// and 8 MiB; S3 wants parts of at least 5 MiB except the last).
	MultipartThreshold int64
	PartSize           int64
	// PartConcurrency bounds the parts of one upload in flight (default 4).
	PartConcurrency int
	// MaxAttempts bounds the tries of one request (default 6), MaxBackoff the wait between two
	// (default 5s).
	MaxAttempts int
	MaxBackoff  time.Duration
	// Timeout bounds one Store call, all its requests and retries included (default 2m).
	Timeout time.Duration
	// Requests counts the HTTP requests sent, retries and multipart parts included (what S3
	// bills); NewS3Store makes one when nil.
	Requests *RequestCounter
	// ReadTimeout fails (and so retries) an attempt whose connection delivers no byte for
	// this long, waiting for the answer included (default 20s): a server that stopped
	// answering costs one ReadTimeout per attempt, not the whole Timeout.
	ReadTimeout time.Duration
}

func (o *S3Options) defaults() {
	if o.MultipartThreshold <= 0 {
		o.MultipartThreshold = 32 << 20
	}
	if o.PartSize <= 0 {
		o.PartSize = 8 << 20
	}
	if o.PartSize < 5<<20 {
		o.PartSize = 5 << 20
	}
	if o.PartConcurrency <= 0 {
		o.PartConcurrency = 4
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 20 * time.Second
	}
	o.Prefix = strings.Trim(o.Prefix, "/")
}

// S3Store is a Store in an S3 bucket.
type S3Store struct {
	opts   S3Options
	client *s3.Client
	ctx    context.Context // cancelled by Close: ends calls in flight
	cancel context.CancelFunc
}

// NewS3Client builds the SDK client S3Store and S3Lease use: credentials from opts or the
// standard chain, the bounded standard retryer, path-style addressing with an endpoint.
func NewS3Client(ctx context.Context, opts S3Options) (*s3.Client, error) {
	opts.defaults()
	var lo []func(*config.LoadOptions) error
	if opts.Region != "" {
		lo = append(lo, config.WithRegion(opts.Region))
	}
	if opts.Credentials != nil {
		lo = append(lo, config.WithCredentialsProvider(opts.Credentials))
	}
	lo = append(lo, config.WithHTTPClient(awshttp.NewBuildableClient().WithReadTimeout(opts.ReadTimeout)))
	lo = append(lo, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = opts.MaxAttempts
			so.MaxBackoff = opts.MaxBackoff
		})
	}))
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("s3: loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Requests != nil {
			o.APIOptions = append(o.APIOptions, opts.Requests.install)
		}
		// Ranged GETs carry no whole-object checksum to check; segments carry their own CRCs.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
			o.UsePathStyle = true
		}
	}), nil
}

// NewS3Store returns the store for opts.Bucket under opts.Prefix. It does not touch the
// network; CheckBucket does.
func NewS3Store(ctx context.Context, opts S3Options) (*S3Store, error) {
	if opts.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	opts.defaults()
	if opts.Requests == nil {
		opts.Requests = &RequestCounter{}
	}
	client, err := NewS3Client(ctx, opts)
	if err != nil {
		return nil, err
	}
	s := &S3Store{opts: opts, client: client}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Requests counts the requests sent so far, by S3 operation (PutObject, GetObject, ...).
func (s *S3Store) Requests() map[string]int64 { return s.opts.Requests.Snapshot() }

// Client is the SDK client (shared with the lease).
func (s *S3Store) Client() *s3.Client { return s.client }

// Close cancels calls in flight; later calls fail.
func (s *S3Store) Close() error {
	s.cancel()
	return nil
}

// CheckBucket answers whether the bucket exists and the credentials may use it (HeadBucket).
func (s *S3Store) CheckBucket() error {
	ctx, cancel := s.call()
	defer cancel()
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.opts.Bucket})
	switch httpStatus(err) {
	case 0:
		if err != nil {
			return fmt.Errorf("s3: bucket %s unreachable: %w", s.opts.Bucket, err)
		}
		return nil
	case http.StatusNotFound:
		return fmt.Errorf("s3: bucket %s does not exist (create it first)", s.opts.Bucket)
	case http.StatusForbidden:
		return fmt.Errorf("s3: access to bucket %s denied: check the AWS credentials and the bucket policy", s.opts.Bucket)
	}
	return fmt.Errorf("s3: bucket %s: %w", s.opts.Bucket, err)
}

func (s *S3Store) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.opts.Timeout)
}

func (s *S3Store) key(name string) string {
	if s.opts.Prefix == "" {
		return name
	}
	return s.opts.Prefix + "/" + name
}

func (s *S3Store) Put(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	ctx, cancel := s.call()
	defer cancel()
	key := s.key(name)
	if int64(len(data)) > s.opts.MultipartThreshold {
		if err := s.putMultipart(ctx, key, data); err != nil {
			return fmt.Errorf("s3: put %s: %w", key, err)
		}
		return nil
	}
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.opts.Bucket,
		Key:           &key,
		Body:          bytes.NewReader(data), // seekable: the retryer rewinds it
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return fmt.Errorf("s3: put %s: %w", key, err)
	}
	return nil
}

func (s *S3Store) putMultipart(ctx context.Context, key string, data []byte) error {
	up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.opts.Bucket, Key: &key})
	if err != nil {
		return err
	}
	nparts := int((int64(len(data)) + s.opts.PartSize - 1) / s.opts.PartSize)
	parts := make([]types.CompletedPart, nparts)
	errs := make([]error, nparts)
	sem := make(chan struct{}, s.opts.PartConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < nparts; i++ {
		lo := int64(i) * s.opts.PartSize
		hi := min(lo+s.opts.PartSize, int64(len(data)))
		num := int32(i + 1)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: &s.opts.Bucket, Key: &key, UploadId: up.UploadId, PartNumber: &num,
				Body: bytes.NewReader(data[lo:hi]), ContentLength: aws.Int64(hi - lo),
			})
			if err != nil {
				errs[num-1] = fmt.Errorf("part %d: %w", num, err)
				return
			}
			parts[num-1] = types.CompletedPart{ETag: out.ETag, PartNumber: &num}
		}()
	}
	wg.Wait()
	err = errors.Join(errs...)
	if err == nil {
		_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &s.opts.Bucket, Key: &key, UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
	}
	if err != nil {
		// Abort with a fresh deadline: ctx may be what failed.
		actx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.opts.Bucket, Key: &key, UploadId: up.UploadId})
		return err
	}
	return nil
}

func (s *S3Store) Get(name string, off, n int64) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("logstore: negative offset %d", off)
	}
	ctx, cancel := s.call()
	defer cancel()
	key := s.key(name)
	if n == 0 { // no byte to read, but a missing object is still ErrNotFound
		_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.opts.Bucket, Key: &key})
		if err != nil {
			return nil, s.getErr(name, key, err)
		}
		return []byte{}, nil
	}
	in := &s3.GetObjectInput{Bucket: &s.opts.Bucket, Key: &key}
	if off > 0 || n > 0 {
		r := fmt.Sprintf("bytes=%d-", off)
		if n > 0 {
			r += fmt.Sprint(off + n - 1)
		}
		in.Range = &r
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		if isS3Code(err, "InvalidRange") || httpStatus(err) == http.StatusRequestedRangeNotSatisfiable {
			return []byte{}, nil // the object exists; the range starts at or past its end
		}
		return nil, s.getErr(name, key, err)
	}
	defer out.Body.Close()
	size := int64(0)
	if out.ContentLength != nil {
		size = *out.ContentLength
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := io.Copy(buf, out.Body); err != nil {
		return nil, fmt.Errorf("s3: get %s: %w", key, err)
	}
	b := buf.Bytes()
	if n > 0 && int64(len(b)) > n { // a server that ignored the range
		b = b[:n]
	}
	return b, nil
}

func (s *S3Store) getErr(name, key string, err error) error {
	if isS3Code(err, "NoSuchKey", "NotFound") || httpStatus(err) == http.StatusNotFound {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return fmt.Errorf("s3: get %s: %w", key, err)
}

func (s *S3Store) List(prefix string) ([]Object, error) {
	ctx, cancel := s.call()
	defer cancel()
	full := s.key(prefix) // with a Prefix, List("") is everything under "Prefix/"
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.opts.Bucket, Prefix: &full})
	var out []Object
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: list %s: %w", full, err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), s.opts.Prefix+"/")
			if s.opts.Prefix == "" {
				name = aws.ToString(o.Key)
			}
			if checkName(name) != nil {
				continue // not written by a Store (e.g. a key with a bad element): not ours
			}
			out = append(out, Object{Name: name, Size: aws.ToInt64(o.Size)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *S3Store) Delete(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	ctx, cancel := s.call()
	defer cancel()
	key := s.key(name)
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.opts.Bucket, Key: &key}); err != nil {
		if isS3Code(err, "NoSuchKey") {
			return nil
		}
		return fmt.Errorf("s3: delete %s: %w", key, err)
	}
	return nil
}

// RequestCounter counts S3 requests by operation, each attempt once.
type RequestCounter struct {
	mu sync.Mutex
	n  map[string]int64
}

// install adds the counting step after the retry middleware, so it runs once per attempt.
func (c *RequestCounter) install(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("kliteRequestCounter",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			if c.n == nil {
				c.n = map[string]int64{}
			}
			c.n[middleware.GetOperationName(ctx)]++
			c.mu.Unlock()
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}

// Snapshot returns the counts so far.
func (c *RequestCounter) Snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

func isS3Code(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
