package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DiskFull fills the broker's file system (a real tmpfs, StartBrokerOnTmpfs) to the last
// byte while the workload runs, keeps it full for Config.Pause, then frees it. While full,
// a probe producer must get KAFKA_STORAGE_ERROR (the broker refuses rather than acknowledge
// what it cannot store) and, once space returns, an acknowledgement again without a restart.
// Every probe write goes into the history, so the checker also holds the broker to what it
// acknowledged on the full disk.
const DiskFull = "disk-full"

// diskFull is the state of the disk-full fault over a run's cycles.
type diskFull struct {
	b      *Broker
	topic  string
	prefix string
	h      *History
	cl     *kgo.Client
	n      int
	// StorageErrors counts probes the broker refused with KAFKA_STORAGE_ERROR.
	storageErrors int
}

func newDiskFull(c Config, topic string, h *History) (*diskFull, error) {
	if c.Broker == nil || c.Broker.Mount == "" {
		return nil, fmt.Errorf("%s needs a broker on a small file system (StartBrokerOnTmpfs)", DiskFull)
	}
	return newProber(c, topic, h)
}

// newProber returns the probe producer of the disk-full and injected storage faults.
func newProber(c Config, topic string, h *History) (*diskFull, error) {
	// One try per probe (no idempotence, no retries): the probe sees the broker's own answer.
	cl, err := kgo.NewClient(append(clientOpts(c.Addr), kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordRetries(0), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))...)
	if err != nil {
		return nil, err
	}
	return &diskFull{b: c.Broker, topic: topic, prefix: fmt.Sprintf("%s-%d-probe", c.Workload, c.Seed), h: h, cl: cl}, nil
}

func (d *diskFull) close() { d.cl.Close() }

// probe produces one 16 KiB record to partition 0 and records the attempt.
func (d *diskFull) probe() error {
	d.n++
	// Keyed (a compacted topic refuses records without a key), one key for every probe.
	v := fmt.Sprintf("%s-%05d/kprobe", d.prefix, d.n)
	p := &producer{pad: 16 << 10}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := d.cl.ProduceSync(ctx, &kgo.Record{Topic: d.topic, Partition: 0, Key: recordKey(v), Value: p.payload(v)}).First()
	d.h.AddWrite(Write{Value: v, Partition: 0, Acked: err == nil, Offset: r.Offset})
	if errors.Is(err, kerr.KafkaStorageError) {
		d.storageErrors++
	}
	return err
}

// inject is one cycle: fill, see the broker refuse, hold, free, see it accept.
func (d *diskFull) inject(hold time.Duration) error {
	filler := d.b.Inside(filepath.Join(d.b.Mount, fmt.Sprintf("filler-%d", d.n)))
	if err := fill(filler); err != nil {
		return err
	}
	freed := false
	free := func() error {
		if freed {
			return nil
		}
		freed = true
		return os.Remove(filler)
	}
	defer free()
	// What klite had already allocated (a WAL segment's tail) may still take a few writes:
	// bounded by 200 probes of 16 KiB (3 MiB, above any preallocation).
	var err error
	for i := 0; i < 200; i++ {
		if err = d.probe(); err != nil {
			break
		}
	}
	if !errors.Is(err, kerr.KafkaStorageError) {
		return fmt.Errorf("file system full: want KAFKA_STORAGE_ERROR, the last probe got %v\n%s", err, d.b.Tail(20))
	}
	time.Sleep(hold) // the workload keeps writing into the full file system meanwhile
	if err := free(); err != nil {
		return err
	}
	// Writes resume without a restart (bounded: 50 probes, a second apart at most).
	for i := 0; i < 50; i++ {
		if err = d.probe(); err == nil {
			return nil
		}
		time.Sleep(time.Duration(min(i+1, 10)) * 100 * time.Millisecond)
	}
	return fmt.Errorf("space returned but produce still fails: %v\n%s", err, d.b.Tail(20))
}

// fill writes zeros to path until the file system has no byte left (ENOSPC), bounded by
// 4 GiB.
func fill(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("cannot reach the broker's file system: %v", err)
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 4 << 10, 1} {
		buf := make([]byte, size)
		for i := 0; i < 4<<10; i++ {
			if _, err := f.Write(buf); err != nil {
				if errors.Is(err, syscall.ENOSPC) {
					break
				}
				return err
			}
		}
	}
	return nil
}
