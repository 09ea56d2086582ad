package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/klite/klite/conformance"
	"github.com/klite/klite/conformance/kafkatools"
)

// cmdTools runs Kafka's own command-line tools (scenarios/tools/*.yaml) against klite and Kafka
// and compares their normalized output.
func cmdTools(args []string) int {
	fs := flag.NewFlagSet("tools", flag.ExitOnError)
	var c common
	c.register(fs)
	dir := fs.String("cases", "scenarios/tools", "directory of tool case files")
	only := fs.String("case", "", "comma-separated case names or globs (default all)")
	known := fs.String("known", "conformance/tools-known-diffs.yaml", "declared klite-vs-Kafka differences")
	results := fs.String("tools-results", "conformance/results/tools.json", "results file")
	jobs := fs.Int("jobs", 2, "cases run at once (each runs a JVM per step on both targets)")
	timeout := fs.Duration("timeout", 90*time.Second, "per tool run")
	dump := fs.Bool("dump", false, "print both normalized outputs of every compared step")
	check := fs.Bool("check", false, "only validate the case files and the known-differences file")
	fs.Parse(args)

	cases, err := kafkatools.LoadDir(c.path(*dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	kd, err := kafkatools.LoadKnown(c.path(*known))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", *known, err)
		return 2
	}
	if *check {
		fmt.Printf("%d tool cases OK, %d known differences\n", len(cases), len(kd))
		return 0
	}
	cases, ok := selectGlobs(cases, func(c *kafkatools.Case) string { return c.Name }, *only)
	if !ok {
		fmt.Fprintf(os.Stderr, "no tool case matches %q\n", *only)
		return 2
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	start := time.Now()
	logf := func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Since(start).Round(time.Second), fmt.Sprintf(f, a...))
	}
	targets, stop, err := startBoth(ctx, c.root, nil, logf)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer stop()
	r := &kafkatools.Runner{Root: c.root, Klite: targets["klite"], Kafka: targets["kafka"], Known: kd,
		RunID: randID(), Jobs: *jobs, Timeout: *timeout, Dump: *dump, Logf: logf}
	res := r.Run(ctx, cases)

	count := map[string]int{}
	bad := 0
	for _, cs := range res {
		count[cs.Status]++
		if cs.Status == conformance.ToolsDiffer || cs.Status == conformance.ToolsError {
			bad++
			fmt.Fprintf(os.Stderr, "%-10s %s (%s)\n    %s\n", strings.ToUpper(cs.Status), cs.Case, cs.File,
				strings.ReplaceAll(strings.Join(cs.Details, "\n"), "\n", "\n    "))
		}
	}

	// Merge: cases run now replace earlier results of the same name.
	prev, err := conformance.LoadToolsResults(c.path(*results))
	if err != nil || prev == nil {
		prev = &conformance.ToolsResults{}
	}
	ran := map[string]bool{}
	for _, cs := range cases {
		ran[cs.Name] = true
	}
	var merged []*conformance.ToolsCase
	for _, cs := range prev.Cases {
		if !ran[cs.Case] {
			merged = append(merged, cs)
		}
	}
	merged = append(merged, res...)
	sort.SliceStable(merged, func(i, j int) bool { return merged[i].Case < merged[j].Case })
	prev.Cases, prev.Updated = merged, time.Now().UTC()
	if prev.Targets == nil {
		prev.Targets = map[string]*conformance.TargetInfo{}
	}
	for name, t := range targets {
		prev.Targets[name] = &conformance.TargetInfo{Version: t.Version, Seen: time.Now().UTC()}
	}
	if err := prev.Save(c.path(*results)); err != nil {
		logf("writing %s: %v", *results, err)
		return 2
	}
	fmt.Fprintf(os.Stderr, "%d tool cases in %s: %d match, %d differ, %d known difference, %d error\nresults: %s\n",
		len(res), time.Since(start).Round(time.Second), count[conformance.ToolsMatch], count[conformance.ToolsDiffer],
		count[conformance.ToolsKnown], count[conformance.ToolsError], *results)
	if bad > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}
