package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/klite/klite/conformance"
	"github.com/klite/klite/conformance/wire"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cmdWire runs the wire-level differential: scenarios/wire/*.yaml against klite and Kafka.
func cmdWire(args []string) int {
	fs := flag.NewFlagSet("wire", flag.ExitOnError)
	var c common
	c.register(fs)
	dir := fs.String("cases", "scenarios/wire", "directory of wire case files")
	only := fs.String("case", "", "comma-separated case names or globs (default all)")
	known := fs.String("known", "conformance/wire-known-diffs.yaml", "declared klite-vs-Kafka differences")
	kafkaAddr := fs.String("kafka-addr", "", "use an already running Kafka at host:port")
	kliteAddr := fs.String("klite-addr", "", "use an already running klite at host:port")
	timeout := fs.Duration("timeout", 15*time.Second, "per-request time-out")
	jobs := fs.Int("jobs", 4, "variants run at once")
	dump := fs.Bool("dump", false, "print both normalized answers of every compared step")
	verbose := fs.Bool("v", false, "print every variant, not only differences")
	fuzz := fs.Int("fuzz", 0, "fuzz mode: this many random valid requests (kmsg definitions) instead of the corpus")
	seed := fs.Int64("seed", 1, "fuzz mode: random seed (same seed, same requests on both targets)")
	check := fs.Bool("check", false, "only validate the case files and the known-differences file")
	fs.Parse(args)

	cases, err := wire.LoadDir(c.path(*dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	kd, err := wire.LoadKnown(c.path(*known))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", *known, err)
		return 2
	}
	fuzzKnown, err := kd.ForFuzz(cases) // the declarations that also cover fuzzed requests
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", *known, err)
		return 2
	}
	if *check {
		fmt.Printf("%d wire cases OK, %d known differences\n", len(cases), len(kd.List))
		return 0
	}
	want := split(*only)
	cases, ok := selectGlobs(cases, func(c *wire.Case) string { return c.Name }, *only)
	if !ok {
		fmt.Fprintf(os.Stderr, "no wire case matches %q\n", *only)
		return 2
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	start := time.Now()
	logf := func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Since(start).Round(time.Second), fmt.Sprintf(f, a...))
	}
	targets, stop, err := startBoth(ctx, c.root, map[string]string{"kafka": *kafkaAddr, "klite": *kliteAddr}, logf)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer stop()
	r := &wire.Runner{Klite: targets["klite"], Kafka: targets["kafka"], Known: kd, RunID: randID(),
		Timeout: *timeout, Jobs: *jobs, Dump: *dump, Logf: logf}
	if *fuzz > 0 {
		r.Known = fuzzKnown
		return runFuzz(ctx, r, *fuzz, *seed, logf)
	}
	vars := r.Run(ctx, cases)

	count := map[string]int{}
	bad := 0
	for _, v := range vars {
		count[v.Status]++
		label := v.Case
		if v.Version >= 0 {
			label = fmt.Sprintf("%s v%d", v.Case, v.Version)
		}
		switch v.Status {
		case conformance.WireDiffer, conformance.WireError:
			bad++
			fmt.Fprintf(os.Stderr, "%-10s %s (%s)\n    %s\n", strings.ToUpper(v.Status), label, v.File, strings.Join(v.Details, "\n    "))
		default:
			if *verbose {
				fmt.Fprintf(os.Stderr, "%-10s %s %s\n", v.Status, label, strings.Join(v.Reasons, "; "))
			}
		}
	}
	if len(want) == 0 && ctx.Err() == nil {
		for _, u := range kd.Unused() {
			fmt.Fprintf(os.Stderr, "declared difference not seen in this run, remove it from %s? case %s versions %q paths %v (%s)\n",
				*known, u.Case, u.Versions, u.Paths, firstLine(u.Reason))
		}
	}

	// Merge into the results file: variants of the cases run now replace earlier ones.
	prev, err := conformance.LoadWireResults(c.path(c.wire))
	if err != nil || prev == nil {
		prev = &conformance.WireResults{}
	}
	ran := map[string]bool{}
	for _, cs := range cases {
		ran[cs.Name] = true
	}
	var merged []*conformance.WireVariant
	for _, v := range prev.Variants {
		if !ran[v.Case] {
			merged = append(merged, v)
		}
	}
	merged = append(merged, vars...)
	sort.SliceStable(merged, func(i, j int) bool {
		if merged[i].Case != merged[j].Case {
			return merged[i].Case < merged[j].Case
		}
		return merged[i].Version < merged[j].Version
	})
	prev.Variants = merged
	prev.Updated = time.Now().UTC()
	if prev.Targets == nil {
		prev.Targets = map[string]*conformance.TargetInfo{}
	}
	for name, t := range targets {
		prev.Targets[name] = &conformance.TargetInfo{Version: t.Version, APIs: t.APIs, Seen: time.Now().UTC()}
	}
	if err := prev.Save(c.path(c.wire)); err != nil {
		logf("writing %s: %v", c.wire, err)
		return 2
	}
	apis := map[int16]bool{}
	for _, v := range vars {
		apis[v.Key] = true
	}
	fmt.Fprintf(os.Stderr, "%d cases, %d variants over %d APIs in %s: %d match, %d differ, %d known difference, %d klite-only, %d error\nresults: %s\n",
		len(cases), len(vars), len(apis), time.Since(start).Round(time.Second), count[conformance.WireMatch],
		count[conformance.WireDiffer], count[conformance.WireKnown], count[conformance.WireKliteOnly],
		count[conformance.WireError], c.wire)
	var missing []string
	for _, a := range targets["klite"].APIs {
		if !apis[a.Key] && len(want) == 0 {
			missing = append(missing, kmsg.NameForKey(a.Key))
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "APIs klite advertises with no wire case: %s\n", strings.Join(missing, ", "))
	}
	if bad > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

// runFuzz sends random valid requests to both targets and prints each undeclared difference with
// the request's fields (JSON, ready for a corpus case). Nothing is written to the results file.
func runFuzz(ctx context.Context, r *wire.Runner, n int, seed int64, logf func(string, ...any)) int {
	kl, kf := r.Ranges()
	cases := wire.FuzzCases(seed, n, r.RunID, kl, kf)
	byName := map[string]*wire.Case{}
	for _, c := range cases {
		byName[c.Name] = c
	}
	if w := r.Run(ctx, []*wire.Case{wire.FuzzWarmup()}); len(w) != 1 || w[0].Status == conformance.WireError {
		logf("fuzz warm-up failed: %+v", w)
		return 2
	}
	logf("fuzz: %d requests, seed %d", len(cases), seed)
	vars := r.Run(ctx, cases)
	count := map[string]int{}
	perAPI := map[string]int{}
	for _, v := range vars {
		count[v.Status]++
		if v.Status != conformance.WireDiffer && v.Status != conformance.WireError {
			continue
		}
		c := byName[v.Case]
		perAPI[kmsg.NameForKey(c.Steps[0].Key)]++
		req, _ := json.Marshal(c.Steps[0].Request)
		fmt.Fprintf(os.Stderr, "%s %s v%s (%s)\n    request: %s\n    %s\n", strings.ToUpper(v.Status), v.Case,
			c.Steps[0].Version, c.Description, req, strings.Join(v.Details, "\n    "))
	}
	fmt.Fprintf(os.Stderr, "fuzz seed %d: %d requests: %d match, %d differ, %d known difference, %d error; differing by API: %v\n",
		seed, len(vars), count[conformance.WireMatch], count[conformance.WireDiffer], count[conformance.WireKnown],
		count[conformance.WireError], perAPI)
	if count[conformance.WireDiffer]+count[conformance.WireError] > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}
