package chaos

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Fault names.
const (
	NoFault = "none"    // baseline
	SIGKILL = "sigkill" // kill -9 at a random moment, restart on the same data and address
	SIGSTOP = "sigstop" // freeze longer than the clients' time-outs, then continue
	// RecoveryKill is SIGKILL, then a restart killed again within 100 ms (mid-recovery),
	// then a restart that is let to serve: recovery must survive being interrupted.
	RecoveryKill = "recovery-kill"
)

// Config is one run: a workload under a fault for some cycles.
type Config struct {
	Workload, Fault string
	Addr            string  // the broker's address
	Broker          *Broker // the process faults apply to (nil: no faults possible)
	Cycles          int     // faults to apply (with NoFault: periods of the same length)
	// MinGap and MaxGap bound the random time between faults.
	MinGap, MaxGap time.Duration
	// Pause is how long SIGSTOP freezes the broker.
	Pause      time.Duration
	Partitions int32
	// ValueBytes pads each value (to fill WAL segments faster).
	ValueBytes int
	Seed       int64
	// Deadline bounds the whole run, drain included.
	Deadline time.Duration
	// DrainTimeout bounds the final reads (default 30 s): whatever is missing then is lost.
	DrainTimeout time.Duration
	// S3, when set, is the S3 server klite's --s3-* flags point at (the S3 faults need it).
	S3 *S3Env
	// Inject, when set, is the fault applied each cycle instead of Fault's (tests use it to
	// break a broker on purpose and see the checker notice).
	Inject func() error

	diskFull *diskFull // the disk-full fault's state
}

// Result is one line of the summary table.
type Result struct {
	Workload, Fault string
	Cycles          int
	Report          Report
	Err             error
	Took            time.Duration
	// History is what the run recorded (to dig into an anomaly).
	History *History
	// StorageErrors counts the disk-full fault's probes refused with KAFKA_STORAGE_ERROR.
	StorageErrors int
	// LogStart is the retention workload's log start offset per partition at the end.
	LogStart map[int32]int64
	// Damage counts the Corrupt fault's restarts that served or refused.
	Damage DamageCounts
}

// Run runs one workload under one fault and checks its history.
func Run(ctx context.Context, c Config) Result {
	start := time.Now()
	res := Result{Workload: c.Workload, Fault: c.Fault}
	if c.Partitions == 0 {
		c.Partitions = 3
		if c.Workload == Members {
			c.Partitions = 6 // several partitions per member to move around
		}
	}
	if c.Deadline == 0 {
		c.Deadline = 10 * time.Minute
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, c.Deadline)
	defer cancel()
	h := NewHistory()
	topic := fmt.Sprintf("chaos-%s-%s-%d", c.Workload, c.Fault, time.Now().UnixNano())
	var configs map[string]*string
	if c.Workload == Compacted {
		// Compaction as eager as Kafka allows (dirty ratio, 1 s segments), so the baseline
		// and a compacting klite hide older values while the workload runs.
		configs = map[string]*string{"cleanup.policy": kadm.StringPtr("compact"),
			"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"), "segment.ms": kadm.StringPtr("1000"),
			"min.compaction.lag.ms": kadm.StringPtr("0")}
	}
	if c.Workload == Retention {
		configs = map[string]*string{"retention.ms": kadm.StringPtr(fmt.Sprint(RetentionMs)), "segment.ms": kadm.StringPtr("1000")}
	}
	if err := createTopic(ctx, c.Addr, topic, c.Partitions, configs); err != nil {
		res.Err = err
		return res
	}
	if c.Fault == DiskFull || c.Fault == FsyncError || c.Fault == WriteError {
		newF := newDiskFull
		if c.Fault != DiskFull {
			newF = newProber
		}
		df, err := newF(c, topic, h)
		if err != nil {
			res.Err = err
			return res
		}
		defer df.close()
		c.diskFull = df
	}
	rng := rand.New(rand.NewSource(c.Seed))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	goRun := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errs <- err
			}
		}()
	}
	p := &producer{addr: c.Addr, topic: topic, partitions: c.Partitions, prefix: fmt.Sprintf("%s-%d", c.Workload, c.Seed), h: h,
		rng: rand.New(rand.NewSource(c.Seed + 1)), pad: c.ValueBytes}
	switch c.Workload {
	case Plain, Idempotent, Group, Members, Compacted, Retention:
		if c.Workload == Compacted {
			p.keys = 16
		}
		goRun(func() error { return p.runPlain(stop, c.Workload != Plain) })
	case Transactional:
		goRun(func() error { return p.runTxn(stop) })
	default:
		res.Err = fmt.Errorf("unknown workload %q", c.Workload)
		return res
	}
	// Live consumers, one session each for the whole run, across the faults.
	goRun(func() error { return consume(c.Addr, topic, c.Partitions, false, 1, h, stop, nil) })
	if c.Workload == Transactional {
		goRun(func() error { return consume(c.Addr, topic, c.Partitions, true, 2, h, stop, nil) })
	}
	if c.Workload == Group {
		goRun(func() error { return consumeGroup(c.Addr, topic, topic+"-g", 100, h, stop) })
	}
	faulted := make(chan struct{}, 1) // tells the members workload a fault hit the broker
	if c.Workload == Members {
		mrng := rand.New(rand.NewSource(c.Seed + 2))
		goRun(func() error { return runMembers(c.Addr, topic, topic+"-g", h, mrng, stop, faulted) })
	}

	for res.Cycles < c.Cycles && ctx.Err() == nil {
		gap := c.MinGap
		if c.MaxGap > c.MinGap {
			gap += time.Duration(rng.Int63n(int64(c.MaxGap - c.MinGap)))
		}
		select {
		case <-time.After(gap):
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		if err := applyFault(c, res.Cycles, rng); err != nil {
			res.Err = err
			break
		}
		res.Cycles++
		select {
		case faulted <- struct{}{}:
		default:
		}
	}
	if c.Broker != nil && c.Inject == nil && res.Err == nil {
		if err, dead := c.Broker.Exited(); dead {
			res.Err = fmt.Errorf("klite exited on its own: %v\n%s", err, c.Broker.Tail(40))
		}
	}
	// Let the clients catch up after the last fault, then stop them (bounded: a producer
	// stuck in a retry loop ends with its delivery time-out).
	time.Sleep(500 * time.Millisecond)
	close(stop)
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(45 * time.Second):
		if res.Err == nil {
			res.Err = fmt.Errorf("clients did not stop within 45s")
		}
	}
	select {
	case err := <-errs:
		if res.Err == nil {
			res.Err = err
		}
	default:
	}

	// Final reads: fresh sessions from the start until every acknowledged (committed) value
	// is seen, bounded in time (what is still missing then is lost).
	var logStart map[int32]int64 // retention: what is below it may be gone
	if c.Workload == Retention {
		logStart = startOffsets(c.Addr, topic)
	}
	drain := func(rc bool, session int) {
		want := expected(h)
		if c.Workload == Compacted {
			want = latestPerKey(h, want)
		}
		if logStart != nil {
			want = aboveLogStart(h, want, logStart)
		}
		dstop := make(chan struct{})
		timer := time.AfterFunc(c.DrainTimeout, func() { close(dstop) })
		defer timer.Stop()
		seen := map[string]bool{}
		mark := len(h.Polls)
		consume(c.Addr, topic, c.Partitions, rc, session, h, dstop, func(map[int32]int64) bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			for _, p := range h.Polls[mark:] {
				if p.Session == session {
					for _, r := range p.Reads {
						seen[r.Value] = true
					}
				}
			}
			mark = len(h.Polls)
			for v := range want {
				if !seen[v] {
					return false
				}
			}
			return true
		})
	}
	drain(false, 3)
	if c.Workload == Transactional {
		drain(true, 4)
	}
	if c.Workload == Retention {
		// After the final reads: retention may have moved on while they ran.
		logStart = startOffsets(c.Addr, topic)
		res.LogStart = logStart
	}
	res.Report = Check(h, Options{AllowDuplicates: c.Workload == Plain, Compacted: c.Workload == Compacted, LogStart: logStart})
	res.Took = time.Since(start)
	res.History = h
	if c.diskFull != nil {
		res.StorageErrors = c.diskFull.storageErrors
	}
	if c.Broker != nil {
		res.Damage = c.Broker.Damage
		if n, first := c.Broker.Races(); n > 0 && res.Err == nil {
			res.Err = fmt.Errorf("klite (built with -race) reported %d data races; the first:\n%s", n, first)
		}
	}
	return res
}

// expected returns the values every complete read must contain.
func expected(h *History) map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	want := map[string]bool{}
	for _, w := range h.Writes {
		if !w.Acked {
			continue
		}
		if w.Txn != 0 {
			if t := h.Txns[w.Txn]; t == nil || t.Outcome != Committed {
				continue
			}
		}
		want[w.Value] = true
	}
	return want
}

func applyFault(c Config, cycle int, rng *rand.Rand) error {
	if c.Inject != nil {
		return c.Inject()
	}
	if c.Broker != nil {
		// A broker that died on its own (a panic, a fatal storage error) must not be
		// hidden by the next kill and restart.
		if err, dead := c.Broker.Exited(); dead {
			return fmt.Errorf("klite exited on its own: %v\n%s", err, c.Broker.Tail(40))
		}
	}
	switch c.Fault {
	case NoFault:
		return nil
	case SIGKILL:
		c.Broker.Kill()
		return c.Broker.Start()
	case RecoveryKill:
		c.Broker.Kill()
		if err := c.Broker.KillEarly(time.Duration(rand.Int63n(int64(100 * time.Millisecond)))); err != nil {
			return err
		}
		return c.Broker.Start()
	case SIGSTOP:
		return c.Broker.Pause(c.Pause)
	case DiskFull:
		return c.diskFull.inject(c.Pause)
	case TornTail, Corrupt:
		return damageFault(c, cycle, rng)
	case S3Down, S3Slow, S3Errors:
		if c.S3 == nil {
			return fmt.Errorf("%s needs the S3 storage mode", c.Fault)
		}
		return c.S3.inject(c.Fault, c.Pause)
	case FsyncError, WriteError:
		return c.diskFull.injectStorage(c.Fault, c.Pause)
	}
	return fmt.Errorf("unknown fault %q", c.Fault)
}

// latestPerKey keeps, of the expected values, the latest acknowledged one per key: the only
// ones a compacted topic must still hold (final reads wait for these; the checker knows a
// later unacknowledged record of the key may hide even these).
func latestPerKey(h *History, want map[string]bool) map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	type pk struct {
		p int32
		k string
	}
	latest := map[pk]Write{}
	for _, w := range h.Writes {
		if !want[w.Value] {
			continue
		}
		k := pk{w.Partition, KeyOf(w.Value)}
		if l, ok := latest[k]; !ok || w.Offset > l.Offset {
			latest[k] = w
		}
	}
	out := map[string]bool{}
	for _, w := range latest {
		out[w.Value] = true
	}
	return out
}

func createTopic(ctx context.Context, addr, topic string, partitions int32, configs map[string]*string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var last error
	for i := 0; i < 40 && ctx.Err() == nil; i++ {
		resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
		if err == nil && (resp.Err == nil || i > 0 && resp.Err == kerr.TopicAlreadyExists) {
			return nil
		}
		last = err
		if err == nil {
			last = resp.Err
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("create topic %s: %v", topic, last)
}

// startOffsets returns every partition's log start offset (bounded: 10 tries over about 10 s;
// a partition it cannot learn counts as starting at 0, which expects everything).
func startOffsets(addr, topic string) map[int32]int64 {
	out := map[int32]int64{}
	cl, err := kgo.NewClient(clientOpts(addr)...)
	if err != nil {
		return out
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for i := 0; i < 10; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		offs, err := adm.ListStartOffsets(ctx, topic)
		cancel()
		if err == nil && offs.Error() == nil {
			offs.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
			return out
		}
		time.Sleep(time.Second)
	}
	return out
}

// aboveLogStart keeps the expected values at or above their partition's log start.
func aboveLogStart(h *History, want map[string]bool, logStart map[int32]int64) map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]bool{}
	for _, w := range h.Writes {
		if want[w.Value] && w.Offset >= logStart[w.Partition] {
			out[w.Value] = true
		}
	}
	return out
}
