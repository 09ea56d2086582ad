// Command klite-chaos runs the Jepsen-style workloads of conformance/chaos against the real
// klite binary under faults (SIGKILL, SIGSTOP, a full file system), or against Apache Kafka 4.0 without faults as
// a baseline for the checker, and prints a summary table. It exits 1 when any promise broke.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/klite/klite/conformance"
	"github.com/klite/klite/conformance/chaos"
)

func main() {
	var (
		cycles   = flag.Int("cycles", 10, "faults per workload and fault kind")
		duration = flag.Duration("duration", 5*time.Minute, "upper bound of each workload's run (faults stop early when reached)")
		minGap   = flag.Duration("min-gap", 200*time.Millisecond, "shortest time between two faults")
		maxGap   = flag.Duration("max-gap", 1200*time.Millisecond, "longest time between two faults")
		pause    = flag.Duration("pause", 4*time.Second, "SIGSTOP length (longer than the clients' 3 s produce and 2.5 s fetch time-outs)")
		faults   = flag.String("faults", "sigkill,sigstop,recovery-kill,disk-full", "comma-separated faults: sigkill, sigstop, recovery-kill, disk-full, fsync-error, write-error, torn-tail, corrupt, and with --storage s3 s3-down, s3-slow, s3-errors (only with --target klite)")
		works    = flag.String("workloads", strings.Join(chaos.Workloads, ","), "comma-separated workloads")
		target   = flag.String("target", "klite", "klite (faults applied) or kafka (baseline, no faults)")
		bin      = flag.String("bin", "bin/klite", "klite binary")
		root     = flag.String("root", ".", "repository root (for the Kafka jars)")
		seed     = flag.Int64("seed", time.Now().UnixNano(), "random seed")
		valBytes = flag.Int("value-bytes", 0, "padding bytes after each unique value")
		kargs    = flag.String("klite-args", "", "more klite flags, space-separated (e.g. \"--wal-segment-bytes 1048576\" to rotate segments often)")
		storage  = flag.String("storage", "local", "klite's storage mode: local; retention-compaction (1 s retention checks and cleaner backoff, so retention and compaction act during the run); s3 (the S3 tier against moto behind a fault proxy: `make moto`; enables the s3-down, s3-slow and s3-errors faults)")
	)
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ok, err := run(ctx, *target, *bin, *root, *storage, split(*works), split(*faults), strings.Fields(*kargs), chaos.Config{
		Cycles: *cycles, MinGap: *minGap, MaxGap: *maxGap, Pause: *pause, Seed: *seed, ValueBytes: *valBytes, Deadline: *duration,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "klite-chaos:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(ctx context.Context, target, bin, root, storage string, works, faults, kargs []string, base chaos.Config) (bool, error) {
	var results []chaos.Result
	fmt.Printf("seed %d, storage %s\n", base.Seed, storage)
	var s3 *chaos.S3Env
	switch storage {
	case "local":
	case "retention-compaction":
		kargs = append([]string{"--retention-check-interval", "1s", "--compaction-backoff", "1s"}, kargs...)
	case "s3":
		if target == "klite" {
			var err error
			if s3, err = chaos.StartS3("klite-chaos"); err != nil {
				return false, err
			}
			defer s3.Close()
		}
	default:
		return false, fmt.Errorf("unknown storage mode %q (local, retention-compaction or s3)", storage)
	}
	for _, f := range faults {
		if (f == chaos.S3Down || f == chaos.S3Slow || f == chaos.S3Errors) && s3 == nil {
			return false, fmt.Errorf("fault %s needs --storage s3", f)
		}
	}
	switch target {
	case "kafka":
		abs, err := filepath.Abs(root)
		if err != nil {
			return false, err
		}
		t, err := conformance.StartTarget(ctx, abs, "kafka", "")
		if err != nil {
			return false, err
		}
		defer t.Stop()
		for _, w := range works {
			c := base
			c.Workload, c.Fault, c.Addr = w, chaos.NoFault, t.Addr
			results = append(results, report(chaos.Run(ctx, c)))
		}
	case "klite":
		for _, f := range faults {
			for _, w := range works {
				// A fresh broker and data directory per run: one run's damage cannot hide in another's.
				dir, err := os.MkdirTemp("", "klite-chaos-")
				if err != nil {
					return false, err
				}
				kargs := kargs
				if s3 != nil { // a prefix of its own per run, as the data directory
					kargs = append(s3.Flags(filepath.Base(dir)), kargs...)
				}
				var b *chaos.Broker
				if f == chaos.DiskFull {
					// A 64 MiB tmpfs of klite's own, filled to the last byte at each cycle.
					b, err = chaos.StartBrokerOnTmpfs(bin, dir, 64, kargs...)
					if errors.Is(err, chaos.ErrNoTmpfs) {
						fmt.Printf("%s/%s: skipped: %v\n", w, f, err)
						os.RemoveAll(dir)
						continue
					}
				} else if f == chaos.FsyncError || f == chaos.WriteError {
					b, err = chaos.StartBroker(bin, dir, append(append([]string(nil), kargs...), chaos.StorageFaultFlags...)...)
				} else if f == chaos.Corrupt {
					b, err = chaos.StartBroker(bin, dir, append(append([]string(nil), chaos.DamageFlags...), kargs...)...)
				} else {
					b, err = chaos.StartBroker(bin, dir, kargs...)
				}
				if err != nil {
					os.RemoveAll(dir)
					return false, err
				}
				c := base
				c.Workload, c.Fault, c.Addr, c.Broker, c.S3 = w, f, b.Addr, b, s3
				res := report(chaos.Run(ctx, c))
				results = append(results, res)
				b.Stop()
				if s3 != nil {
					n, err := s3.Objects(filepath.Base(dir) + "/")
					fmt.Printf("%s/%s: %d objects in S3 under its prefix, %d requests faulted by the proxy so far\n", w, f, n, s3.Injected())
					if err == nil && n < 2 && res.Err == nil {
						res.Err = fmt.Errorf("S3 mode but %d objects in S3 (the lease alone): nothing was flushed", n)
						results[len(results)-1] = res
					}
				}
				os.RemoveAll(dir)
			}
		}
	default:
		return false, fmt.Errorf("unknown target %q (klite or kafka)", target)
	}
	fmt.Println()
	chaos.PrintTable(os.Stdout, target, results)
	for _, r := range results {
		if r.Err != nil || !r.Report.OK() {
			return false, nil
		}
	}
	return true, nil
}

func report(r chaos.Result) chaos.Result {
	fmt.Printf("%s/%s: %d cycles, %d acknowledged, %d read, %d group commits, %d group fetches, %d refused with KAFKA_STORAGE_ERROR, %d anomalies, %v\n",
		r.Workload, r.Fault, r.Cycles, r.Report.Acked, r.Report.Read, r.Report.GroupCommits, r.Report.GroupFetches,
		r.StorageErrors, len(r.Report.Anomalies), r.Took.Round(time.Second))
	if r.Err != nil {
		fmt.Printf("%s/%s: error: %v\n", r.Workload, r.Fault, r.Err)
	}
	if r.Fault == chaos.Corrupt {
		fmt.Printf("%s/%s: after the damage klite served %d times and refused %d times (naming the file; then restored); served/refused by kind: %s\n",
			r.Workload, r.Fault, r.Damage.Served, r.Damage.Refused, r.Damage)
	}
	return r
}
