package broker

// The S3 tier's configuration and, for now, its one active part: the writer lease. With
// S3.Bucket set, Open takes the lease s3://BUCKET/PREFIX/lease before touching local state
// and refuses to start while another broker holds it; a goroutine renews it every third of
// its TTL, and Close releases it so another broker may start at once. The uploader, the
// read-through cache and the metadata snapshots (README, "S3 tier") build on S3Config.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/klite/klite/broker/logstore"
)

// S3Config configures the S3 tier; an empty Bucket means local-only.
type S3Config struct {
	Bucket string
	// Region (empty: the AWS SDK's chain, else us-east-1); Endpoint for S3-compatible
	// servers (path-style addressing); Prefix for every key klite writes.
	Region, Endpoint, Prefix string
	// FlushInterval: the most a sealed or idle partition tail waits before going to S3.
	FlushInterval time.Duration
	// TargetObjectBytes: a partition's segment is sealed and uploaded when it reaches this.
	TargetObjectBytes int64
	// CacheBytes bounds the local read-through cache of S3-resident segments.
	CacheBytes int64
	// LeaseTTL is how long the writer lease lasts unrenewed (default 30s); a broker started
	// after one was killed waits this long at most.
	LeaseTTL time.Duration
	// Credentials override the standard AWS chain (tests use moto's).
	Credentials aws.CredentialsProvider
	// Requests counts the S3 requests of every store of the tier (nil: Open makes one).
	Requests *logstore.RequestCounter
}

// Enabled reports whether the S3 tier is configured.
func (c S3Config) Enabled() bool { return c.Bucket != "" }

// key joins the prefix and a name under it.
func (c S3Config) key(name string) string {
	if p := strings.Trim(c.Prefix, "/"); p != "" {
		return p + "/" + name
	}
	return name
}

// StoreOptions are the logstore.S3Options for the store under PREFIX/sub (logs, meta).
func (c S3Config) StoreOptions(sub string) logstore.S3Options {
	return logstore.S3Options{Bucket: c.Bucket, Region: c.Region, Endpoint: c.Endpoint,
		Prefix: c.key(sub), Credentials: c.Credentials, Requests: c.Requests}
}

// s3State is the broker's S3 tier at run time.
type s3State struct {
	logs  *logstore.S3Store // segments, PREFIX/logs (not yet written: see README)
	lease *logstore.S3Lease
	stop  chan struct{}
	wg    sync.WaitGroup
}

// startS3 takes the writer lease (a no-op without a bucket). Errors wrapping
// logstore.ErrLeaseHeld mean another broker uses the bucket and prefix.
func (b *Broker) startS3() error {
	if !b.cfg.S3.Enabled() {
		return nil
	}
	if b.cfg.S3.Requests == nil {
		b.cfg.S3.Requests = &logstore.RequestCounter{}
	}
	c := b.cfg.S3
	st, err := logstore.NewS3Store(context.Background(), c.StoreOptions("logs"))
	if err != nil {
		return err
	}
	if err := st.CheckBucket(); err != nil {
		st.Close()
		return err
	}
	lease := logstore.NewS3Lease(st.Client(), c.Bucket, c.key("lease"), c.LeaseTTL)
	if err := b.acquireLease(lease); err != nil { // s3_lease_wait.go
		st.Close()
		return err
	}
	b.s3 = &s3State{logs: st, lease: lease, stop: make(chan struct{})}
	b.s3.wg.Add(1)
	go b.renewLease(b.s3)
	b.log.Info("S3 tier: writer lease taken (segments are not uploaded yet)", "bucket", c.Bucket, "prefix", c.Prefix, "ttl", lease.TTL())
	return nil
}

// renewLease renews every third of the TTL until stop. A lease lost to another broker is
// logged at ERROR: that broker now owns the prefix, and the uploader must stop writing
// (it checks lease.Valid before every upload).
func (b *Broker) renewLease(s *s3State) {
	defer s.wg.Done()
	t := time.NewTicker(s.lease.TTL() / 3)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.lease.TTL()/3)
		err := s.lease.Renew(ctx)
		cancel()
		switch {
		case errors.Is(err, logstore.ErrLeaseLost):
			b.log.Error("S3 tier: another broker took over the S3 prefix; this broker no longer writes to it", "err", err)
			return
		case err != nil:
			b.log.Warn("S3 tier: renewing the writer lease failed; retrying", "err", err, "valid", s.lease.Valid())
		}
	}
}

// stopS3 stops renewing and releases the lease.
func (b *Broker) stopS3() error {
	s := b.s3
	if s == nil {
		return nil
	}
	b.s3 = nil
	close(s.stop)
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.lease.Release(ctx)
	s.logs.Close()
	if err != nil && !errors.Is(err, logstore.ErrLeaseLost) {
		return fmt.Errorf("releasing the S3 lease: %w", err)
	}
	return nil
}

// S3Requests counts the S3 requests sent so far by operation (PutObject, GetObject, ...),
// every store of the tier together, retries and parts included (nil when local-only).
func (b *Broker) S3Requests() map[string]int64 {
	if r := b.cfg.S3.Requests; r != nil {
		return r.Snapshot()
	}
	return nil
}
