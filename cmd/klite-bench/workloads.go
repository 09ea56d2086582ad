package main

// The workloads of the side-by-side run, in order: e2e latency on the fresh broker; produce
// with franz-go, with the lean generator and with Kafka's ProducerPerformance; e2e latency
// right after that load and at a higher rate; catch-up consumption from disk with franz-go,
// with the lean reader and with Kafka's ConsumerPerformance; idle connections.

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"time"
)

func (r *compareRun) workloads() error {
	ctx := context.Background()
	o := r.o
	suffix := time.Now().Format("150405")
	names := struct{ lat, latAfter, latHigh, tput, raw, perf, scale string }{
		"bench-lat-" + suffix, "bench-lat-after-" + suffix, "bench-lat-high-" + suffix,
		"bench-tput-" + suffix, "bench-raw-" + suffix, "bench-perf-" + suffix, "bench-scale-" + suffix}
	for _, t := range r.targets {
		if err := createTopics(ctx, t.addr, int32(o.partitions), names.lat, names.latAfter, names.latHigh, names.tput, names.raw, names.perf); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}

	latPhase := func(label, topic string, rate int, dur time.Duration, goal string) error {
		res := [2]latencies{}
		err := r.both(label, func(i int, t *target) error {
			l, err := latency(ctx, t.addr, topic, rate, dur, o.recordSize)
			res[i] = l
			return err
		})
		if err != nil {
			return err
		}
		for _, p := range []struct {
			name string
			get  func(latencies) time.Duration
			note string
		}{{"p50", func(l latencies) time.Duration { return l.p50 }, fmt.Sprintf("%d / %d records", res[0].n, res[1].n)},
			{"p99", func(l latencies) time.Duration { return l.p99 }, goal},
			{"p99.9", func(l latencies) time.Duration { return l.p999 }, ""},
			{"max", func(l latencies) time.Duration { return l.pMax }, ""}} {
			r.add(cmpRow{name: fmt.Sprintf("%s %s", label, p.name), unit: "ms",
				v: [2]float64{ms(p.get(res[0])), ms(p.get(res[1]))}, note: p.note})
		}
		return nil
	}
	if err := latPhase(fmt.Sprintf("e2e latency @ %d rec/s, fresh", o.rate), names.lat, o.rate, o.latDur,
		"target: klite < 2 ms (p99.9 < 5 ms), <= 0.1x Kafka"); err != nil {
		return err
	}

	// Produce phases: MB/s and the broker's CPU seconds per GB.
	produce := func(label, how string, fn func(t *target) (bytes int64, el time.Duration, err error)) ([2]float64, error) {
		mbps, cpu := nan2(), nan2()
		err := r.both(label, func(i int, t *target) error {
			c0 := t.cpu()
			bytes, el, err := fn(t)
			if err != nil {
				return err
			}
			mbps[i] = float64(bytes) / el.Seconds() / 1e6
			cpu[i] = cpuPerGB(t.cpu()-c0, bytes)
			return nil
		})
		if err != nil {
			return mbps, err
		}
		r.add(cmpRow{name: label, unit: "MB/s", v: mbps, higherBetter: true, note: how})
		r.add(cmpRow{name: label + ", broker CPU per GB", unit: "s", v: cpu, note: "target: klite <= 1/3 of Kafka"})
		return mbps, nil
	}
	if o.producers > 0 {
		r.nextProfile = int(o.duration.Seconds())
		if _, err := produce(fmt.Sprintf("produce acks=all, %d franz-go producers", o.producers),
			fmt.Sprintf("1 KiB records, %d partitions, %s, franz-go defaults", o.partitions, o.duration),
			func(t *target) (int64, time.Duration, error) {
				_, bytes, el, err := throughput(ctx, t.addr, names.tput, o)
				deleteTopic(ctx, t.addr, names.tput) // only disk space from here on
				return bytes, el, err
			}); err != nil {
			return err
		}
	}
	var rawRecs [2]int64
	// Peak RSS per group of produce phases: up to the end of the 6-partition ones, the
	// many-partition one, and all of them (the target is on the produce load).
	var sixPeak, scalePeak [2]float64
	scaleRan := false
	if o.rawConns > 0 {
		r.nextProfile = int(o.duration.Seconds())
		lean, err := produce("produce acks=all, lean generator",
			fmt.Sprintf("%d connections x %d in flight, pre-encoded %d KiB batches x %d partitions, %s", o.rawConns, o.rawInFlight, o.rawBatchBytes>>10, o.partitions, o.duration),
			func(t *target) (int64, time.Duration, error) {
				recs, bytes, _, el, err := rawThroughput(ctx, t.addr, names.raw, o, "none")
				rawRecs[r.index(t)] = recs
				return bytes, el, err
			})
		if err != nil {
			return err
		}
		// Scale: the same generator over many partitions, with smaller batches so a request
		// stays 16 MB (Kafka's limit on one request is 100 MB).
		if o.scalePartitions > 0 {
			so := o
			// Two in flight per connection: 4 x 2 x 16 MB stays well inside Kafka's 1 GB heap.
			so.partitions, so.rawBatchBytes, so.rawInFlight = o.scalePartitions, 16<<10, 2
			for _, t := range r.targets {
				if err := createTopics(ctx, t.addr, int32(so.partitions), names.scale); err != nil {
					return fmt.Errorf("%s: %w", t.name, err)
				}
			}
			sixPeak = r.peaks()
			r.nextProfile = int(o.duration.Seconds())
			scale, err := produce(fmt.Sprintf("produce acks=all, lean generator, %d partitions", so.partitions),
				"", func(t *target) (int64, time.Duration, error) {
					_, bytes, _, el, err := rawThroughput(ctx, t.addr, names.scale, so, "none")
					deleteTopic(ctx, t.addr, names.scale)
					return bytes, el, err
				})
			if err != nil {
				return err
			}
			scalePeak, scaleRan = r.peaks(), true
			r.rows[len(r.rows)-2].note = fmt.Sprintf("%d KiB batches, %d connections x 2 in flight, %s; of the %d-partition figure: klite %.2fx, Kafka %.2fx (target: klite >= 0.8x)",
				so.rawBatchBytes>>10, so.rawConns, o.duration, o.partitions, scale[0]/lean[0], scale[1]/lean[1])
		}
	}
	var perfRecs [2]int64
	if o.perfRecords > 0 {
		lat := [3][2]float64{nan2(), nan2(), nan2()}
		if _, err := produce("produce acks=all, Kafka ProducerPerformance",
			fmt.Sprintf("%d x 1 KiB records, one JVM producer, its defaults; MB/s as the tool reports it", o.perfRecords),
			func(t *target) (int64, time.Duration, error) {
				start := time.Now()
				p, err := runProducerPerf(ctx, r.root, t.addr, names.perf, o.perfRecords, o.recordSize,
					filepath.Join(r.out, "producer-perf-"+t.name+".log"))
				if err != nil {
					return 0, 0, err
				}
				i := r.index(t)
				perfRecs[i] = p.records
				lat[0][i], lat[1][i], lat[2][i] = p.p50, p.p99, p.p999
				bytes := p.records * int64(o.recordSize)
				// The tool's own rate (its MB is 2^20 bytes) excludes JVM start-up.
				el := time.Duration(float64(bytes) / (p.mbPerSec * (1 << 20)) * float64(time.Second))
				if p.mbPerSec <= 0 {
					el = time.Since(start)
				}
				return bytes, el, nil
			}); err != nil {
			return err
		}
		for j, q := range []string{"p50", "p99", "p99.9"} {
			r.add(cmpRow{name: "ProducerPerformance send-to-ack latency " + q, unit: "ms", v: lat[j],
				note: "the tool's figures, whole milliseconds, at full load"})
		}
	}

	all := r.peaks()
	if scaleRan {
		for i := range all {
			all[i] = max(all[i], sixPeak[i], scalePeak[i])
		}
	}
	r.add(cmpRow{name: "peak RSS, produce phases", unit: "MB", v: all, note: "sampled every 250 ms from start-up to the end of the produce phases; target: klite < 100 MB"})
	if scaleRan {
		r.add(cmpRow{name: fmt.Sprintf("peak RSS, up to the end of the %d-partition produce phases", o.partitions), unit: "MB", v: sixPeak,
			note: "the part of the row above from start-up to the end of the lean generator's phase"})
		r.add(cmpRow{name: fmt.Sprintf("peak RSS, the %d-partition produce phase", o.scalePartitions), unit: "MB", v: scalePeak,
			note: "the part of the row above in the lean generator's many-partition phase"})
	}

	if err := latPhase(fmt.Sprintf("e2e latency @ %d rec/s, after the produce phases", o.rate), names.latAfter, o.rate, o.latDur,
		"target: klite < 2 ms (p99.9 < 5 ms), <= 0.1x Kafka"); err != nil {
		return err
	}
	if o.rateHigh > 0 {
		if err := latPhase(fmt.Sprintf("e2e latency @ %d rec/s", o.rateHigh), names.latHigh, o.rateHigh, o.latDur,
			"target: klite p99 < 5 ms, <= 0.1x Kafka"); err != nil {
			return err
		}
	}

	// Catch-up: read the lean generator's topic from the start, from disk.
	if o.rawConns > 0 && o.consumeBytes > 0 {
		mbps, cpu := nan2(), nan2()
		r.nextProfile = 10
		err := r.both("catch-up consume, franz-go", func(i int, t *target) error {
			want := min(rawRecs[i], o.consumeBytes/int64(o.recordSize))
			dropDirCache(t.dataDir)
			c0 := t.cpu()
			recs, bytes, el, err := catchUp(ctx, t.addr, names.raw, want, 2*time.Minute)
			if err != nil {
				return err
			}
			if recs < want {
				return fmt.Errorf("read %d of %d records in %s", recs, want, el)
			}
			mbps[i] = float64(bytes) / el.Seconds() / 1e6
			cpu[i] = cpuPerGB(t.cpu()-c0, bytes)
			return nil
		})
		if err != nil {
			return err
		}
		note := fmt.Sprintf("first %d MB of the lean topic, page cache dropped; target: klite >= 2x Kafka", o.consumeBytes/1e6)
		if r.seqRead > 0 {
			note += fmt.Sprintf(" and >= 0.8x the disk's sequential read (klite %.2fx)", mbps[0]/r.seqRead)
		}
		r.add(cmpRow{name: "catch-up consume from disk, franz-go", unit: "MB/s", v: mbps, higherBetter: true, note: note})
		r.add(cmpRow{name: "catch-up consume, broker CPU per GB", unit: "s", v: cpu, note: "target: klite <= 1/3 of Kafka"})

		// The same from disk with the lean reader (leanconsume.go): no record decoding in
		// the client, so the figure is the broker's and the disk's rather than franz-go's.
		lmbps, lcpu := nan2(), nan2()
		err = r.both("catch-up consume, lean reader", func(i int, t *target) error {
			want := min(rawRecs[i], o.consumeBytes/int64(o.recordSize))
			dropDirCache(t.dataDir)
			c0 := t.cpu()
			_, bytes, el, err := leanCatchUp(ctx, t.addr, names.raw, o.partitions, want, o.recordSize, 2*time.Minute)
			if err != nil {
				return err
			}
			lmbps[i] = float64(bytes) / el.Seconds() / 1e6
			lcpu[i] = cpuPerGB(t.cpu()-c0, bytes)
			return nil
		})
		if err != nil {
			return err
		}
		note = "raw Fetch v12 requests (64 MiB answers, 16 MiB per partition), batch headers read only; target: klite >= 2x Kafka"
		if r.seqRead > 0 {
			note += fmt.Sprintf(" and >= 0.8x the disk's sequential read (klite %.2fx)", lmbps[0]/r.seqRead)
		}
		r.add(cmpRow{name: "catch-up consume from disk, lean reader", unit: "MB/s", v: lmbps, higherBetter: true, note: note})
		r.add(cmpRow{name: "catch-up consume (lean reader), broker CPU per GB", unit: "s", v: lcpu, note: "target: klite <= 1/3 of Kafka"})
	}
	if o.perfRecords > 0 {
		mbps, cpu := nan2(), nan2()
		err := r.both("consume, Kafka ConsumerPerformance", func(i int, t *target) error {
			dropDirCache(t.dataDir)
			c0 := t.cpu()
			p, err := runConsumerPerf(ctx, r.root, t.addr, names.perf, perfRecs[i],
				filepath.Join(r.out, "consumer-perf-"+t.name+".log"))
			if err != nil {
				return err
			}
			bytes := int64(p.mb * (1 << 20))
			mbps[i] = bytes2MB(p.fetchMBPerSec)
			cpu[i] = cpuPerGB(t.cpu()-c0, bytes)
			return nil
		})
		if err != nil {
			return err
		}
		r.add(cmpRow{name: "consume, Kafka ConsumerPerformance", unit: "MB/s", v: mbps, higherBetter: true,
			note: "the ProducerPerformance topic from the start, page cache dropped; the tool's fetch MB/s (without its group join)"})
		r.add(cmpRow{name: "consume (ConsumerPerformance), broker CPU per GB", unit: "s", v: cpu, note: "includes the group join"})
	}

	r.add(cmpRow{name: "peak RSS, latency and consume phases", unit: "MB", v: r.peaks(), note: "sampled every 250 ms"})

	if o.tailers > 0 {
		topics := tailTopics(suffix, o.tailers)
		for _, t := range r.targets {
			if err := createTopics(ctx, t.addr, 1, topics...); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
		}
		var res [2]latencies
		err := r.both(fmt.Sprintf("%d tailing consumers", o.tailers), func(i int, t *target) error {
			l, err := tailLatency(ctx, t.addr, topics, o.rate, o.latDur, o.recordSize)
			res[i] = l
			return err
		})
		if err != nil {
			return err
		}
		label := tailLabel(o.tailers, o.rate)
		r.add(cmpRow{name: label + " p50", unit: "ms", v: [2]float64{ms(res[0].p50), ms(res[1].p50)}, note: fmt.Sprintf("%d / %d records", res[0].n, res[1].n)})
		r.add(cmpRow{name: label + " p99", unit: "ms", v: [2]float64{ms(res[0].p99), ms(res[1].p99)}, note: "issue 15: reported, no target"})
		r.add(cmpRow{name: label + " p99.9", unit: "ms", v: [2]float64{ms(res[0].p999), ms(res[1].p999)}})
	}

	if o.idleConns > 0 {
		total, per := nan2(), nan2()
		err := r.both(fmt.Sprintf("%d idle connections", o.idleConns), func(i int, t *target) error {
			with, kb, err := idleConnCost(t, o.idleConns)
			total[i], per[i] = with, kb
			return err
		})
		if err != nil {
			return err
		}
		r.add(cmpRow{name: fmt.Sprintf("RSS with %d connections idle after a request", o.idleConns), unit: "MB", v: total,
			note: "target: klite < 200 MB"})
		r.add(cmpRow{name: "RSS per idle connection", unit: "KB", v: per,
			note: "(RSS with them - RSS before) / connections; a JVM's heap is reserved up front, so Kafka's hardly moves"})
	}
	time.Sleep(3 * time.Second)
	r.add(cmpRow{name: "RSS 3 s after the last load", unit: "MB", v: [2]float64{mb(r.targets[0].rss()), mb(r.targets[1].rss())}})
	return nil
}

func (r *compareRun) index(t *target) int {
	if r.targets[0] == t {
		return 0
	}
	return 1
}

// bytes2MB turns the Kafka tools' MB (2^20 bytes) into MB (1e6 bytes).
func bytes2MB(mib float64) float64 {
	if math.IsNaN(mib) {
		return mib
	}
	return mib * (1 << 20) / 1e6
}

// idleConnCost opens n connections, has each send a Metadata and an ApiVersions request, and
// returns the RSS with them (MB) and what they add per connection (KB) once idle again.
func idleConnCost(t *target, n int) (float64, float64, error) {
	time.Sleep(time.Second)
	before := t.rss()
	conns, err := dialMany(t.addr, n)
	if err != nil {
		return 0, 0, err
	}
	defer closeAll(conns)
	sem := make(chan struct{}, 64)
	errs := make(chan error, len(conns))
	for _, c := range conns {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			if err := activeOnce(c); err != nil {
				errs <- err
			}
		}()
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	time.Sleep(2 * time.Second)
	with := t.rss()
	return mb(with), float64(with-before) / float64(n) / 1e3, nil
}

// peaks returns each broker's highest sampled RSS (MB) since the last call (or the start).
func (r *compareRun) peaks() [2]float64 {
	var p [2]float64
	for i, t := range r.targets {
		p[i] = mb(t.sampler.resetPeak())
	}
	return p
}
