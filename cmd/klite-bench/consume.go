package main

// Catch-up consumption: one franz-go consumer reads a topic that was written long before
// (the lean generator's, several GB: far more than any broker keeps in memory) from the
// start, after the broker's data files were dropped from the page cache, so the bytes come
// from the disk. MB/s counts record values, as the produce phases do.

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// catchUp reads up to want records of topic from the start, for at most limit, and returns
// the records and value bytes read and how long it took.
func catchUp(ctx context.Context, addr, topic string, want int64, limit time.Duration) (recs, bytes int64, el time.Duration, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
	if err != nil {
		return 0, 0, 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	for recs < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(_ string, _ int32, e error) {
			if ctx.Err() == nil && err == nil {
				err = e
			}
		})
		if err != nil {
			return recs, bytes, time.Since(start), fmt.Errorf("fetch: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			recs++
			bytes += int64(len(r.Value))
		})
	}
	return recs, bytes, time.Since(start), nil
}

// catchUpRows is the single-broker table's catch-up phase: the disk's sequential read (the
// probe's file in the data directory, dropped from the page cache), then a franz-go consumer
// reading the lean topic's first --consume-bytes from the start with klite's data files
// dropped from the page cache, with klite's CPU seconds per GB.
func catchUpRows(ctx context.Context, o options, proc *brokerProc, addr, topic string, recs int64) ([]row, error) {
	read, err := seqReadProbe(o.dataDir, o.readProbeBytes)
	if err != nil {
		return nil, fmt.Errorf("sequential read probe: %w", err)
	}
	want := min(recs, o.consumeBytes/int64(o.recordSize))
	dropDirCache(filepath.Join(o.dataDir, "klite"))
	cpu0 := proc.cpu()
	n, bytes, el, err := catchUp(ctx, addr, topic, want, 2*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("catch-up: %w", err)
	}
	if n < want {
		return nil, fmt.Errorf("catch-up read %d of %d records in %s", n, want, el)
	}
	mbps := float64(bytes) / el.Seconds() / 1e6
	rows := []row{
		{"disk sequential read (file dropped from page cache)", fmt.Sprintf("%.0f MB/s", read), fmt.Sprintf("%d MiB file, 1 MiB reads", o.readProbeBytes>>20)},
		{"catch-up consume from disk, franz-go", fmt.Sprintf("%.0f MB/s", mbps),
			fmt.Sprintf("%.2fx the sequential read (target >= 0.8x); %d MB of the lean topic, page cache dropped", mbps/read, bytes/1e6)},
	}
	if cpu1 := proc.cpu(); cpu0 >= 0 && cpu1 >= 0 {
		rows = append(rows, row{"catch-up consume, broker CPU per GB", fmt.Sprintf("%.2f s", cpuPerGB(cpu1-cpu0, bytes)), "user+system time of the klite process"})
	}
	// The lean reader, from disk again.
	dropDirCache(filepath.Join(o.dataDir, "klite"))
	cpu0 = proc.cpu()
	_, lbytes, lel, err := leanCatchUp(ctx, addr, topic, o.partitions, want, o.recordSize, 2*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("lean catch-up: %w", err)
	}
	lmbps := float64(lbytes) / lel.Seconds() / 1e6
	rows = append(rows, row{"catch-up consume from disk, lean reader", fmt.Sprintf("%.0f MB/s", lmbps),
		fmt.Sprintf("%.2fx the sequential read (target >= 0.8x); raw Fetch requests, batch headers read only", lmbps/read)})
	if cpu1 := proc.cpu(); cpu0 >= 0 && cpu1 >= 0 {
		rows = append(rows, row{"catch-up consume (lean reader), broker CPU per GB", fmt.Sprintf("%.2f s", cpuPerGB(cpu1-cpu0, lbytes)), ""})
	}
	// The same reads again, the files now (mostly) in the page cache: the consumers' and the
	// loopback's bounds, to tell the disk's share in the figures above.
	cpu0 = proc.cpu()
	_, lbytes, lel, err = leanCatchUp(ctx, addr, topic, o.partitions, want, o.recordSize, 2*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("lean catch-up (warm): %w", err)
	}
	note := "the same read again right after"
	if cpu1 := proc.cpu(); cpu0 >= 0 && cpu1 >= 0 {
		note += fmt.Sprintf("; broker CPU %.2f s per GB", cpuPerGB(cpu1-cpu0, lbytes))
	}
	rows = append(rows, row{"catch-up consume, lean reader, page cache warm", fmt.Sprintf("%.0f MB/s", float64(lbytes)/lel.Seconds()/1e6), note})
	_, bytes, el, err = catchUp(ctx, addr, topic, want, 2*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("catch-up (warm): %w", err)
	}
	rows = append(rows, row{"catch-up consume, franz-go, page cache warm", fmt.Sprintf("%.0f MB/s", float64(bytes)/el.Seconds()/1e6), "the same read again right after"})
	return rows, nil
}
