package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Workload names.
const (
	Plain         = "plain"         // acks=all, idempotence off: duplicates allowed, loss not
	Idempotent    = "idempotent"    // acks=all, idempotent: neither loss nor duplicates
	Transactional = "transactional" // commits and aborts; read_committed never sees an abort
	// Compacted: idempotent writes of 16 keys to a compacted topic; the latest value per key
	// is never lost (older ones may be compacted away).
	Compacted = "compacted"
	// Retention: idempotent writes to a topic whose records expire after RetentionMs (1 s
	// segments): only records at or above the final log start offset are expected (the
	// broker needs a short retention check, klite's --retention-check-interval 1s, for
	// retention to act during the run).
	Retention = "retention"
)

// RetentionMs is the retention workload's retention.ms.
const RetentionMs = 6000

// Workloads lists the workloads in table order.
var Workloads = []string{Plain, Idempotent, Transactional, Group, Members, Compacted, Retention}

// clientOpts are the time-outs every client uses: short, so a SIGSTOP pause of more than 3 s
// outlasts them (a produce request waits its 1 s time-out plus the 2 s overhead, a fetch its
// 0.5 s max wait plus the overhead) and the clients must retry on new connections while the
// frozen broker still holds the old requests.
func clientOpts(addr string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.RequestTimeoutOverhead(2 * time.Second),
		kgo.ProduceRequestTimeout(time.Second),
		kgo.ConnIdleTimeout(5 * time.Second),
		kgo.RetryTimeout(10 * time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	}
}

// producer writes unique values until stop is closed, recording every attempt in h.
type producer struct {
	addr, topic string
	partitions  int32
	prefix      string
	h           *History
	rng         *rand.Rand
	n           int
	pad         int // bytes of padding after each value
	keys        int // when set: records have one of this many keys (compacted workload)
}

// payload is the record value: the unique value, then '|' and pad bytes when padding.
func (p *producer) payload(v string) []byte {
	if p.pad == 0 {
		return []byte(v)
	}
	b := make([]byte, len(v)+1+p.pad)
	copy(b, v)
	b[len(v)] = '|'
	for i := len(v) + 1; i < len(b); i++ {
		b[i] = 'x'
	}
	return b
}

// valueOf is the unique value of a record (its padding dropped).
func valueOf(b []byte) string {
	if i := bytes.IndexByte(b, '|'); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func (p *producer) value() (string, int32) {
	p.n++
	if p.keys > 0 {
		// The key rides in the value ("<prefix>-<n>/k<key>") so the checker knows it, and
		// a key always goes to the same partition, as a compacted topic needs.
		k := p.n % p.keys
		return fmt.Sprintf("%s-%07d/k%03d", p.prefix, p.n, k), int32(k % int(p.partitions))
	}
	return fmt.Sprintf("%s-%07d", p.prefix, p.n), int32(p.n % int(p.partitions))
}

// KeyOf is the record key a compacted workload's value carries ("" when none).
func KeyOf(v string) string {
	if i := strings.LastIndexByte(v, '/'); i >= 0 {
		return v[i+1:]
	}
	return ""
}

// recordKey is the key to send with value v (nil outside the compacted workload).
func recordKey(v string) []byte {
	if k := KeyOf(v); k != "" {
		return []byte(k)
	}
	return nil
}

// runPlain produces one record at a time with at most 64 in flight, idempotent or not.
func (p *producer) runPlain(stop <-chan struct{}, idempotent bool) error {
	opts := append(clientOpts(p.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(15*time.Second), kgo.ProducerLinger(2*time.Millisecond))
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := 0; ; i++ {
		select {
		case <-stop:
			wg.Wait()
			return nil
		case sem <- struct{}{}:
		}
		v, part := p.value()
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: p.topic, Partition: part, Key: recordKey(v), Value: p.payload(v)}, func(r *kgo.Record, err error) {
			defer func() { <-sem; wg.Done() }()
			p.h.AddWrite(Write{Value: v, Partition: part, Acked: err == nil, Offset: r.Offset})
		})
		if i%4 == 0 {
			time.Sleep(2 * time.Millisecond) // a steady, modest rate on a shared machine
		}
	}
}

var txnSeq atomic.Int64

// runTxn runs transactions of 1-5 records, committing about two in three and aborting the rest.
func (p *producer) runTxn(stop <-chan struct{}) error {
	newClient := func() (*kgo.Client, error) {
		return kgo.NewClient(append(clientOpts(p.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.TransactionalID(p.prefix+"-txn"), kgo.TransactionTimeout(10*time.Second),
			kgo.RecordDeliveryTimeout(8*time.Second))...)
	}
	cl, err := newClient()
	if err != nil {
		return err
	}
	defer func() { cl.Close() }()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		id := int(txnSeq.Add(1))
		if err := cl.BeginTransaction(); err != nil {
			cl.Close()
			if cl, err = newClient(); err != nil {
				return err
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n := 1 + p.rng.Intn(5)
		var wg sync.WaitGroup
		var failed atomic.Bool
		for i := 0; i < n; i++ {
			v, part := p.value()
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Topic: p.topic, Partition: part, Key: recordKey(v), Value: p.payload(v)}, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					failed.Store(true)
				}
				p.h.AddWrite(Write{Value: v, Partition: part, Acked: err == nil, Offset: r.Offset, Txn: id})
			})
		}
		wg.Wait()
		commit := !failed.Load() && p.rng.Intn(3) != 0
		var endErr error
		if commit {
			p.h.SetTxn(Txn{ID: id, Outcome: Unknown, CommitAt: time.Now()})
			endErr = cl.EndTransaction(ctx, kgo.TryCommit)
			if endErr == nil {
				p.h.SetTxn(Txn{ID: id, Outcome: Committed})
			}
		} else {
			p.h.SetTxn(Txn{ID: id, Outcome: Aborted})
			if failed.Load() {
				cl.AbortBufferedRecords(ctx)
			}
			endErr = cl.EndTransaction(ctx, kgo.TryAbort)
		}
		cancel()
		if endErr != nil {
			// The client may be stuck in a failed state: a new one (same transactional id)
			// bumps the epoch, which aborts whatever the old one left open.
			cl.Close()
			if cl, err = newClient(); err != nil {
				return err
			}
		}
		time.Sleep(time.Duration(p.rng.Intn(5)) * time.Millisecond)
	}
}

// consume reads every partition from the start as one session until stop, recording polls.
// It returns the next offset per partition it reached.
func consume(addr, topic string, partitions int32, rc bool, session int, h *History, stop <-chan struct{}, done func(map[int32]int64) bool) error {
	final := done != nil // the final reads are the ones that stop by themselves
	offs := map[int32]kgo.Offset{}
	for p := int32(0); p < partitions; p++ {
		offs[p] = kgo.NewOffset().AtStart()
	}
	opts := append(clientOpts(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchMaxWait(500*time.Millisecond))
	if rc {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	next := map[int32]int64{}
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		var reads []Read
		fs.EachRecord(func(r *kgo.Record) {
			reads = append(reads, Read{Partition: r.Partition, Offset: r.Offset, Value: valueOf(r.Value)})
			next[r.Partition] = r.Offset + 1
		})
		h.AddPoll(Poll{Session: session, ReadCommitted: rc, At: time.Now(), Reads: reads, Final: final})
		if done != nil && done(next) {
			return nil
		}
		if err := fs.Err0(); err != nil && errors.Is(err, kgo.ErrClientClosed) {
			return err
		}
	}
}
