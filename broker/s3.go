package broker

// The S3 tier's configuration and its writer lease. With S3.Bucket set, Open takes the
// lease s3://BUCKET/PREFIX/lease before touching local state and refuses to start while
// another broker holds it; a goroutine renews it every third of its TTL, and Close releases
// it so another broker may start at once. The data path (partition logs on a tiered store,
// the flusher) is in s3_flush.go; the metadata snapshots (README, "S3 tier") build on
// S3Config too.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	// LocalBudgetBytes bounds local partition segments (default 10 GiB): confirmed ones are
	// evicted past it, and produce fails with KAFKA_STORAGE_ERROR while data not yet in S3
	// (sealed or in tails) reaches it.
	LocalBudgetBytes int64
	// FinalFlushTimeout bounds Close's last upload round (default 30s).
	FinalFlushTimeout time.Duration
	// RequestTimeout bounds one S3 call of the data path, retries included (default 30s;
	// an attempt silent for a third of it is retried).
	RequestTimeout time.Duration
	// LeaseTTL is how long the writer lease lasts unrenewed (default 30s).
	LeaseTTL time.Duration
	// Credentials override the standard AWS chain (tests use moto's).
	Credentials aws.CredentialsProvider
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
		Prefix: c.key(sub), Credentials: c.Credentials}
}

// dataStoreOptions are StoreOptions("logs") with the data path's bounds: few SDK retries
// (the flusher backs off and retries itself) and a bounded call, so an unreachable S3
// fails a round in seconds rather than minutes; one PUT per object of the target size.
func (c S3Config) dataStoreOptions() logstore.S3Options {
	o := c.StoreOptions("logs")
	o.Timeout = c.RequestTimeout
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	o.ReadTimeout = max(o.Timeout/3, time.Second)
	o.MaxAttempts = 3
	o.MaxBackoff = time.Second
	// A segment object of the target size goes up in one PUT: S3 bills per request, and
	// 8 MiB parts would cost ten requests per 64 MiB object instead of one. Larger objects
	// (a compaction's output) still go in parts.
	target := c.TargetObjectBytes
	if target <= 0 {
		target = 64 << 20
	}
	o.MultipartThreshold = max(target+target/4, 32<<20)
	o.PartSize = 16 << 20
	return o
}

// s3State is the broker's S3 tier at run time.
type s3State struct {
	cfg   S3Config
	logs  *logstore.S3Store // segments and checkpoints, PREFIX/logs
	lease *logstore.S3Lease
	lost  atomic.Bool // another broker took the lease over
	flush *s3Flusher  // nil until openSegmentStore
	stop  chan struct{}
	wg    sync.WaitGroup
	// flushStop and flushWG stop the flusher before Close's final round.
	flushStop chan struct{}
	flushWG   sync.WaitGroup
	stopped   bool // Close (or a failed Open) stopped it
}

// canWrite: uploads only while the lease is held and renewed.
func (s *s3State) canWrite() bool { return !s.lost.Load() && s.lease.Valid() }

// tieredStore layers local over S3 (openSegmentStore), reading S3 through a block cache in
// <data-dir>/s3cache.
func (b *Broker) tieredStore(local logstore.Store) (*logstore.TieredStore, error) {
	s := b.s3
	cacheBytes := s.cfg.CacheBytes
	if cacheBytes <= 0 {
		cacheBytes = 1 << 30
	}
	cache, err := logstore.NewCachedStore(s.logs, filepath.Join(b.dataDir, "s3cache"), 0, cacheBytes)
	if err != nil {
		return nil, fmt.Errorf("S3 cache: %w", err)
	}
	ts, err := logstore.NewTieredStore(local, s.logs, cache, s.canWrite)
	if err != nil {
		return nil, err
	}
	s.flush = &s3Flusher{tiered: ts}
	return ts, nil
}

// startS3Flush starts the flusher (Open, once the partitions are loaded).
func (b *Broker) startS3Flush() {
	s := b.s3
	if s == nil || s.flush == nil {
		return
	}
	s.flush.tiered.EndStartup() // every partition is open
	s.flushStop = make(chan struct{})
	s.flushWG.Add(1)
	go b.runS3Flush(s)
}

// startS3 takes the writer lease (a no-op without a bucket). Errors wrapping
// logstore.ErrLeaseHeld mean another broker uses the bucket and prefix.
func (b *Broker) startS3() error {
	c := b.cfg.S3
	if !c.Enabled() {
		return nil
	}
	st, err := logstore.NewS3Store(context.Background(), c.dataStoreOptions())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.CheckBucket(); err != nil {
		st.Close()
		return err
	}
	lease := logstore.NewS3Lease(st.Client(), c.Bucket, c.key("lease"), c.LeaseTTL)
	if err := lease.Acquire(ctx); err != nil {
		st.Close()
		return err
	}
	b.s3 = &s3State{cfg: c, logs: st, lease: lease, stop: make(chan struct{})}
	b.s3.wg.Add(1)
	go b.renewLease(b.s3)
	b.log.Info("S3 tier: writer lease taken", "bucket", c.Bucket, "prefix", c.Prefix, "ttl", lease.TTL())
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
			s.lost.Store(true) // the produce gate closes (s3ProduceGate)
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
	if s == nil || s.stopped {
		return nil
	}
	s.stopped = true // b.s3 stays: metrics may still read it
	if s.flushStop != nil {
		close(s.flushStop)
		s.flushWG.Wait()
		b.finalS3Flush(s)
	}
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
