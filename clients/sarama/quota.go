package main

import (
	"strings"
	"sync"

	"github.com/IBM/sarama"
	dp "github.com/klite/klite/clients/internal/driverproto"
)

// produceFor is produce_for (clients/README.md) with an AsyncProducer; sarama waits out a
// broker's throttle time (KIP-219) and records it in the "throttle-time-in-ms" histogram.
func (d *driver) produceFor(a dp.ProduceFor) dp.Answer {
	cfg := d.producerConfig(a.AcksOr(), sarama.CompressionNone, false) // quotas count wire bytes
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewAsyncProducer(d.addrs(), cfg)
	if err != nil {
		return errAnswer(err)
	}
	m := dp.NewRateMeter(a)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range p.Successes() {
			m.Ack(nil)
		}
	}()
	go func() {
		defer wg.Done()
		for e := range p.Errors() {
			m.Ack(e.Err)
		}
	}()
	for m.Next() {
		p.Input() <- &sarama.ProducerMessage{Topic: a.Topic, Partition: a.Partition, Value: sarama.ByteEncoder(m.Value)}
	}
	// Read before closing: closing the producer's brokers unregisters their metrics.
	var throttle int64 // per broker: throttle-time-in-ms-for-broker-<id>
	cfg.MetricRegistry.Each(func(name string, v any) {
		if h, ok := v.(interface{ Max() int64 }); ok && strings.HasPrefix(name, "throttle-time-in-ms") {
			throttle = max(throttle, h.Max())
		}
	})
	p.AsyncClose() // flushes what is buffered, then closes Successes and Errors
	wg.Wait()
	return m.Answer(throttle)
}
