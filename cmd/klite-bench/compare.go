package main

// The side-by-side run (the default): the same workloads against klite and against Apache
// Kafka 4.0 (the conformance harness's kafka target: run-kafka.sh, KRaft combined mode, here
// with Kafka's own start-script JVM settings), both running for the whole run, each workload
// run on one and then the other (the order alternating from workload to workload), and the
// machine's own limits measured in the same run. Each broker's CPU time and RSS come from its
// process tree in /proc. Results: one table on stdout, and report.md plus chart.svg in
// .cache/bench/<timestamp>/.

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/klite/klite/conformance"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// target is one broker under test.
type target struct {
	name    string // "klite" or "Kafka"
	addr    string
	pid     int    // root of its process tree
	dataDir string // its data files, dropped from the page cache before catch-up reads
	startup time.Duration
	stop    func()
	sampler *rssSampler
	samples []rssSample
}

func (t *target) cpu() time.Duration { return treeCPU(t.pid) }
func (t *target) rss() int64         { cur, _ := treeRSS(t.pid); return cur }

// cmpRow is one line of the side-by-side table; NaN marks a figure not measured.
type cmpRow struct {
	name         string
	unit         string
	v            [2]float64 // klite, Kafka
	higherBetter bool
	note         string
}

// compareRun is the state of one side-by-side run.
type compareRun struct {
	o       options
	root    string
	out     string // results folder
	start   time.Time
	targets [2]*target
	machine []row
	rows    []cmpRow
	phase   int // alternates which target goes first
	marks   []phaseMark
	loadAvg [2]string // at the start and the end
	klOnly  []row     // klite-only phases (--long)
	seqRead float64   // MB/s of the sequential read probe

	pprofAddr   string // klite's --health-addr with --profile
	nextProfile int    // seconds of CPU profile to take of klite in the next both()
}

// phaseMark is when a workload started on a target, for the RSS chart.
type phaseMark struct {
	target int
	at     time.Duration
	name   string
}

func compare(o options) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if o.dataDir == "" {
		base := filepath.Join(root, ".cache", "bench")
		if err := os.MkdirAll(base, 0o755); err != nil {
			return err
		}
		d, err := os.MkdirTemp(base, "run-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dataDir = d
	}
	r := &compareRun{o: o, root: root, start: time.Now()}
	r.out = filepath.Join(root, ".cache", "bench", r.start.UTC().Format("20060102-150405"))
	if err := os.MkdirAll(r.out, 0o755); err != nil {
		return err
	}
	r.loadAvg[0] = loadAvg()
	if err := r.machineLimits(); err != nil {
		return err
	}
	if err := r.startTargets(); err != nil {
		return err
	}
	defer func() {
		for _, t := range r.targets {
			if t != nil {
				if t.sampler != nil {
					t.samples = t.sampler.stop()
					t.sampler = nil
				}
				t.stop()
			}
		}
	}()
	if err := r.workloads(); err != nil {
		return err
	}
	for _, t := range r.targets {
		t.samples = t.sampler.stop()
		t.sampler = nil
	}
	r.loadAvg[1] = loadAvg()
	if o.long && o.growthBatches > 0 {
		g, err := growthRows(o)
		if err != nil {
			return fmt.Errorf("growth phase: %w", err)
		}
		r.klOnly = append(r.klOnly, g...)
	}
	if o.long && o.diskDuration > 0 {
		d, err := diskRows(o)
		if err != nil {
			return fmt.Errorf("disk phase: %w", err)
		}
		r.klOnly = append(r.klOnly, d...)
	}
	if o.s3Duration > 0 {
		s, err := s3Rows(o)
		if err != nil {
			return fmt.Errorf("S3 phase: %w", err)
		}
		r.klOnly = append(r.klOnly, s...)
	}
	md := r.markdown()
	fmt.Print(md)
	if err := os.WriteFile(filepath.Join(r.out, "report.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.out, "chart.svg"), []byte(r.chart()), 0o644); err != nil {
		return err
	}
	if err := r.writeRSS(); err != nil {
		return err
	}
	latest := filepath.Join(root, ".cache", "bench", "latest")
	os.Remove(latest)
	_ = os.Symlink(filepath.Base(r.out), latest)
	fmt.Printf("\nreport: %s\nchart:  %s\n", filepath.Join(r.out, "report.md"), filepath.Join(r.out, "chart.svg"))
	return nil
}

// machineLimits measures the disk (write+fsync, O_DIRECT write+fsync, sequential read) and
// loopback TCP.
func (r *compareRun) machineLimits() error {
	if r.o.skipDisk {
		return nil
	}
	var disk diskPeaks
	for _, mode := range []probeMode{probePlain, probeDirect} {
		probe, err := diskProbe(r.o.dataDir, mode)
		if err != nil {
			return fmt.Errorf("disk probe (%s): %w", mode, err)
		}
		for _, p := range probe {
			disk.note(mode, p.mbps)
		}
	}
	r.machine = append(r.machine, row{"disk write+fsync, best of 256 KiB-16 MiB writes", fmt.Sprintf("%.0f MB/s", disk.best), string(disk.bestMode) + ", median of 3 runs each"})
	read, err := seqReadProbe(r.o.dataDir, r.o.readProbeBytes)
	if err != nil {
		return fmt.Errorf("sequential read probe: %w", err)
	}
	r.seqRead = read
	r.machine = append(r.machine, row{"disk sequential read (file dropped from page cache)", fmt.Sprintf("%.0f MB/s", read), fmt.Sprintf("%d MiB file, 1 MiB reads", r.o.readProbeBytes>>20)})
	lo, err := loopbackProbe(3 * time.Second)
	if err != nil {
		return fmt.Errorf("loopback probe: %w", err)
	}
	r.machine = append(r.machine, row{"loopback TCP, one connection", fmt.Sprintf("%.0f MB/s", lo), "1 MiB writes for 3 s"})
	return nil
}

// startupRuns is how many times klite is started for the start-up figure.
const startupRuns = 5

func (r *compareRun) startTargets() error {
	args := strings.Fields(r.o.kliteArgs)
	if r.o.profile {
		a, err := freeAddr()
		if err != nil {
			return err
		}
		r.pprofAddr = a
		args = append(args, "--health-addr", a)
	}
	// Start-up is the median of startupRuns starts on fresh data directories (the last one
	// is the broker the phases use): one start alone swung from 8 to 41 ms, the first exec
	// of a just-built binary being the slow one.
	var starts []time.Duration
	for i := 1; i < startupRuns; i++ {
		dir := filepath.Join(r.o.dataDir, fmt.Sprintf("klite-start-%d", i))
		p, err := startKlite(r.o.bin, dir, args...)
		if err != nil {
			return err
		}
		starts = append(starts, p.startup)
		p.stop()
		os.RemoveAll(dir)
	}
	kl, err := startKlite(r.o.bin, filepath.Join(r.o.dataDir, "klite"), args...)
	if err != nil {
		return err
	}
	starts = append(starts, kl.startup)
	slices.Sort(starts)
	r.targets[0] = &target{name: "klite", addr: kl.addr, pid: kl.cmd.Process.Pid, dataDir: filepath.Join(r.o.dataDir, "klite"),
		startup: starts[len(starts)/2], stop: kl.stop}
	r.targets[0].sampler = startRSSSampler(r.targets[0].pid, r.start, 250*time.Millisecond)

	// Kafka as bin/kafka-server-start.sh runs it (1 GB heap, G1 with 20 ms pause goal, full
	// JIT), not the harness's quick-start settings.
	os.Setenv("KAFKA_JVM_OPTS", "-Xms1g -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35")
	began := time.Now()
	// The harness needs six consecutive free loopback ports; on a machine busy with other
	// runs (or right after a bench's 10,000 connections) that can fail for a while: retry.
	var kt *conformance.Target
	for attempt := 1; ; attempt++ {
		kt, err = conformance.StartTarget(context.Background(), r.root, "kafka", "")
		if err == nil {
			break
		}
		if attempt == 5 || !strings.Contains(err.Error(), "no free run") {
			return fmt.Errorf("starting Kafka: %w", err)
		}
		time.Sleep(5 * time.Second)
	}
	r.targets[1] = &target{name: "Kafka", addr: kt.Addr, pid: kt.PID(), dataDir: kt.Dir(), startup: time.Since(began), stop: kt.Stop}
	r.targets[1].sampler = startRSSSampler(r.targets[1].pid, r.start, 250*time.Millisecond)
	time.Sleep(2 * time.Second) // let both settle before the idle RSS
	r.add(cmpRow{name: "start-up to first answer", unit: "ms", v: [2]float64{ms(r.targets[0].startup), ms(r.targets[1].startup)},
		note: fmt.Sprintf("exec to the first ApiVersions answer; klite: median of %d starts on fresh data directories (%.1f-%.1f ms); Kafka: one start (run-kafka.sh, includes formatting its storage); target: klite < 20 ms",
			len(starts), ms(starts[0]), ms(starts[len(starts)-1]))})
	r.add(cmpRow{name: "idle RSS", unit: "MB", v: [2]float64{mb(r.targets[0].rss()), mb(r.targets[1].rss())}, note: "target: klite < 15 MB"})
	r.add(cmpRow{name: "idle RSS, anonymous", unit: "MB", v: [2]float64{mb(treeAnonRSS(r.targets[0].pid)), mb(treeAnonRSS(r.targets[1].pid))},
		note: "heap and stacks (RssAnon); the rest of the idle RSS is the executable's pages in use (klite unmaps those start-up touched once it serves)"})
	return nil
}

// both runs fn on each target, in alternating order from one call to the next, and marks
// the phase on the RSS timeline.
func (r *compareRun) both(name string, fn func(i int, t *target) error) error {
	order := []int{0, 1}
	if r.phase%2 == 1 {
		order = []int{1, 0}
	}
	r.phase++
	secs := r.nextProfile
	r.nextProfile = 0
	for _, i := range order {
		fmt.Fprintf(os.Stderr, "klite-bench: %s on %s\n", name, r.targets[i].name)
		r.marks = append(r.marks, phaseMark{i, time.Since(r.start), name})
		var profiled chan struct{}
		if i == 0 && r.pprofAddr != "" && secs > 0 {
			profiled = make(chan struct{})
			go func() {
				defer close(profiled)
				r.profile(name, secs)
			}()
		}
		err := fn(i, r.targets[i])
		if profiled != nil {
			<-profiled
			r.fetchProfile("heap", name+" end", "")
		}
		if err != nil {
			return fmt.Errorf("%s on %s: %w", name, r.targets[i].name, err)
		}
	}
	return nil
}

// profile saves a CPU profile of klite's first secs seconds of a workload into the results
// folder (go tool pprof -top bin/klite <file>).
func (r *compareRun) profile(name string, secs int) {
	r.fetchProfile("cpu", name, fmt.Sprintf("?seconds=%d", secs))
}

// fetchProfile saves one of klite's pprof profiles (cpu, heap) as klite-<kind>-<name>.pprof.
func (r *compareRun) fetchProfile(kind, name, query string) {
	slug := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			return c
		}
		return '-'
	}, strings.ToLower(name))
	path := map[string]string{"cpu": "profile", "heap": "heap"}[kind]
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/%s%s", r.pprofAddr, path, query))
	if err != nil {
		fmt.Fprintln(os.Stderr, "klite-bench: profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(filepath.Join(r.out, "klite-"+kind+"-"+slug+".pprof"))
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, resp.Body)
}

// writeRSS saves both brokers' RSS samples as CSV (seconds, broker, MB).
func (r *compareRun) writeRSS() error {
	var b strings.Builder
	b.WriteString("seconds,broker,rss_mb\n")
	for _, t := range r.targets {
		for _, p := range t.samples {
			fmt.Fprintf(&b, "%.2f,%s,%.1f\n", p.at.Seconds(), t.name, mb(p.rss))
		}
	}
	for _, m := range r.marks {
		fmt.Fprintf(&b, "# %.2f %s starts: %s\n", m.at.Seconds(), r.targets[m.target].name, m.name)
	}
	return os.WriteFile(filepath.Join(r.out, "rss.csv"), []byte(b.String()), 0o644)
}

func (r *compareRun) add(c cmpRow) { r.rows = append(r.rows, c) }

func nan2() [2]float64 { return [2]float64{math.NaN(), math.NaN()} }

func mb(n int64) float64 { return float64(n) / 1e6 }

// cpuPerGB is CPU seconds per 1e9 bytes.
func cpuPerGB(cpu time.Duration, bytes int64) float64 {
	if cpu < 0 || bytes <= 0 {
		return math.NaN()
	}
	return cpu.Seconds() / (float64(bytes) / 1e9)
}

func createTopics(ctx context.Context, addr string, partitions int32, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, t := range topics {
		// A loaded single-node KRaft Kafka can briefly answer with a retriable error: retry.
		var last error
		for attempt := 0; attempt < 20; attempt++ {
			resp, err := adm.CreateTopic(ctx, partitions, 1, nil, t)
			if err == nil {
				err = resp.Err
			}
			if last = err; err == nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if last != nil {
			return fmt.Errorf("create topic %s: %w", t, last)
		}
	}
	// Kafka elects the leaders of a new topic's partitions after answering CreateTopics:
	// wait until the metadata shows every one, so the lean generator's first request does
	// not meet NOT_LEADER_FOR_PARTITION.
	deadline := time.Now().Add(2 * time.Minute)
	for _, t := range topics {
		for {
			md, err := adm.ListTopics(ctx, t)
			ready := err == nil && md[t].Err == nil && len(md[t].Partitions) == int(partitions)
			if ready {
				for _, p := range md[t].Partitions {
					ready = ready && p.Err == nil && p.Leader >= 0
				}
			}
			if ready {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("topic %s: partitions without a leader after 2 minutes (%v)", t, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	return nil
}

func deleteTopic(ctx context.Context, addr, topic string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return
	}
	defer cl.Close()
	_, _ = kadm.NewClient(cl).DeleteTopics(ctx, topic)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
