package main

// Catch-up consumption: one franz-go consumer reads a topic that was written long before
// (the lean generator's, several GB: far more than any broker keeps in memory) from the
// start, after the broker's data files were dropped from the page cache, so the bytes come
// from the disk. MB/s counts record values, as the produce phases do.

import (
	"context"
	"fmt"
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
