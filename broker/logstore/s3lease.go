package logstore

// S3Lease: one writer per bucket and prefix, with S3 conditional writes.
//
// The lease is one small JSON object, s3://BUCKET/PREFIX/lease:
//
//	{"owner":"<random 128-bit hex>","host":"<hostname>","pid":1234,
//	 "renewed_ms":<holder's clock>,"ttl_ms":30000,"released":false}
//
//   - Acquire: PutObject with If-None-Match: * creates it; only one creator can win (412
//     for the others). Where it exists, it is read: if it was released, or its Last-Modified
//     is more than ttl_ms old by the S3 server's clock (the Date of the same answer; so the
//     brokers' clocks never matter), it is taken over with If-Match: <its ETag>, which again
//     only one contender can win. Otherwise Acquire fails with a *LeaseHeldError naming the
//     holder.
//   - Renew: PutObject with If-Match: <our last ETag>. A 412 means another broker took the
//     lease over after it expired: ErrLeaseLost, and this broker must stop writing.
//   - Release: the same conditional write with "released":true, so the next broker starts
//     at once instead of waiting out the TTL. Only PutObject conditions are used (no
//     conditional DELETE), which both AWS S3 and moto implement.
//   - A write whose answer was lost (the SDK retries it) may find the condition failed on
//     its own earlier success: when the object then names our owner and renewal time, it is
//     ours and its ETag is adopted.
//   - Valid reports whether the last successful write is younger than the TTL by this
//     process's monotonic clock, minus a margin: a holder that could not renew in time
//     must assume another broker may have taken over.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// ErrLeaseHeld is wrapped by Acquire's error when another broker holds the lease.
var ErrLeaseHeld = errors.New("s3 lease held by another broker")

// ErrLeaseLost is returned by Renew and Release when another broker has taken the lease.
var ErrLeaseLost = errors.New("s3 lease lost to another broker")

// LeaseRecord is the lease object's content.
type LeaseRecord struct {
	Owner     string `json:"owner"`
	Host      string `json:"host"`
	PID       int    `json:"pid"`
	RenewedMs int64  `json:"renewed_ms"`
	TTLMs     int64  `json:"ttl_ms"`
	Released  bool   `json:"released"`
}

const maxLeaseBytes = 4096

// ParseLeaseRecord decodes a lease object; anything that is not one (too big, not JSON, no
// owner, a TTL out of range) is an error, and such an object is never taken as held.
func ParseLeaseRecord(b []byte) (LeaseRecord, error) {
	var r LeaseRecord
	if len(b) > maxLeaseBytes {
		return r, fmt.Errorf("lease object of %d bytes", len(b))
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("lease object: %w", err)
	}
	if r.Owner == "" || r.TTLMs <= 0 || r.TTLMs > int64(24*time.Hour/time.Millisecond) {
		return r, fmt.Errorf("lease object: owner %q, ttl_ms %d", r.Owner, r.TTLMs)
	}
	return r, nil
}

// LeaseHeldError says who holds the lease.
type LeaseHeldError struct {
	Bucket, Key string
	Holder      LeaseRecord
	Age         time.Duration // since its last renewal, by the S3 server's clock
}

func (e *LeaseHeldError) Error() string {
	left := time.Duration(e.Holder.TTLMs)*time.Millisecond - e.Age
	return fmt.Sprintf("s3://%s/%s is held by another klite (host %s, pid %d), renewed %s ago, "+
		"expires in %s unless renewed: only one broker may use a bucket and prefix; stop the other "+
		"broker or choose another --s3-prefix", e.Bucket, e.Key, e.Holder.Host, e.Holder.PID,
		e.Age.Round(time.Second), left.Round(time.Second))
}

func (e *LeaseHeldError) Unwrap() error { return ErrLeaseHeld }

// S3Lease is this process's claim on one lease object.
type S3Lease struct {
	client      *s3.Client
	bucket, key string
	ttl         time.Duration
	rec         LeaseRecord

	mu        sync.Mutex
	etag      string    // of our last successful write; "" while not held
	lastWrite time.Time // local monotonic time of that write's start

	// serverNow overrides the S3 server's clock (tests of expiry).
	serverNow func() time.Time
}

// NewS3Lease prepares a lease on s3://bucket/key (nothing is sent until Acquire).
func NewS3Lease(client *s3.Client, bucket, key string, ttl time.Duration) *S3Lease {
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	var id [16]byte
	rand.Read(id[:])
	host, _ := os.Hostname()
	return &S3Lease{client: client, bucket: bucket, key: key, ttl: ttl,
		rec: LeaseRecord{Owner: hex.EncodeToString(id[:]), Host: host, PID: os.Getpid(), TTLMs: ttl.Milliseconds()}}
}

// TTL is the lease's time to live; renew well within it (a third is usual).
func (l *S3Lease) TTL() time.Duration { return l.ttl }

// Acquire takes the lease, or fails with a *LeaseHeldError while another broker holds it.
func (l *S3Lease) Acquire(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Bounded: each round loses only to a contender that wrote in between.
	for round := 0; round < 3; round++ {
		ok, err := l.write(ctx, "", false)
		if err != nil || ok {
			return err
		}
		cur, etag, age, err := l.read(ctx)
		if errors.Is(err, ErrNotFound) {
			continue // released by deletion in between: create again
		}
		if err != nil {
			return err
		}
		if cur.Owner == l.rec.Owner && cur.RenewedMs == l.rec.RenewedMs && !cur.Released {
			l.etag = etag // our own create, retried after a lost answer
			return nil
		}
		if !cur.Released && cur.Owner != "" && age <= time.Duration(cur.TTLMs)*time.Millisecond {
			return &LeaseHeldError{Bucket: l.bucket, Key: l.key, Holder: cur, Age: age}
		}
		// Released, expired or unreadable: take it over, if nobody else does first.
		if ok, err := l.write(ctx, etag, false); err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("s3 lease s3://%s/%s: %w (contended)", l.bucket, l.key, ErrLeaseHeld)
}

// Renew extends the lease; ErrLeaseLost when another broker took it over.
func (l *S3Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.update(ctx, false)
}

// Release gives the lease up so another broker may start at once (nothing to do when it
// is not held, or was lost).
func (l *S3Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.etag == "" {
		return nil
	}
	err := l.update(ctx, true)
	l.etag = ""
	return err
}

// Valid: held, and the last successful write is younger than the TTL less a safety margin
// (a tenth), by this process's clock.
func (l *S3Lease) Valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.etag != "" && time.Since(l.lastWrite) < l.ttl-l.ttl/10
}

func (l *S3Lease) update(ctx context.Context, release bool) error {
	if l.etag == "" {
		return fmt.Errorf("s3 lease s3://%s/%s: not held", l.bucket, l.key)
	}
	ok, err := l.write(ctx, l.etag, release)
	if err != nil || ok {
		return err
	}
	cur, etag, _, err := l.read(ctx)
	if err == nil && cur.Owner == l.rec.Owner && cur.RenewedMs == l.rec.RenewedMs && cur.Released == release {
		l.etag = etag // our own write, retried after a lost answer
		return nil
	}
	if err == nil && cur.Owner == l.rec.Owner && !cur.Released {
		// An earlier write of ours whose answer was lost (a renewal that timed out while
		// S3 was unreachable, applied when it answered again): the owner ID is this
		// process's alone, so the lease is still ours. Write on from its ETag.
		if ok, err = l.write(ctx, etag, release); err != nil || ok {
			return err
		}
		cur, _, _, err = l.read(ctx)
	}
	l.etag = ""
	if err == nil {
		return fmt.Errorf("s3 lease s3://%s/%s: %w (now host %s, pid %d)", l.bucket, l.key, ErrLeaseLost, cur.Host, cur.PID)
	}
	return fmt.Errorf("s3 lease s3://%s/%s: %w", l.bucket, l.key, ErrLeaseLost)
}

// write puts our record conditionally: If-None-Match: * when ifMatch is "", else If-Match.
// ok is false (with a nil error) when the condition failed.
func (l *S3Lease) write(ctx context.Context, ifMatch string, release bool) (ok bool, err error) {
	started := time.Now()
	l.rec.RenewedMs = started.UnixMilli()
	l.rec.Released = release
	body, _ := json.Marshal(l.rec)
	in := &s3.PutObjectInput{Bucket: &l.bucket, Key: &l.key, Body: strings.NewReader(string(body)),
		ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String("application/json")}
	if ifMatch == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := l.client.PutObject(ctx, in)
	if err != nil {
		// 412: the condition failed. 409: a concurrent conditional write to the same key
		// (S3's ConditionalRequestConflict) won; the same outcome for us. 404 to If-Match: the
		// object it named is gone (released by deletion), so that ETag lost too.
		s := httpStatus(err)
		if s == http.StatusPreconditionFailed || s == http.StatusConflict || s == http.StatusNotFound && ifMatch != "" {
			return false, nil
		}
		return false, fmt.Errorf("s3 lease s3://%s/%s: %w", l.bucket, l.key, err)
	}
	l.etag = aws.ToString(out.ETag)
	l.lastWrite = started
	return true, nil
}

// read returns the current record, its ETag and its age by the server's clock. An object
// that does not parse is returned as an empty record (takeable: it was not written by a
// klite holding it).
func (l *S3Lease) read(ctx context.Context) (LeaseRecord, string, time.Duration, error) {
	out, err := l.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &l.bucket, Key: &l.key})
	if err != nil {
		if isS3Code(err, "NoSuchKey", "NotFound") || httpStatus(err) == http.StatusNotFound {
			return LeaseRecord{}, "", 0, ErrNotFound
		}
		return LeaseRecord{}, "", 0, fmt.Errorf("s3 lease s3://%s/%s: %w", l.bucket, l.key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, maxLeaseBytes+1))
	if err != nil {
		return LeaseRecord{}, "", 0, fmt.Errorf("s3 lease s3://%s/%s: %w", l.bucket, l.key, err)
	}
	rec, perr := ParseLeaseRecord(b)
	if perr != nil {
		rec = LeaseRecord{}
	}
	now := l.serverTime(out.ResultMetadata)
	var age time.Duration
	if out.LastModified != nil {
		age = now.Sub(*out.LastModified)
	}
	return rec, aws.ToString(out.ETag), age, nil
}

// serverTime is the Date of the S3 answer (the same clock as Last-Modified), else ours.
func (l *S3Lease) serverTime(md middleware.Metadata) time.Time {
	if l.serverNow != nil {
		return l.serverNow()
	}
	if raw, ok := awsmw.GetRawResponse(md).(*smithyhttp.Response); ok {
		if t, err := http.ParseTime(raw.Header.Get("Date")); err == nil {
			return t
		}
	}
	return time.Now()
}
