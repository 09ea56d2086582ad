package main

// End-to-end latency: a producer at a fixed rate, acks=all, and a consumer of the same topic
// in this process; every record's latency is kept, so percentiles are exact over all records
// (what an HdrHistogram would give at full precision), not medians of per-window figures.

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// latencies are the percentiles of one latency phase.
type latencies struct {
	n                    int
	p50, p99, p999, pMax time.Duration
}

func percentiles(lats []time.Duration) latencies {
	slices.Sort(lats)
	at := func(q float64) time.Duration { return lats[min(len(lats)-1, int(q*float64(len(lats))))] }
	return latencies{n: len(lats), p50: at(0.50), p99: at(0.99), p999: at(0.999), pMax: lats[len(lats)-1]}
}

// latency produces at a fixed rate with acks=all and consumes the same topic in this process;
// each value carries its send time, so latency is consume time minus send time on one clock.
func latency(ctx context.Context, addr, topic string, rate int, dur time.Duration, recordSize int) (latencies, error) {
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return latencies{}, err
	}
	defer prod.Close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return latencies{}, err
	}
	defer cons.Close()

	// Warm up: one record through both clients so connection set-up is not measured.
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("warm-up")}).FirstErr(); err != nil {
		return latencies{}, err
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	warm := 0
	for warm == 0 && wctx.Err() == nil {
		warm = cons.PollFetches(wctx).NumRecords()
	}
	wcancel()
	if warm == 0 {
		return latencies{}, errors.New("warm-up record not consumed within 10s")
	}

	total := int(float64(rate) * dur.Seconds())
	lats := make([]time.Duration, 0, total)
	done := make(chan struct{})
	go func() {
		defer close(done)
		end := time.Now().Add(dur + 10*time.Second)
		for len(lats) < total && time.Now().Before(end) {
			pctx, cancel := context.WithDeadline(ctx, end)
			fs := cons.PollFetches(pctx)
			cancel()
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				var sent time.Time
				if err := sent.UnmarshalBinary(r.Value[:15]); err == nil {
					lats = append(lats, now.Sub(sent))
				}
			})
		}
	}()

	value := make([]byte, recordSize)
	rand.Read(value)
	const tick = time.Millisecond
	perTick := max(1, rate/int(time.Second/tick))
	t := time.NewTicker(tick)
	defer t.Stop()
	var produceErr atomic.Value
	sent := 0
	for sent < total {
		<-t.C
		for i := 0; i < perTick && sent < total; i++ {
			v := append([]byte(nil), value...)
			ts, _ := time.Now().MarshalBinary()
			copy(v, ts)
			prod.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
				if err != nil {
					produceErr.CompareAndSwap(nil, err)
				}
			})
			sent++
		}
	}
	<-done
	if e := produceErr.Load(); e != nil {
		return latencies{}, e.(error)
	}
	if len(lats) == 0 {
		return latencies{}, errors.New("no records consumed")
	}
	return percentiles(lats), nil
}
