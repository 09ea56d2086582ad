package broker

// Writing the metadata snapshot (format in s3meta.go) to s3://BUCKET/PREFIX/meta/state.snap.
//
// Every flush interval the broker captures its whole state (metadata log records, the group
// and transaction coordinators' records, the producer-state snapshot at each partition's
// high watermark). When nothing changed since the last PUT (an order-insensitive digest of
// the records), nothing is sent: an idle broker costs no request. Otherwise the capture
// waits, as "pending", until the data path confirms every partition's segments in S3 up to
// the offsets the capture describes (S3DataConfirmed, the hook the data path fills in), so a
// restored broker never holds producer windows, open transactions or high watermarks past
// the data it finds in S3. Then it is PUT, under the writer lease only, and the next tick
// captures afresh: under steady load the snapshot in S3 is about two flush intervals (the
// tail's sealing by age, plus an upload) old. A capture is replaced by a fresh one only
// when it has waited ten intervals (a data path that confirms nothing cannot confirm a newer
// one either; replacing sooner could starve a busy broker of snapshots, each new capture
// naming offsets still in the unsealed tails). Close writes a final one after the data
// path's last upload.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klite/klite/broker/logstore"
)

// s3MetaState is the metadata snapshot writer at run time.
type s3MetaState struct {
	store *logstore.S3Store // PREFIX/meta
	stop  chan struct{}
	done  chan struct{}

	metrics *s3Collector // registered while running (s3_metrics.go)
	mu      sync.Mutex   // one capture-and-put at a time (the loop and Close)
	lastPut [32]byte     // digest of the last snapshot PUT (zero: none yet)
	pending *s3MetaCapture
	// puts and lastPutNs (Unix ns) are read by metrics without mu, which a PUT to an
	// unreachable S3 may hold for half a minute.
	puts, lastPutNs atomic.Int64
}

// s3MetaCapture is one captured state and the offsets its partitions must reach in S3.
type s3MetaCapture struct {
	snap   *s3MetaSnapshot
	digest [32]byte
	need   map[*partition]int64
	at     time.Time
}

// s3ConfirmedFunc is the data path's hook (Broker.s3Confirmed, set before the writer starts
// or under s3MetaState.mu, which the writer holds while it asks). Called once per check, it
// returns a function giving the offset below which a partition's batches are confirmed in
// S3 (one view of the data path's state for all partitions). Nil (no data path): nothing
// to wait for, and a restored broker finds no records (s3_restore.go says so).
type s3ConfirmedFunc func() func(p *partition) int64

// openS3Meta opens the PREFIX/meta store (Open, right after the lease).
func (b *Broker) openS3Meta() error {
	if b.s3 == nil {
		return nil
	}
	opts := b.cfg.S3.StoreOptions("meta")
	// Bounded, so that an unreachable S3 costs the loop (and Close's final snapshot) at
	// most half a minute per attempt at writing, not the SDK's minutes of retries.
	opts.Timeout, opts.ReadTimeout, opts.MaxAttempts = 30*time.Second, 10*time.Second, 3
	st, err := logstore.NewS3Store(context.Background(), opts)
	if err != nil {
		return err
	}
	b.s3meta = &s3MetaState{store: st, stop: make(chan struct{})}
	return nil
}

// startS3MetaWriter starts the loop (Open, once state is loaded).
func (b *Broker) startS3MetaWriter() {
	m := b.s3meta
	if m == nil {
		return
	}
	m.done = make(chan struct{})
	if b.s3Confirmed == nil && b.s3 != nil && b.s3.flush != nil {
		b.s3Confirmed = b.s3DataConfirmed // s3meta_hook.go
	}
	if b.metrics != nil {
		m.metrics = newS3Collector(b, m)
		if err := b.metrics.Register(m.metrics); err != nil {
			b.log.Warn("metrics: registering the S3 collector", "err", err)
			m.metrics = nil
		}
	}
	go func() {
		defer close(m.done)
		every := b.cfg.S3.FlushInterval
		if every <= 0 {
			every = defaultS3FlushInterval
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
			if err := b.flushS3Meta(false); err != nil {
				b.log.Warn("S3 tier: writing the metadata snapshot failed; retrying next interval", "err", err)
			}
		}
	}()
}

const defaultS3FlushInterval = 10 * time.Second

// flushS3Meta captures the state when there is no pending capture (or it has waited ten
// intervals), and PUTs the pending one once its data is confirmed. final (Close) always
// captures anew.
func (b *Broker) flushS3Meta(final bool) error {
	m := b.s3meta
	m.mu.Lock()
	defer m.mu.Unlock()
	every := b.cfg.S3.FlushInterval
	if every <= 0 {
		every = defaultS3FlushInterval
	}
	if final || m.pending == nil || time.Since(m.pending.at) > 10*every {
		c := b.captureS3Meta()
		if c.digest == m.lastPut {
			m.pending = nil
			return nil
		}
		m.pending = c
	}
	c := m.pending
	if lag := b.s3MetaUnconfirmed(c); lag != "" {
		if final {
			return fmt.Errorf("the data path has not confirmed %s in S3; the last metadata snapshot stays", lag)
		}
		b.log.Debug("S3 tier: metadata snapshot waits for its data", "unconfirmed", lag)
		return nil
	}
	if b.s3 == nil || !b.s3.lease.Valid() {
		return errors.New("the writer lease is not valid: not writing to the S3 prefix")
	}
	raw := c.snap.encode()
	if err := m.store.Put(s3MetaObject, raw); err != nil {
		return err
	}
	m.lastPut, m.pending = c.digest, nil
	m.puts.Add(1)
	m.lastPutNs.Store(time.Now().UnixNano())
	b.log.Debug("S3 tier: metadata snapshot written", "bytes", len(raw), "age", time.Since(c.at))
	return nil
}

// s3MetaUnconfirmed names the first partition whose data the capture describes beyond what
// S3 confirms ("" when all are confirmed, or there is no data path to ask).
func (b *Broker) s3MetaUnconfirmed(c *s3MetaCapture) string {
	if b.s3Confirmed == nil {
		return ""
	}
	confirmed := b.s3Confirmed()
	for p, need := range c.need {
		p.mu.Lock()
		gone := p.deleted
		p.mu.Unlock()
		if gone {
			continue
		}
		if got := confirmed(p); got < need {
			return fmt.Sprintf("topic %s partition %d below offset %d (confirmed: %d)", p.t.name, p.idx, need, got)
		}
	}
	return ""
}

// captureS3Meta takes the whole state now.
func (b *Broker) captureS3Meta() *s3MetaCapture {
	c := &s3MetaCapture{at: time.Now(), need: map[*partition]int64{}}
	s := &s3MetaSnapshot{capturedMs: b.now().UnixMilli()}
	b.mu.Lock()
	s.meta = b.metaSnapshotLocked()
	b.mu.Unlock()
	if b.groups != nil {
		s.groups = b.groups.Snapshot()
	}
	if b.txns != nil {
		s.txns = b.txns.Snapshot()
	}
	ps := b.takeSnapshot(0) // no WAL comes with it: a restored broker starts an empty one
	s.producers = ps.encode()
	for _, sp := range ps.parts {
		if t := b.topicByID(sp.topicID); t != nil {
			if p := t.partition(sp.partition); p != nil && sp.next > 0 {
				c.need[p] = sp.next
			}
		}
	}
	c.snap = s
	c.digest = s3MetaDigest(s)
	return c
}

// s3MetaDigest hashes the state independent of record order (maps are iterated in random
// order, so equal states may list records differently).
func s3MetaDigest(s *s3MetaSnapshot) [32]byte {
	h := sha256.New()
	for _, sec := range [][][]byte{s.meta, s.groups, s.txns} {
		recs := slices.Clone(sec)
		slices.SortFunc(recs, bytes.Compare)
		fmt.Fprintf(h, "%d;", len(recs))
		for _, r := range recs {
			fmt.Fprintf(h, "%d:", len(r))
			h.Write(r)
		}
	}
	h.Write(s.producers)
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

// stopS3Meta stops the loop; with final, it then writes the last snapshot (Close, after
// the data path's last upload), so a graceful stop loses nothing.
func (b *Broker) stopS3Meta(final bool) error {
	m := b.s3meta
	if m == nil {
		return nil
	}
	select {
	case <-m.stop:
	default:
		close(m.stop)
		if m.done != nil {
			<-m.done
		}
	}
	if m.metrics != nil {
		b.metrics.Unregister(m.metrics)
	}
	if final && b.s3 != nil {
		// As the data path's final round: a failure is logged, not a failed Close. The
		// local data directory is intact; only a disaster recovery would miss what changed
		// since the previous snapshot.
		if err := b.flushS3Meta(true); err != nil {
			b.log.Error("S3 tier: the final metadata snapshot was not written; S3 keeps the previous one (the local data directory is intact)", "err", err)
		}
	}
	m.store.Close()
	b.s3meta = nil
	return nil
}

// pendingNeed is the largest offset the pending capture waits for (0: none; tests).
func (m *s3MetaState) pendingNeed() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	if m.pending != nil {
		for _, v := range m.pending.need {
			n = max(n, v)
		}
	}
	return n
}
