package main

// The metrics overhead phase (--metrics-overhead N): the cost of klite's Prometheus
// instrumentation on the produce path, measured as issue 17 asks ("the bench's throughput
// with metrics on stays within 3% of metrics off, measured in the same run"). Each round
// starts klite twice on fresh data directories, once with metrics on (/metrics scraped every
// second, harder than a usual Prometheus) and once with --metrics=false, in alternating order
// so that drift in the machine's load falls on both, and runs the same lean-generator produce
// load (raw.go) against each. It reports each round's throughputs and their ratio, and the
// median, mean and spread of the ratios; and the same for the broker's CPU time per GB
// produced, which on a shared machine swings far less with the neighbours' load than the
// throughput does (metrics cost CPU on the produce path, so a cost shows there first).
//
// The second run of a round tends to be slower (the first one's data is still being written
// back and deleted), so after each run the phase syncs and lets the disk settle, and it also
// reports the geometric mean of the ratios: over an even number of rounds each mode runs
// first equally often and a position effect cancels out of it.

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func metricsOverhead(o options) error {
	base := filepath.Join(".cache", "bench")
	if o.dataDir != "" {
		base = o.dataDir
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	if o.rawConns <= 0 {
		return fmt.Errorf("--metrics-overhead needs the lean generator (--raw-conns > 0)")
	}
	var rows []row
	var ratios, ons, offs, cpuRatios []float64
	for r := 0; r < o.metricsRounds; r++ {
		modes := []bool{true, false}
		if r%2 == 1 {
			modes = []bool{false, true}
		}
		got, cpu := map[bool]float64{}, map[bool]float64{}
		for _, on := range modes {
			mbps, cpuGB, scrapes, err := overheadRun(o, base, on)
			if err != nil {
				return fmt.Errorf("round %d, metrics %v: %w", r+1, on, err)
			}
			got[on], cpu[on] = mbps, cpuGB
			note := "--metrics=false"
			if on {
				note = fmt.Sprintf("metrics on, %d scrapes", scrapes)
			}
			rows = append(rows, row{fmt.Sprintf("round %d, metrics %s", r+1, onOff(on)), fmt.Sprintf("%.1f MB/s, %.3f s CPU/GB", mbps, cpuGB), note})
		}
		ratio := got[true] / got[false]
		ratios, ons, offs = append(ratios, ratio), append(ons, got[true]), append(offs, got[false])
		cr := cpu[true] / cpu[false]
		cpuRatios = append(cpuRatios, cr)
		rows = append(rows, row{fmt.Sprintf("round %d, on / off", r+1), fmt.Sprintf("%.3f MB/s, %.3f CPU/GB", ratio, cr), ""})
	}
	gm, cgm := geoMean(ratios), geoMean(cpuRatios)
	cmean, csd := meanStd(cpuRatios)
	clo, chi := minMax(cpuRatios)
	cmed := medianOf(cpuRatios)
	mean, sd := meanStd(ratios)
	lo, hi := minMax(ratios)
	med := medianOf(ratios)
	rows = append(rows,
		row{"metrics on, median", fmt.Sprintf("%.1f MB/s", medianOf(ons)), fmt.Sprintf("%d rounds of %s", o.metricsRounds, o.duration)},
		row{"metrics off, median", fmt.Sprintf("%.1f MB/s", medianOf(offs)), ""},
		row{"on / off, median of rounds", fmt.Sprintf("%.3f", med), fmt.Sprintf("overhead %.1f%% (target <= 3%%)", (1-med)*100)},
		row{"on / off, mean ± sd", fmt.Sprintf("%.3f ± %.3f", mean, sd), fmt.Sprintf("range %.3f .. %.3f", lo, hi)},
		row{"on / off, geometric mean", fmt.Sprintf("%.3f", gm), fmt.Sprintf("overhead %.1f%%; order effects cancel over an even number of rounds", (1-gm)*100)},
		row{"CPU per GB on / off, geometric mean", fmt.Sprintf("%.3f", cgm), fmt.Sprintf("metrics cost %.1f%% more broker CPU per GB", (cgm-1)*100)},
		row{"CPU per GB on / off, median of rounds", fmt.Sprintf("%.3f", cmed), fmt.Sprintf("metrics cost %.1f%% more broker CPU per GB", (cmed-1)*100)},
		row{"CPU per GB on / off, mean ± sd", fmt.Sprintf("%.3f ± %.3f", cmean, csd), fmt.Sprintf("range %.3f .. %.3f", clo, chi)},
	)
	printTable(rows)
	return nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// overheadRun starts klite with metrics on or off, produces with the lean generator for
// o.duration and returns the throughput (MB/s of records), the broker's CPU seconds per GB
// produced and the scrapes made meanwhile.
func overheadRun(o options, base string, on bool) (mbps, cpuGB float64, scrapes int, err error) {
	dir, err := os.MkdirTemp(base, "overhead-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer func() { // the next run starts on a settled disk
		os.RemoveAll(dir)
		syscall.Sync()
		time.Sleep(2 * time.Second)
	}()
	health, err := freeAddr()
	if err != nil {
		return 0, 0, 0, err
	}
	args := append(strings.Fields(o.kliteArgs), "--health-addr", health)
	if !on {
		args = append(args, "--metrics=false")
	}
	proc, err := startKlite(o.bin, filepath.Join(dir, "klite"), args...)
	if err != nil {
		return 0, 0, 0, err
	}
	defer proc.stop()
	ctx := context.Background()
	admin, err := kgo.NewClient(kgo.SeedBrokers(proc.addr))
	if err != nil {
		return 0, 0, 0, err
	}
	defer admin.Close()
	topic := "bench-overhead"
	resp, err := kadm.NewClient(admin).CreateTopic(ctx, int32(o.partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("create topic: %w", err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if on && o.scrapeEvery > 0 {
		wg.Add(1)
		go func() { // a scraper, every --metrics-scrape-interval
			defer wg.Done()
			t := time.NewTicker(o.scrapeEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if r, err := http.Get("http://" + health + "/metrics"); err == nil {
						io.Copy(io.Discard, r.Body)
						r.Body.Close()
						if r.StatusCode == 200 {
							scrapes++
						}
					}
				}
			}
		}()
	}
	cpu0 := proc.cpu()
	_, bytes, _, el, err := rawThroughput(ctx, proc.addr, topic, o, "none")
	cpu1 := proc.cpu()
	close(stop)
	wg.Wait()
	if err != nil {
		return 0, 0, 0, err
	}
	if on && o.scrapeEvery > 0 && scrapes == 0 && el > 2*o.scrapeEvery {
		return 0, 0, 0, fmt.Errorf("metrics on, but /metrics on %s never answered", health)
	}
	if bytes == 0 || cpu0 < 0 || cpu1 < 0 {
		return 0, 0, 0, fmt.Errorf("nothing produced, or no CPU time readable")
	}
	return float64(bytes) / el.Seconds() / 1e6, (cpu1 - cpu0).Seconds() / (float64(bytes) / 1e9), scrapes, nil
}

func geoMean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var l float64
	for _, x := range v {
		l += math.Log(x)
	}
	return math.Exp(l / float64(len(v)))
}

func medianOf(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func meanStd(v []float64) (mean, sd float64) {
	if len(v) == 0 {
		return 0, 0
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		sd += (x - mean) * (x - mean)
	}
	if len(v) > 1 {
		sd = math.Sqrt(sd / float64(len(v)-1))
	}
	return mean, sd
}

func minMax(v []float64) (lo, hi float64) {
	if len(v) == 0 {
		return 0, 0
	}
	lo, hi = v[0], v[0]
	for _, x := range v[1:] {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}
