package main

// The growth and disk phases: what history costs (issue 10).
//
//   - growth: a fresh klite stores --growth-batches single-record batches (pre-encoded Produce
//     requests, one 100-byte record per partition batch, as the lean generator sends them),
//     then is stopped with SIGTERM and restarted, then killed with SIGKILL and restarted. Each
//     restart reports the time from exec to the first ApiVersions answer, the time until
//     ListOffsets reports every stored batch again (the history is served, not only the
//     port), and the idle RSS once it has settled;
//   - disk: a fresh klite takes a fixed rate of 1 KiB records (acks=all) for --disk-duration
//     into a topic with retention.ms=60000 (segment.ms=10000, so there are closed segments to
//     delete), and the data directory's size on disk is sampled every few seconds. The broker
//     runs with KLITE_RETENTION_CHECK_INTERVAL=5s (a klite without that flag ignores it).
//     Flat means the size stops growing after about retention.ms plus a segment.

import (
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// growthPartitions is the growth topic's partition count: one Produce request carries one
// single-record batch per partition.
const growthPartitions = 16

func growthRows(o options) ([]row, error) {
	dir := filepath.Join(o.dataDir, "growth")
	proc, err := startKlite(o.bin, dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if proc != nil {
			proc.stop()
		}
	}()
	ctx := context.Background()
	topic := "bench-growth-" + time.Now().Format("150405")
	if err := createTopic(ctx, proc.addr, topic, growthPartitions, nil); err != nil {
		return nil, err
	}
	stored, el, err := storeSingleRecordBatches(ctx, proc.addr, topic, o.growthBatches)
	if err != nil {
		return nil, fmt.Errorf("storing %d batches: %w", o.growthBatches, err)
	}
	size, _ := dirSize(dir)
	before, _ := proc.rss()
	label := fmt.Sprintf("growth %s single-record batches", humanCount(stored))
	rows := []row{
		{label + ": stored", fmt.Sprintf("%.0f batches/s", float64(stored)/el.Seconds()),
			fmt.Sprintf("%d partitions, 100-byte values, %.0f MB on disk, %.1f s", growthPartitions, float64(size)/1e6, el.Seconds())},
		{label + ": RSS before restart", fmt.Sprintf("%.1f MB", float64(before)/1e6), ""},
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		stop := time.Now()
		_ = proc.cmd.Process.Signal(sig)
		waited := make(chan struct{})
		go func() { proc.cmd.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(60 * time.Second):
			_ = proc.cmd.Process.Kill()
			<-waited
		}
		down := time.Since(stop)
		next, err := startKliteAt(o.bin, dir, proc.addr, nil, 120*time.Second)
		if err != nil {
			proc = nil // stopped already: nothing for the deferred stop
			return nil, fmt.Errorf("restart after %s: %w", sig, err)
		}
		proc = next
		ready, err := awaitEndOffsets(ctx, proc, topic, stored, 120*time.Second)
		if err != nil {
			return nil, fmt.Errorf("restart after %s: %w", sig, err)
		}
		time.Sleep(2 * time.Second) // settle before reading idle RSS, as the start-up row does
		idle, _ := proc.rss()
		name := map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}[sig]
		// Measured on the WAL-only build: the first restart is the slower one whichever the
		// signal (an O_DIRECT WAL leaves nothing in the page cache; the second restart finds
		// what the first one read still cached).
		cache := "first restart after storing"
		if sig != syscall.SIGTERM {
			cache = "second restart: the page cache may hold what the first one read"
		}
		rows = append(rows,
			row{fmt.Sprintf("%s: restart after %s", label, name), fmt.Sprintf("%.0f ms", ms(proc.startup)),
				fmt.Sprintf("exec to the first ApiVersions answer (target < 1 s); stopping took %.0f ms; %s", ms(down), cache)},
			row{fmt.Sprintf("%s: history served after %s", label, name), fmt.Sprintf("%.0f ms", ms(ready)),
				"exec until ListOffsets reports every stored batch"},
			row{fmt.Sprintf("%s: idle RSS after %s", label, name), fmt.Sprintf("%.1f MB", float64(idle)/1e6), "target < 40 MB"})
	}
	return rows, nil
}

// storeSingleRecordBatches sends pre-encoded Produce requests (acks=all, one single-record
// batch per partition) over 4 connections with 16 in flight each until n batches are stored.
func storeSingleRecordBatches(ctx context.Context, addr, topic string, n int) (int, time.Duration, error) {
	batch, err := encodeBatch([][]byte{textValue(100)}, "none")
	if err != nil {
		return 0, 0, err
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = 11
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for p := 0; p < growthPartitions; p++ {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = int32(p)
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("klite-bench-growth")).AppendRequest(nil, req, 0)
	var budget atomic.Int64
	budget.Store(int64((n + growthPartitions - 1) / growthPartitions))
	var answered atomic.Int64
	deadline := time.Now().Add(30 * time.Minute)
	el, err := runWorkers(4, func(int) error {
		conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		got, err := rawConn(conn, frame, 16, deadline, func() bool { return budget.Add(-1) >= 0 && time.Now().Before(deadline) })
		answered.Add(got)
		return err
	})
	return int(answered.Load()) * growthPartitions, el, err
}

// awaitEndOffsets polls ListOffsets (latest) until the topic's end offsets add up to want,
// and returns the time since the process was exec'd.
func awaitEndOffsets(ctx context.Context, p *brokerProc, topic string, want int, wait time.Duration) (time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.RetryTimeout(500*time.Millisecond))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(wait)
	var last error
	for time.Now().Before(deadline) {
		c, cancel := context.WithTimeout(ctx, time.Second)
		eo, err := adm.ListEndOffsets(c, topic)
		cancel()
		if err == nil {
			err = eo.Error()
		}
		if err == nil {
			sum := int64(0)
			eo.Each(func(o kadm.ListedOffset) { sum += o.Offset })
			if sum >= int64(want) {
				return time.Since(p.started), nil
			}
			err = fmt.Errorf("end offsets add up to %d of %d", sum, want)
		}
		last = err
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("history not served within %s: %v", wait, last)
}

// diskRows produces o.diskRate 1 KiB records/s for o.diskDuration into a topic with
// retention.ms=60000 and samples the data directory's size on disk every o.diskSample.
func diskRows(o options) ([]row, error) {
	dir := filepath.Join(o.dataDir, "disk")
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	proc, err := startKliteAt(o.bin, dir, addr, []string{"KLITE_RETENTION_CHECK_INTERVAL=5s"}, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer proc.stop()
	ctx := context.Background()
	topic := "bench-disk-" + time.Now().Format("150405")
	retention, segment := "60000", "10000"
	if err := createTopic(ctx, addr, topic, 1, map[string]*string{"retention.ms": &retention, "segment.ms": &segment}); err != nil {
		return nil, err
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	value := make([]byte, 1024)
	rand.Read(value)
	var produceErr atomic.Value
	var acked atomic.Int64
	type sample struct {
		at   time.Duration
		size int64
	}
	var samples []sample
	start := time.Now()
	const tick = 10 * time.Millisecond
	perTick := max(1, o.diskRate/int(time.Second/tick))
	t := time.NewTicker(tick)
	defer t.Stop()
	nextSample := time.Duration(0)
	for el := time.Duration(0); el < o.diskDuration && produceErr.Load() == nil; el = time.Since(start) {
		<-t.C
		for range perTick {
			prod.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					produceErr.CompareAndSwap(nil, err)
					return
				}
				acked.Add(1)
			})
		}
		if el >= nextSample {
			sz, _ := dirSize(dir)
			samples = append(samples, sample{el, sz})
			nextSample += o.diskSample
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	prod.Flush(fctx)
	cancel()
	if e := produceErr.Load(); e != nil {
		return nil, fmt.Errorf("disk phase produce: %w", e.(error))
	}
	end, _ := dirSize(dir)
	samples = append(samples, sample{time.Since(start), end})
	var peak int64
	var marks []string
	every := max(1, len(samples)/8) // about eight marks in the note
	for i, s := range samples {
		peak = max(peak, s.size)
		if i%every == 0 || i == len(samples)-1 {
			marks = append(marks, fmt.Sprintf("%.0fs %.0f", s.at.Seconds(), float64(s.size)/1e6))
		}
	}
	written := float64(acked.Load()) * 1024 / 1e6
	label := fmt.Sprintf("disk use, %s at %d rec/s x 1 KiB, retention.ms=60000", o.diskDuration, o.diskRate)
	return []row{
		{label + ": end", fmt.Sprintf("%.0f MB", float64(end)/1e6),
			fmt.Sprintf("peak %.0f MB; %.0f MB acknowledged; flat is about 70 s of data (%.0f MB)", float64(peak)/1e6, written, 70*float64(o.diskRate)*1024/1e6)},
		{label + ": samples", fmt.Sprintf("%d", len(samples)), "s MB: " + strings.Join(marks, ", ")},
	}, nil
}

func createTopic(ctx context.Context, addr, topic string, partitions int32, configs map[string]*string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if resp.Err != nil {
		return fmt.Errorf("create topic %s: %w", topic, resp.Err)
	}
	return nil
}

// dirSize is the space the files under dir take on disk (allocated blocks, as du counts).
func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file deleted while walking
		}
		if info, err := d.Info(); err == nil && !d.IsDir() {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			} else {
				total += info.Size()
			}
		}
		return nil
	})
	return total, err
}

func humanCount(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// dataDirUsable reports whether the growth phase's history fits: it needs about 200 bytes
// per batch on disk.
func dataDirUsable(dir string, batches int) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil
	}
	need := int64(batches) * 200
	if free := int64(st.Bavail) * int64(st.Bsize); free < 2*need {
		return fmt.Errorf("growth phase: %d batches need about %d MB, %s has %d MB free", batches, need>>20, dir, free>>20)
	}
	return nil
}
