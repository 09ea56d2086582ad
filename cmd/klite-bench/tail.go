package main

// Many tailing consumers: --tailers topics of one partition each, one franz-go consumer
// client per topic reading it as it grows, and one producer (acks=all, no linger) spreading
// --rate records/s over all of them. Each record carries its send time; the latency of every
// record at every consumer counts.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// tailTopics names the n one-partition topics of the tailing consumers.
func tailTopics(suffix string, n int) []string {
	topics := make([]string, n)
	for i := range topics {
		topics[i] = fmt.Sprintf("bench-tail-%s-%03d", suffix, i)
	}
	return topics
}

// tailLabel is the rows' name for the tailing consumers' latency.
func tailLabel(tailers, rate int) string {
	return fmt.Sprintf("e2e latency, %d consumers tailing a topic each, %d rec/s in all", tailers, rate)
}

func tailLatency(ctx context.Context, addr string, topics []string, rate int, dur time.Duration, recordSize int) (latencies, error) {
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return latencies{}, err
	}
	defer prod.Close()
	total := int(float64(rate) * dur.Seconds())
	var (
		mu     sync.Mutex
		lats   = make([]time.Duration, 0, total)
		warmed atomic.Int64
		got    atomic.Int64
	)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, topic := range topics {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			cancel()
			wg.Wait()
			return latencies{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			var mine []time.Duration
			warm := false
			for cctx.Err() == nil {
				fs := cl.PollFetches(cctx)
				now := time.Now()
				fs.EachRecord(func(r *kgo.Record) {
					if !warm {
						warm = true
						warmed.Add(1)
						return // the warm-up record
					}
					var sent time.Time
					if len(r.Value) >= 15 && sent.UnmarshalBinary(r.Value[:15]) == nil {
						mine = append(mine, now.Sub(sent))
						got.Add(1)
					}
				})
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	finish := func() { cancel(); wg.Wait() }

	// Warm-up: one record per topic, seen by every consumer, so connection and group-less
	// partition assignment are not measured.
	for _, topic := range topics {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("warm-up")}).FirstErr(); err != nil {
			finish()
			return latencies{}, err
		}
	}
	for deadline := time.Now().Add(60 * time.Second); warmed.Load() < int64(len(topics)); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			finish()
			return latencies{}, fmt.Errorf("%d of %d consumers saw their warm-up record within 60 s", warmed.Load(), len(topics))
		}
	}

	value := make([]byte, recordSize)
	rand.Read(value)
	const tick = time.Millisecond
	perTick := max(1, rate/int(time.Second/tick))
	t := time.NewTicker(tick)
	var produceErr atomic.Value
	for sent := 0; sent < total; {
		<-t.C
		for i := 0; i < perTick && sent < total; i++ {
			v := append([]byte(nil), value...)
			ts, _ := time.Now().MarshalBinary()
			copy(v, ts)
			prod.Produce(ctx, &kgo.Record{Topic: topics[sent%len(topics)], Value: v}, func(_ *kgo.Record, err error) {
				if err != nil {
					produceErr.CompareAndSwap(nil, err)
				}
			})
			sent++
		}
	}
	t.Stop()
	for deadline := time.Now().Add(30 * time.Second); got.Load() < int64(total) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	finish()
	if e := produceErr.Load(); e != nil {
		return latencies{}, e.(error)
	}
	if len(lats) == 0 {
		return latencies{}, errors.New("no records consumed")
	}
	return percentiles(lats), nil
}
