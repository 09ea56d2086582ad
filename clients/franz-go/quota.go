package main

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceForArgs are the arguments of produce_for (clients/README.md): produce as fast as
// the broker lets, for warmup_ms and then duration_ms, and measure the rate acknowledged
// in the second period.
type produceForArgs struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	RecordBytes int    `json:"record_bytes"`
	WarmupMs    int    `json:"warmup_ms"`
	DurationMs  int    `json:"duration_ms"`
	Acks        *int   `json:"acks"`
	InFlight    int    `json:"in_flight"`
}

// throttleHook records the largest throttle time the brokers reported (KIP-219).
type throttleHook struct{ maxMs atomic.Int64 }

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	for ms := d.Milliseconds(); ; {
		cur := h.maxMs.Load()
		if ms <= cur || h.maxMs.CompareAndSwap(cur, ms) {
			return
		}
	}
}

func (d *driver) produceFor(a produceForArgs) (map[string]any, error) {
	if a.RecordBytes <= 0 {
		a.RecordBytes = 1000
	}
	if a.InFlight <= 0 {
		a.InFlight = 64
	}
	acks := kgo.AllISRAcks()
	if a.Acks != nil && *a.Acks == 1 {
		acks = kgo.LeaderAck()
	}
	hook := &throttleHook{}
	cl, err := kgo.NewClient(d.opts(kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite(), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()), // quotas count the bytes on the wire
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.WithHooks(hook))...)
	if err != nil {
		return nil, fmtErr("%v", err)
	}
	defer cl.Close()
	value := []byte(strings.Repeat("0123456789abcdef", a.RecordBytes/16+1)[:a.RecordBytes])
	start := time.Now()
	warmEnd := start.Add(time.Duration(a.WarmupMs) * time.Millisecond)
	end := warmEnd.Add(time.Duration(a.DurationMs) * time.Millisecond)
	slots := make(chan struct{}, a.InFlight)
	var wg sync.WaitGroup
	var acked, failed, counted atomic.Int64
	var firstErr atomic.Value
	c, cancel := context.WithDeadline(context.Background(), end.Add(30*time.Second))
	defer cancel()
	for time.Now().Before(end) {
		select {
		case slots <- struct{}{}:
		case <-time.After(time.Until(end)):
			continue // the loop condition ends it
		}
		wg.Add(1)
		cl.Produce(c, &kgo.Record{Topic: a.Topic, Partition: a.Partition, Value: value}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			<-slots
			now := time.Now()
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			acked.Add(1)
			if !now.Before(warmEnd) && !now.After(end) {
				counted.Add(int64(len(value)))
			}
		})
	}
	wg.Wait()
	res := map[string]any{
		"records":          acked.Load(),
		"errors":           failed.Load(),
		"bytes_per_sec":    float64(counted.Load()) / (float64(a.DurationMs) / 1000),
		"throttle_time_ms": hook.maxMs.Load(),
		"throttled":        hook.maxMs.Load() > 0,
	}
	if e := firstErr.Load(); e != nil {
		res["message"] = e
	}
	return res, nil
}
