package main

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	dp "github.com/klite/klite/clients/internal/driverproto"
)

// produceFor is produce_for (clients/README.md). librdkafka waits out a broker's throttle time
// (KIP-219); confluent-kafka-go's producer has no throttle event, so the throttle time comes
// from librdkafka's statistics (brokers.*.throttle.max, ms, per statistics interval).
func (d *driver) produceFor(a dp.ProduceFor) dp.Answer {
	p, err := kafka.NewProducer(d.conf(kafka.ConfigMap{"acks": a.AcksOr(), "compression.codec": "none",
		"enable.idempotence": false, "linger.ms": 5, "message.timeout.ms": 20000, "statistics.interval.ms": 200}))
	if err != nil {
		return d.errAnswer(err)
	}
	defer p.Close()
	var throttle atomic.Int64
	noteStats := func(ev kafka.Event) {
		st, ok := ev.(*kafka.Stats)
		if !ok {
			return
		}
		var s struct {
			Brokers map[string]struct {
				Throttle struct {
					Max int64 `json:"max"`
				} `json:"throttle"`
			} `json:"brokers"`
		}
		if json.Unmarshal([]byte(st.String()), &s) != nil {
			return
		}
		for _, b := range s.Brokers {
			if cur := throttle.Load(); b.Throttle.Max > cur {
				throttle.Store(b.Throttle.Max)
			}
		}
	}
	go func() {
		for ev := range p.Events() { // closed by p.Close
			noteStats(ev)
		}
	}()
	m := dp.NewRateMeter(a)
	dch := make(chan kafka.Event, 1024)
	var pending sync.WaitGroup
	go func() {
		for ev := range dch { // never closed: librdkafka's poller may still hold it
			if msg, ok := ev.(*kafka.Message); ok {
				m.Ack(msg.TopicPartition.Error)
				pending.Done()
			}
		}
	}()
	topic := a.Topic
	for m.Next() {
		msg := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: a.Partition}, Value: m.Value}
		pending.Add(1)
		if err := p.Produce(msg, dch); err != nil {
			pending.Done()
			m.Ack(err)
		}
	}
	done := make(chan struct{})
	go func() { pending.Wait(); close(done) }()
	select { // every record is reported within message.timeout.ms
	case <-done:
	case <-time.After(30 * time.Second):
	}
	time.Sleep(300 * time.Millisecond) // one more statistics interval, for the last throttle
	return m.Answer(throttle.Load())
}
