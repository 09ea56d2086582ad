// Command klite-conformance runs the conformance matrix (scenarios x clients x targets) and
// writes COMPATIBILITY.md.
//
//	klite-conformance run   [--scenario a,b] [--client x,y] [--target klite,kafka] [--jobs 2]
//	                        [--kafka-addr host:port] [--klite-addr host:port] [--no-build]
//	klite-conformance doc   [--results FILE] [--out COMPATIBILITY.md]
//	klite-conformance check (validate scenarios/*.yaml and the known-gaps file)
//	klite-conformance list  (scenarios and clients in the matrix)
//	klite-conformance wire  [--case a,b*] [--kafka-addr host:port] [--klite-addr host:port] [--check]
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/klite/klite/conformance"
)

const usage = `usage: klite-conformance <command> [flags]

commands:
  run     run the matrix (or a filtered part of it); results merge into --results;
          exits 1 on any unexpected failure or klite-vs-kafka difference
  doc     write COMPATIBILITY.md from the results file
  check   validate every scenario spec, the known-gaps file, the wire cases and known differences
  list    list scenarios and clients
  wire    wire-level differential: scenarios/wire/*.yaml sent over raw connections to klite
          and Kafka, answers compared field by field; exits 1 on an undeclared difference
  tools   Kafka's own command-line tools (scenarios/tools/*.yaml) run against klite and Kafka,
          normalized output compared line by line; exits 1 on an undeclared difference

run 'klite-conformance <command> -h' for the command's flags
`

type common struct {
	root, scenarios, results, gaps, out, wire string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.root, "root", ".", "repository root (drivers' commands run here)")
	fs.StringVar(&c.scenarios, "scenarios", "scenarios", "directory of scenario specs")
	fs.StringVar(&c.results, "results", "conformance/results/latest.json", "results file (merged into by run)")
	fs.StringVar(&c.gaps, "gaps", "conformance/known-gaps.yaml", "known gaps file")
	fs.StringVar(&c.out, "out", "COMPATIBILITY.md", "document written by doc (and by a full run)")
	fs.StringVar(&c.wire, "wire-results", "conformance/results/wire.json", "wire differential results (written by wire, read by doc)")
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var code int
	switch os.Args[1] {
	case "run":
		code = cmdRun(os.Args[2:])
	case "doc":
		code = cmdDoc(os.Args[2:])
	case "check":
		code = cmdCheck(os.Args[2:])
	case "list":
		code = cmdList(os.Args[2:])
	case "wire":
		code = cmdWire(os.Args[2:])
	case "tools":
		code = cmdTools(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n%s", os.Args[1], usage)
		code = 2
	}
	os.Exit(code)
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func cmdCheck(args []string) int {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	var c common
	c.register(fs)
	fs.Parse(args)
	specs, err := conformance.LoadDir(c.path(c.scenarios))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := conformance.LoadGaps(c.path(c.gaps)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%d scenarios OK\n", len(specs))
	if code := cmdWire([]string{"--root", c.root, "--check"}); code != 0 {
		return code
	}
	if code := cmdTools([]string{"--root", c.root, "--check"}); code != 0 {
		return code
	}
	return 0
}

func (c *common) path(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return c.root + "/" + p
}

func cmdList(args []string) int {
	fs := flag.NewFlagSet("list", flag.ExitOnError)
	var c common
	c.register(fs)
	fs.Parse(args)
	specs, err := conformance.LoadDir(c.path(c.scenarios))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ms, err := conformance.LoadManifests(c.root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("scenarios:")
	for _, s := range specs {
		fmt.Printf("  %-24s %s\n", s.Name, firstLine(s.Description))
	}
	fmt.Println("clients:")
	for _, m := range ms {
		fmt.Printf("  %s\n", m.Name)
	}
	fmt.Printf("targets:\n  %s\n", strings.Join(conformance.TargetNames, "\n  "))
	return 0
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func cmdDoc(args []string) int {
	fs := flag.NewFlagSet("doc", flag.ExitOnError)
	var c common
	c.register(fs)
	fs.Parse(args)
	if err := writeDoc(&c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", c.out)
	return 0
}

func writeDoc(c *common) error {
	r, err := conformance.LoadResults(c.path(c.results))
	if err != nil {
		return err
	}
	if len(r.Cells) == 0 {
		return fmt.Errorf("no results in %s: run `make conformance` first", c.results)
	}
	gaps, err := conformance.LoadGaps(c.path(c.gaps))
	if err != nil {
		return err
	}
	r.ReapplyGaps(gaps)
	r.ComputeDiffs(gaps)
	if r.Wire, err = conformance.LoadWireResults(c.path(c.wire)); err != nil {
		return err
	}
	if r.KafkaTools, err = conformance.LoadToolsResults(c.path("conformance/results/tools.json")); err != nil {
		return err
	}
	return os.WriteFile(c.path(c.out), []byte(conformance.RenderDoc(r, gaps)), 0o644)
}

type job struct {
	spec   *conformance.Spec
	client conformance.Manifest
	target string
}

func cmdRun(args []string) int {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var c common
	c.register(fs)
	scen := fs.String("scenario", "", "comma-separated scenario names (default all)")
	cli := fs.String("client", "", "comma-separated client names (default every clients/*/driver.json)")
	tgt := fs.String("target", "", "comma-separated targets: klite, kafka (default both)")
	jobs := fs.Int("jobs", 2, "cells run in parallel")
	kafkaAddr := fs.String("kafka-addr", "", "use an already running Kafka at host:port instead of starting one")
	kliteAddr := fs.String("klite-addr", "", "use an already running klite at host:port instead of starting bin/klite")
	noBuild := fs.Bool("no-build", false, "do not run the drivers' build commands")
	reuse := fs.Bool("reuse-drivers", true, "keep driver processes between cells (drivers that implement the reset op)")
	doc := fs.Bool("doc", true, "rewrite COMPATIBILITY.md after an unfiltered run")
	fs.Parse(args)
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "unexpected arguments %v\n", fs.Args())
		return 2
	}

	specs, err := conformance.LoadDir(c.path(c.scenarios))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	gaps, err := conformance.LoadGaps(c.path(c.gaps))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	manifests, err := conformance.LoadManifests(c.root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	wantS, wantC, wantT := split(*scen), split(*cli), split(*tgt)
	if len(wantT) == 0 {
		wantT = conformance.TargetNames
	}
	for _, t := range wantT {
		if !contains(conformance.TargetNames, t) {
			fmt.Fprintf(os.Stderr, "unknown target %q (known: %s)\n", t, strings.Join(conformance.TargetNames, ", "))
			return 2
		}
	}
	selSpecs, unknown := selectNamed(specs, wantS, func(s *conformance.Spec) string { return s.Name })
	if unknown != "" {
		fmt.Fprintf(os.Stderr, "unknown scenario %q (see `klite-conformance list`)\n", unknown)
		return 2
	}
	selClients, unknown := selectNamed(manifests, wantC, func(m conformance.Manifest) string { return m.Name })
	if unknown != "" {
		fmt.Fprintf(os.Stderr, "unknown client %q: no clients/%s/driver.json\n", unknown, unknown)
		return 2
	}
	if len(selClients) == 0 {
		fmt.Fprintln(os.Stderr, "no clients: no clients/*/driver.json found")
		return 2
	}
	filtered := len(wantS) > 0 || len(wantC) > 0 || len(wantT) < len(conformance.TargetNames)

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	start := time.Now()
	logf := func(f string, a ...any) {
		el := time.Since(start).Round(time.Second)
		fmt.Fprintf(os.Stderr, "[%s] %s\n", el, fmt.Sprintf(f, a...))
	}

	// Targets start while the drivers build.
	targets := map[string]*conformance.Target{}
	targetErr := map[string]error{}
	var tmu sync.Mutex
	var twg sync.WaitGroup
	for _, t := range wantT {
		twg.Add(1)
		go func() {
			defer twg.Done()
			addr := map[string]string{"kafka": *kafkaAddr, "klite": *kliteAddr}[t]
			logf("starting target %s", t)
			tg, err := conformance.StartTarget(ctx, c.root, t, addr)
			tmu.Lock()
			defer tmu.Unlock()
			if err != nil {
				targetErr[t] = err
				logf("target %s failed to start: %v", t, err)
				return
			}
			targets[t] = tg
			logf("target %s up at %s (%s, %d APIs)", t, tg.Addr, tg.Version, len(tg.APIs))
		}()
	}
	defer func() {
		for _, tg := range targets {
			tg.Stop()
		}
	}()
	buildErr := map[string]error{}
	if !*noBuild {
		for _, m := range selClients {
			t0 := time.Now()
			if err := conformance.BuildDriver(ctx, c.root, m); err != nil {
				buildErr[m.Name] = err
				logf("driver %s: build failed:\n%v", m.Name, err)
			} else {
				logf("driver %s built (%s)", m.Name, time.Since(t0).Round(100*time.Millisecond))
			}
		}
	}
	twg.Wait()

	var queue []job
	for _, s := range selSpecs {
		for _, m := range selClients {
			for _, t := range wantT {
				queue = append(queue, job{s, m, t})
			}
		}
	}
	runID := randID()
	runner := &conformance.Runner{Root: c.root, RunID: runID}
	if *reuse {
		runner.Pool = conformance.NewDriverPool(4)
		defer runner.Pool.Close()
	}
	results := make([]*conformance.CellResult, len(queue))
	var next, done int
	var qmu sync.Mutex
	var wg sync.WaitGroup
	n := *jobs
	if n < 1 {
		n = 1
	}
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				qmu.Lock()
				if next >= len(queue) || ctx.Err() != nil {
					qmu.Unlock()
					return
				}
				i := next
				next++
				qmu.Unlock()
				j := queue[i]
				label := fmt.Sprintf("%s / %s / %s", j.spec.Name, j.client.Name, j.target)
				logf("[%d/%d] run  %s", i+1, len(queue), label)
				var res *conformance.CellResult
				switch {
				case buildErr[j.client.Name] != nil:
					res = failed(j, "driver build failed: "+buildErr[j.client.Name].Error())
				case targetErr[j.target] != nil:
					res = failed(j, "target did not start: "+targetErr[j.target].Error())
				default:
					res = runner.RunCell(ctx, j.spec, j.client, targets[j.target])
				}
				conformance.ApplyGaps([]*conformance.CellResult{res}, gaps)
				qmu.Lock()
				results[i] = res
				done++
				d := done
				qmu.Unlock()
				status := res.Status
				if res.GapPassed {
					status += " (declared known gap passes: remove it?)"
				}
				logf("[%d/%d] %-4s %s (%.1fs) [%d done]", i+1, len(queue), status, label, float64(res.DurationMs)/1000, d)
				if res.Status == conformance.StatusFail {
					fmt.Fprintf(os.Stderr, "    %s\n", strings.ReplaceAll(res.Message, "\n", "\n    "))
					if res.Stderr != "" {
						fmt.Fprintf(os.Stderr, "    %s\n", strings.ReplaceAll(strings.TrimRight(res.Stderr, "\n"), "\n", "\n    "))
					}
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		logf("interrupted")
	}

	// Merge into the results file and compare targets.
	rf, err := conformance.LoadResults(c.path(c.results))
	if err != nil {
		logf("cannot read previous results (%v); starting afresh", err)
		rf, _ = conformance.LoadResults("/nonexistent")
	}
	var ran []*conformance.CellResult
	for _, r := range results {
		if r != nil {
			ran = append(ran, r)
			if r.LibraryVersion != "" {
				rf.Clients[r.Client] = r.LibraryVersion
			}
		}
	}
	rf.Merge(ran)
	rf.Updated = time.Now().UTC()
	for name, tg := range targets {
		rf.Targets[name] = &conformance.TargetInfo{Version: tg.Version, APIs: tg.APIs, Seen: time.Now().UTC()}
	}
	rf.Scenarios = rf.Scenarios[:0]
	for _, s := range specs {
		rf.Scenarios = append(rf.Scenarios, conformance.ScenarioInfo{Name: s.Name, Description: firstLine(s.Description)})
	}
	rf.Tools["go (harness)"] = runtime.Version()
	if v := toolVersion("java", "-version"); v != "" {
		rf.Tools["java"] = v
	}
	rf.ReapplyGaps(gaps)
	rf.ComputeDiffs(gaps)
	if err := rf.Save(c.path(c.results)); err != nil {
		logf("writing results: %v", err)
		return 2
	}

	// Summary.
	count := map[string]int{}
	bad := 0
	for _, r := range ran {
		count[r.Status]++
		if r.Status == conformance.StatusFail {
			bad++
		}
	}
	touched := map[string]bool{}
	for _, r := range ran {
		touched[r.Scenario+"\x00"+r.Client] = true
	}
	var diffLines []string
	diffCount := map[string]int{}
	for _, d := range rf.Diffs {
		if !touched[d.Scenario+"\x00"+d.Client] {
			continue
		}
		diffCount[d.Status]++
		if d.Status == conformance.DiffDiffer {
			bad++
			diffLines = append(diffLines, fmt.Sprintf("  %s / %s: klite differs from kafka:\n    %s",
				d.Scenario, d.Client, strings.Join(d.Details, "\n    ")))
		}
	}
	for _, r := range ran {
		if r.GapPassed {
			d := findDiff(rf, r.Scenario, r.Client)
			if d == nil || d.Status != conformance.DiffKnownGap {
				fmt.Fprintf(os.Stderr, "known gap passes now, remove it from %s: %s / %s / %s (%s)\n",
					c.gaps, r.Scenario, r.Client, r.Target, r.GapReason)
			}
		}
	}
	if len(diffLines) > 0 {
		fmt.Fprintf(os.Stderr, "differences:\n%s\n", strings.Join(diffLines, "\n"))
	}
	fmt.Fprintf(os.Stderr, "%d cells in %s: %d pass, %d fail, %d n/a, %d known gap; differential: %d match, %d differ, %d known gap, %d not comparable\n",
		len(ran), time.Since(start).Round(time.Second), count[conformance.StatusPass], count[conformance.StatusFail],
		count[conformance.StatusNA], count[conformance.StatusKnownGap], diffCount[conformance.DiffMatch],
		diffCount[conformance.DiffDiffer], diffCount[conformance.DiffKnownGap], diffCount[conformance.DiffNone])
	// Repeat the failures last, where a log's tail shows them.
	for _, r := range ran {
		if r.Status == conformance.StatusFail {
			fmt.Fprintf(os.Stderr, "FAILED %s / %s / %s: %s\n", r.Scenario, r.Client, r.Target, clip(r.Message, 600))
			if r.Stderr != "" {
				fmt.Fprintf(os.Stderr, "  stderr tail: %s\n", clipTail(r.Stderr, 800))
			}
		}
	}
	fmt.Fprintf(os.Stderr, "results: %s\n", c.results)
	if *doc && !filtered {
		if err := writeDoc(&c); err != nil {
			logf("writing %s: %v", c.out, err)
		} else {
			fmt.Fprintf(os.Stderr, "wrote %s\n", c.out)
		}
	}
	if ctx.Err() != nil || len(ran) < len(queue) {
		return 1
	}
	if bad > 0 {
		return 1
	}
	return 0
}

func findDiff(r *conformance.Results, scenario, client string) *conformance.DiffResult {
	for _, d := range r.Diffs {
		if d.Scenario == scenario && d.Client == client {
			return d
		}
	}
	return nil
}

func failed(j job, msg string) *conformance.CellResult {
	return &conformance.CellResult{Scenario: j.spec.Name, Client: j.client.Name, Target: j.target,
		Status: conformance.StatusFail, Message: msg, Started: time.Now().UTC(), SpecDigest: j.spec.Digest}
}

func randID() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func toolVersion(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return ""
	}
	return firstLine(string(out))
}

// selectNamed keeps the items whose name is wanted (all of them when want is empty) and returns
// the first wanted name that no item has.
func selectNamed[T any](items []T, want []string, name func(T) string) (sel []T, unknown string) {
	have := map[string]bool{}
	for _, it := range items {
		have[name(it)] = true
		if len(want) == 0 || contains(want, name(it)) {
			sel = append(sel, it)
		}
	}
	for _, n := range want {
		if !have[n] {
			return nil, n
		}
	}
	return sel, ""
}

// clip shortens s to at most n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + " [...]"
}

// clipTail keeps the last n bytes of s, on one line.
func clipTail(s string, n int) string {
	if len(s) > n {
		s = "[...] " + s[len(s)-n:]
	}
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", " | ")
}
