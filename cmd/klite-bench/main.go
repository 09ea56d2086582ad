// Command klite-bench measures klite on this machine. By default it runs klite beside
// Apache Kafka 4.0 (compare.go, workloads.go: the same workloads against both, alternating,
// one table with both and their ratio, report.md and chart.svg in .cache/bench/<timestamp>/).
// With --klite-only (or --addr) it prints the single-broker table:
//
//   - the data disk's own limit: sequential write+fsync throughput at 256 KiB .. 16 MiB writes,
//     through the page cache and with O_DIRECT (median of three runs each), and the best of them;
//   - start-up: time from exec to the first ApiVersions answer;
//   - idle RSS and peak RSS of the broker process;
//   - produce throughput: acks=all, 1 KiB records, 6 partitions, for a fixed time, twice: with
//     franz-go producers (what a client application sees; on 2 cores the producers' own CPU
//     is most of the load) and with a lean generator sending pre-encoded Produce requests
//     (what the broker can take; see raw.go), then again with lz4 and zstd batches (--raw-codecs),
//     which the broker decompresses to validate;
//   - end-to-end latency p50/p99 at a fixed 20,000 records/s (produce acks=all -> consume);
//   - catch-up consumption from disk of the lean generator's uncompressed topic, beside the
//     disk's sequential read measured just before (see consume.go);
//   - memory per connection: RSS with 250 connections stalled in 100 MB requests and with
//     2,000 idle-then-active connections (see connmem.go);
//   - growth: restart time (SIGTERM, SIGKILL) and idle RSS after storing a million
//     single-record batches; disk: the data directory's size under a fixed produce rate into
//     a retention.ms=60000 topic (see growth.go).
//
// With --addr it benchmarks an already running broker (no start-up or RSS figures), which is
// how the same run can be made against Apache Kafka.
//
// With --metrics-overhead N it runs only the metrics overhead phase (overhead.go): N rounds
// of the lean generator against klite with metrics on and off, alternating.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type options struct {
	bin        string
	addr       string
	dataDir    string
	duration   time.Duration
	latDur     time.Duration
	rate       int
	partitions int
	recordSize int
	producers  int
	skipDisk   bool

	rawConns      int
	rawInFlight   int
	rawBatchBytes int
	rawCodecs     string

	stalledFrames int
	idleConns     int

	kliteArgs     string
	growthBatches int
	diskDuration  time.Duration
	diskRate      int
	diskSample    time.Duration

	kliteOnly       bool
	long            bool
	perfRecords     int64
	rateHigh        int
	consumeBytes    int64
	readProbeBytes  int64
	profile         bool
	scalePartitions int
	tailers         int
	tailersAlone    bool // --tailers given: the single-broker table runs them too
	metricsRounds   int
	scrapeEvery     time.Duration

	s3Duration, s3Flush, s3LagWait time.Duration // the S3 phase (s3.go)
	s3Only                         bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "klite-bin", "bin/klite", "klite binary to start (ignored with --addr)")
	flag.StringVar(&o.addr, "addr", "", "benchmark an already running broker at host:port instead of starting klite")
	flag.StringVar(&o.dataDir, "data-dir", "", "klite data dir and disk-probe location (default: a temp dir under .cache/bench)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long the throughput phase produces")
	flag.DurationVar(&o.latDur, "latency-duration", 5*time.Second, "how long the latency phase runs")
	flag.IntVar(&o.rate, "rate", 20000, "records per second in the latency phase")
	flag.IntVar(&o.partitions, "partitions", 6, "partitions of the benchmark topics")
	flag.IntVar(&o.recordSize, "record-size", 1024, "value size in bytes")
	flag.IntVar(&o.producers, "producers", 4, "concurrent producer clients in the throughput phase")
	flag.BoolVar(&o.skipDisk, "skip-disk", false, "skip the raw disk probe")
	flag.IntVar(&o.rawConns, "raw-conns", 4, "connections of the lean (pre-encoded) load generator; 0 skips that phase")
	flag.IntVar(&o.rawInFlight, "raw-in-flight", 8, "requests in flight per connection of the lean load generator")
	flag.IntVar(&o.rawBatchBytes, "raw-batch-bytes", 128<<10, "record bytes per partition batch of the lean load generator")
	flag.StringVar(&o.rawCodecs, "raw-codecs", "lz4,zstd", "compression codecs (gzip, snappy, lz4, zstd) each given a lean-generator phase after the uncompressed one; empty skips them")
	flag.IntVar(&o.stalledFrames, "stalled-frames", 250, "connections stalling in a 100 MB request in the connection-memory phase (0 skips the phase)")
	flag.IntVar(&o.idleConns, "idle-conns", 2000, "idle-then-active connections in the connection-memory phase (side by side: 10000)")
	flag.StringVar(&o.kliteArgs, "klite-args", "", "extra flags for the klite it starts, space separated (e.g. \"--health-addr 127.0.0.1:9644 --metrics=false\" to compare metrics on and off)")
	flag.IntVar(&o.growthBatches, "growth-batches", 1_000_000, "single-record batches the growth phase stores before measuring restarts and idle RSS (the issue's sizes: 1000000 and 10000000; 0 skips the phase)")
	flag.DurationVar(&o.diskDuration, "disk-duration", 2*time.Minute, "how long the disk phase produces into a retention.ms=60000 topic (the issue's: 10m; 0 skips the phase)")
	flag.IntVar(&o.diskRate, "disk-rate", 1000, "records per second (1 KiB each) in the disk phase")
	flag.DurationVar(&o.diskSample, "disk-sample", 5*time.Second, "how often the disk phase samples the data directory's size")
	flag.BoolVar(&o.kliteOnly, "klite-only", false, "benchmark klite alone (the single-broker table, with the half-frame, growth and disk phases) instead of side by side with Kafka")
	flag.BoolVar(&o.long, "long", false, "longer side-by-side run: 30 s produce, 20 s latency phases, 5M ProducerPerformance records, 16 GB catch-up, then klite's growth and disk phases (flags given explicitly win)")
	flag.Int64Var(&o.perfRecords, "perf-records", 1_000_000, "records Kafka's ProducerPerformance sends to each broker (0 skips it and ConsumerPerformance)")
	flag.IntVar(&o.rateHigh, "rate-high", 100_000, "records per second of the second latency phase (0 skips it)")
	flag.Int64Var(&o.consumeBytes, "consume-bytes", 4_000_000_000, "bytes of the lean generator's topic the catch-up phase reads from disk (0 skips it)")
	flag.Int64Var(&o.readProbeBytes, "read-probe-bytes", 1<<30, "size of the file the sequential-read probe writes and reads back")
	flag.BoolVar(&o.profile, "profile", false, "side by side: start klite with --health-addr and save CPU profiles of its produce phases and of the first 10 s of its catch-up consume into the results folder")
	flag.IntVar(&o.scalePartitions, "scale-partitions", 1000, "side by side: partitions of the lean generator's scale phase (16 KiB batches; 0 skips it)")
	flag.IntVar(&o.tailers, "tailers", 100, "consumers tailing a one-partition topic each while one producer spreads --rate records/s over them (0 skips it; side by side always, in the single-broker table when given)")
	flag.IntVar(&o.metricsRounds, "metrics-overhead", 0, "run only the metrics overhead phase: this many rounds, each producing with the lean generator for --duration against klite with metrics on (scraped every --metrics-scrape-interval) and with --metrics=false, in alternating order (overhead.go)")
	flag.DurationVar(&o.scrapeEvery, "metrics-scrape-interval", time.Second, "how often the metrics overhead phase scrapes /metrics while metrics are on (0: never)")
	flag.DurationVar(&o.s3Duration, "s3-duration", 10*time.Second, "how long the S3 phase's lean generator produces into a klite with the S3 tier on a moto server (0 skips the phase; needs `make moto`)")
	flag.DurationVar(&o.s3Flush, "s3-flush-interval", 2*time.Second, "--s3-flush-interval of the S3 phase's klite")
	flag.DurationVar(&o.s3LagWait, "s3-lag-wait", 3*time.Minute, "longest wait, after the S3 phase's produce, for its bytes to be in S3")
	flag.BoolVar(&o.s3Only, "s3-only", false, "run only the S3 phase (klite alone)")
	flag.IntVar(&clientGCPercent, "client-gc-percent", 400, "GC percentage of this benchmark process (its clients and load generators, the same for both brokers): with Go's default its own collections showed in the e2e latency tail; 0 keeps Go's default, and GOGC, when set, wins")
	flag.Parse()
	if clientGCPercent > 0 && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(clientGCPercent)
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// The single-broker table has the tailing consumers only when asked for by name.
	o.tailersAlone = set["tailers"]
	if !o.kliteOnly && o.addr == "" && !set["idle-conns"] {
		o.idleConns = 10_000 // the scale target; the single-broker table keeps 2,000
	}
	if o.long {
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("duration", func() { o.duration = 30 * time.Second })
		def("latency-duration", func() { o.latDur = 20 * time.Second })
		def("perf-records", func() { o.perfRecords = 5_000_000 })
		def("consume-bytes", func() { o.consumeBytes = 16_000_000_000 })
		def("growth-batches", func() { o.growthBatches = 10_000_000 })
		def("disk-duration", func() { o.diskDuration = 10 * time.Minute })
	}
	var err error
	if o.metricsRounds > 0 {
		err = metricsOverhead(o)
	} else if o.s3Only {
		err = runS3Only(o)
	} else if o.kliteOnly || o.addr != "" {
		err = run(o)
	} else {
		err = compare(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "klite-bench:", err)
		os.Exit(1)
	}
}

// clientGCPercent is the benchmark process's own GC percentage (--client-gc-percent).
var clientGCPercent int

// clientGC describes it for the reports.
func clientGC() string {
	if v := os.Getenv("GOGC"); v != "" {
		return "GOGC=" + v
	}
	if clientGCPercent > 0 {
		return fmt.Sprintf("GC percentage %d (--client-gc-percent)", clientGCPercent)
	}
	return "Go's default GC percentage"
}

type row struct{ name, value, note string }

func run(o options) error {
	cleanup, err := scratchDataDir(&o)
	if err != nil {
		return err
	}
	defer cleanup()
	var rows []row
	// The disk's own limit, three ways: plain write+fsync (the definition), the same
	// with each fsynced write dropped from the page cache, and O_DIRECT write+fsync (how
	// klite's WAL writes where the file system allows). The target is measured against the
	// best of all of them.
	var disk diskPeaks
	if !o.skipDisk {
		for _, mode := range []probeMode{probePlain, probeDrop, probeDirect} {
			probe, err := diskProbe(o.dataDir, mode)
			if err != nil {
				return fmt.Errorf("disk probe (%s): %w", mode, err)
			}
			for _, p := range probe {
				rows = append(rows, row{fmt.Sprintf("disk %s %s", mode, humanSize(p.size)), fmt.Sprintf("%.0f MB/s", p.mbps),
					fmt.Sprintf("median of %d runs", probeRuns)})
				disk.note(mode, p.mbps)
			}
		}
		rows = append(rows, row{"disk peak (best of the above)", fmt.Sprintf("%.0f MB/s", disk.best), string(disk.bestMode)})
	}

	addr := o.addr
	var proc *brokerProc
	if addr == "" {
		var err error
		proc, err = startKlite(o.bin, filepath.Join(o.dataDir, "klite"), strings.Fields(o.kliteArgs)...)
		if err != nil {
			return err
		}
		defer proc.stop()
		addr = proc.addr
		rows = append(rows, row{"start-up to first ApiVersions", fmt.Sprintf("%.1f ms", ms(proc.startup)), "target < 50 ms"})
		time.Sleep(time.Second) // let the process settle before reading idle RSS
		idle, _ := proc.rss()
		rows = append(rows, row{"idle RSS", fmt.Sprintf("%.1f MB", float64(idle)/1e6), "target < 20 MB"})
	}

	ctx := context.Background()
	admin, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	suffix := time.Now().Format("150405")
	tputTopic, rawTopic := "bench-tput-"+suffix, "bench-raw-"+suffix
	latTopic, latAfterTopic := "bench-lat-"+suffix, "bench-lat-after-"+suffix
	for _, t := range []string{tputTopic, rawTopic, latTopic, latAfterTopic} {
		resp, err := adm.CreateTopic(ctx, int32(o.partitions), 1, nil, t)
		if err != nil {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
		if resp.Err != nil {
			return fmt.Errorf("create topic %s: %w", t, resp.Err)
		}
	}

	// Latency first, on a broker in its steady state, then again after the throughput phases
	// have written tens of gigabytes (the disk's fsync latency is often worse for a while).
	latRows := func(topic, when, note string) error {
		l, err := latency(ctx, addr, topic, o.rate, o.latDur, o.recordSize)
		if err != nil {
			return fmt.Errorf("latency: %w", err)
		}
		rows = append(rows,
			row{fmt.Sprintf("e2e latency p50 @ %d rec/s%s", o.rate, when), fmt.Sprintf("%.2f ms", ms(l.p50)), fmt.Sprintf("%d samples", l.n)},
			row{fmt.Sprintf("e2e latency p99 @ %d rec/s%s", o.rate, when), fmt.Sprintf("%.2f ms", ms(l.p99)), note},
			row{fmt.Sprintf("e2e latency p99.9 @ %d rec/s%s", o.rate, when), fmt.Sprintf("%.2f ms", ms(l.p999)), ""})
		return nil
	}
	if err := latRows(latTopic, "", "target < 3.5 ms"); err != nil {
		return err
	}
	if o.tailersAlone && o.tailers > 0 {
		topics := tailTopics(suffix, o.tailers)
		if err := createTopics(ctx, addr, 1, topics...); err != nil {
			return err
		}
		l, err := tailLatency(ctx, addr, topics, o.rate, o.latDur, o.recordSize)
		if err != nil {
			return fmt.Errorf("tailing consumers: %w", err)
		}
		label := tailLabel(o.tailers, o.rate)
		rows = append(rows,
			row{label + " p50", fmt.Sprintf("%.2f ms", ms(l.p50)), fmt.Sprintf("%d samples", l.n)},
			row{label + " p99", fmt.Sprintf("%.2f ms", ms(l.p99)), ""},
			row{label + " p99.9", fmt.Sprintf("%.2f ms", ms(l.p999)), ""})
	}

	// The broker's CPU time per GB produced: on a shared machine throughput swings with the
	// neighbours' load, the work per byte much less.
	cpuRow := func(name string, cpu0 time.Duration, bytes int64) {
		if proc != nil && cpu0 >= 0 && bytes > 0 {
			if cpu1 := proc.cpu(); cpu1 >= 0 {
				rows = append(rows, row{name + ", broker CPU per GB", fmt.Sprintf("%.2f s", (cpu1-cpu0).Seconds()/(float64(bytes)/1e9)), "user+system time of the klite process"})
			}
		}
	}
	if o.producers > 0 {
		cpu0 := proc.cpu()
		recs, bytes, el, err := throughput(ctx, addr, tputTopic, o)
		if err != nil {
			return fmt.Errorf("throughput: %w", err)
		}
		rows = append(rows, tputRows("produce acks=all 1 KiB x6 partitions", recs, bytes, el, disk,
			fmt.Sprintf("%d franz-go producers, default settings (<= 5 requests in flight each)", o.producers))...)
		cpuRow("produce acks=all 1 KiB x6 partitions", cpu0, bytes)
	}
	var rawRecs int64 // records of the uncompressed lean phase (the catch-up phase reads them)
	if o.rawConns > 0 {
		codecs := []string{"none"}
		for _, c := range strings.Split(o.rawCodecs, ",") {
			if c = strings.TrimSpace(c); c != "" {
				codecs = append(codecs, c)
			}
		}
		for _, codec := range codecs {
			cpu0 := proc.cpu()
			recs, bytes, batchBytes, el, err := rawThroughput(ctx, addr, rawTopic, o, codec)
			if err != nil {
				return fmt.Errorf("lean throughput (%s): %w", codec, err)
			}
			if codec == "none" {
				rawRecs = recs
			}
			name := "produce acks=all 1 KiB x6, lean generator"
			if codec != "none" {
				name += ", " + codec
			}
			rows = append(rows, tputRows(name, recs, bytes, el, disk,
				fmt.Sprintf("%d connections x %d in flight, pre-encoded %d KiB batches (%s: %d KiB sent) x %d partitions; MB/s of uncompressed records",
					o.rawConns, o.rawInFlight, o.rawBatchBytes>>10, codec, batchBytes>>10, o.partitions))...)
			cpuRow(name, cpu0, bytes)
		}
	}
	if proc != nil {
		_, peak := proc.rss()
		rows = append(rows, row{"peak RSS", fmt.Sprintf("%.1f MB", float64(peak)/1e6), ""})
	}

	if o.producers > 0 || o.rawConns > 0 {
		if err := latRows(latAfterTopic, ", after", "right after the throughput phases"); err != nil {
			return err
		}
	}
	if proc != nil && rawRecs > 0 && o.consumeBytes > 0 {
		c, err := catchUpRows(ctx, o, proc, addr, rawTopic, rawRecs)
		if err != nil {
			return err
		}
		rows = append(rows, c...)
	}
	if proc != nil {
		// klite hands a burst's memory back once its WAL has been idle for a second.
		time.Sleep(3 * time.Second)
		cur, _ := proc.rss()
		rows = append(rows, row{"RSS 3 s after the last load", fmt.Sprintf("%.1f MB", float64(cur)/1e6), ""})
	}
	if proc != nil && o.stalledFrames > 0 {
		cm, err := connMemRows(proc, o.stalledFrames, o.idleConns)
		if err != nil {
			return fmt.Errorf("connection memory: %w", err)
		}
		rows = append(rows, cm...)
	}

	if proc != nil && o.growthBatches > 0 {
		if err := dataDirUsable(o.dataDir, o.growthBatches); err != nil {
			return err
		}
		g, err := growthRows(o)
		if err != nil {
			return fmt.Errorf("growth phase: %w", err)
		}
		rows = append(rows, g...)
	}
	if proc != nil && o.diskDuration > 0 {
		d, err := diskRows(o)
		if err != nil {
			return fmt.Errorf("disk phase: %w", err)
		}
		rows = append(rows, d...)
	}

	if proc != nil && o.s3Duration > 0 {
		s, err := s3Rows(o)
		if err != nil {
			return fmt.Errorf("S3 phase: %w", err)
		}
		rows = append(rows, s...)
	}

	printTable(rows)
	return nil
}

// scratchDataDir gives o a fresh data directory under .cache/bench when none was asked for;
// cleanup removes it (a no-op for one the user gave).
func scratchDataDir(o *options) (cleanup func(), err error) {
	if o.dataDir != "" {
		return func() {}, nil
	}
	base := filepath.Join(".cache", "bench")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	d, err := os.MkdirTemp(base, "run-")
	if err != nil {
		return nil, err
	}
	o.dataDir = d
	return func() { os.RemoveAll(d) }, nil
}

// runS3Only runs the S3 phase alone (--s3-only).
func runS3Only(o options) error {
	cleanup, err := scratchDataDir(&o)
	if err != nil {
		return err
	}
	defer cleanup()
	rows, err := s3Rows(o)
	if err != nil {
		return err
	}
	printTable(rows)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func humanSize(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

func printTable(rows []row) {
	w1, w2 := len("metric"), len("value")
	for _, r := range rows {
		w1, w2 = max(w1, len(r.name)), max(w2, len(r.value))
	}
	fmt.Printf("| %-*s | %*s | %s\n", w1, "metric", w2, "value", "note")
	fmt.Printf("|-%s-|-%s-|-----\n", strings.Repeat("-", w1), strings.Repeat("-", w2))
	for _, r := range rows {
		fmt.Printf("| %-*s | %*s | %s\n", w1, r.name, w2, r.value, r.note)
	}
}

func throughput(ctx context.Context, addr, topic string, o options) (int64, int64, time.Duration, error) {
	// Incompressible values and no compression: the figure is bytes through the log.
	value := make([]byte, o.recordSize)
	rand.Read(value)
	var recs, bytes atomic.Int64
	deadline := time.Now().Add(o.duration)
	el, err := runWorkers(o.producers, func(int) error {
		// franz-go's producer defaults, as a user would have them: idempotent (so acks=all and
		// at most 5 produce requests in flight per broker), linger 10ms, batches up to
		// 1,000,012 bytes, 50,000 buffered records. Only compression is turned off. With
		// --producers clients (default 4) that is up to 20 requests in flight.
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerBatchCompression(kgo.NoCompression()))
		if err != nil {
			return err
		}
		defer cl.Close()
		var firstErr atomic.Value
		for time.Now().Before(deadline) && firstErr.Load() == nil {
			cl.Produce(ctx, &kgo.Record{Value: value}, func(r *kgo.Record, err error) {
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				recs.Add(1)
				bytes.Add(int64(len(r.Value)))
			})
		}
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cl.Flush(fctx)
		if e := firstErr.Load(); e != nil {
			return e.(error)
		}
		return nil
	})
	if err != nil {
		return 0, 0, 0, err
	}
	return recs.Load(), bytes.Load(), el, nil
}

// runWorkers runs fn(0..n-1) concurrently and returns how long they took together and the
// first error any of them returned.
func runWorkers(n int, fn func(i int) error) (time.Duration, error) {
	// A pointer to the error: atomic.Value panics when the workers' errors have different
	// concrete types.
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i); err != nil {
				firstErr.CompareAndSwap(nil, &err)
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return 0, *e
	}
	return time.Since(start), nil
}

type brokerProc struct {
	cmd     *exec.Cmd
	addr    string
	started time.Time     // when it was exec'd
	startup time.Duration // exec to the first ApiVersions answer
}

func (p *brokerProc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// cpu returns the user+system CPU time of the process (-1 if unknown, or for a nil process).
func (p *brokerProc) cpu() time.Duration {
	if p == nil {
		return -1
	}
	return treeCPU(p.cmd.Process.Pid)
}

// rss returns the current and peak resident set size in bytes, from /proc.
func (p *brokerProc) rss() (cur, peak int64) { return pidRSS(p.cmd.Process.Pid) }

// tputRows are the two table rows of a throughput phase: MB/s against the disk's limit,
// and records/s with how the load was generated.
func tputRows(name string, recs, bytes int64, el time.Duration, disk diskPeaks, how string) []row {
	mbps := float64(bytes) / el.Seconds() / 1e6
	note := ""
	if disk.best > 0 {
		note = fmt.Sprintf("%.0f%% of the disk peak (target >= 70%%); %.0f%% of the plain write+fsync peak",
			100*mbps/disk.best, 100*mbps/disk.plain)
	}
	return []row{
		{name, fmt.Sprintf("%.1f MB/s", mbps), note},
		{name + ", records/s", fmt.Sprintf("%.0f", float64(recs)/el.Seconds()), how},
	}
}
