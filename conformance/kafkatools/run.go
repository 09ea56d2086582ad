package kafkatools

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klite/klite/conformance"
)

// Runner runs cases against both targets.
type Runner struct {
	Root         string // repository root (jars in .cache/kafka/libs)
	Klite, Kafka *conformance.Target
	Known        []Known
	RunID        string
	Jobs         int
	Timeout      time.Duration // per tool run
	Dump         bool
	Logf         func(string, ...any)
}

// output is one tool run's result on one target.
type output struct {
	lines []string
	exit  int
	err   error // could not run (or a setup step failed)
	raw   string
}

// Run runs every case and returns one result per case, in case order.
func (r *Runner) Run(ctx context.Context, cases []*Case) []*conformance.ToolsCase {
	out := make([]*conformance.ToolsCase, len(cases))
	sem := make(chan struct{}, max(1, r.Jobs))
	var wg sync.WaitGroup
	for i, c := range cases {
		if c.Exclusive {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = r.runCase(ctx, c)
			r.Logf("%-10s %s", out[i].Status, c.Name)
		}()
	}
	wg.Wait()
	for i, c := range cases { // alone, after the others
		if c.Exclusive {
			out[i] = r.runCase(ctx, c)
			r.Logf("%-10s %s", out[i].Status, c.Name)
		}
	}
	return out
}

func (r *Runner) runCase(ctx context.Context, c *Case) *conformance.ToolsCase {
	res := &conformance.ToolsCase{Case: c.Name, File: c.File, Description: c.Description, Status: conformance.ToolsMatch}
	seenTool := map[string]bool{}
	for _, s := range c.Steps {
		if s.Compared() {
			res.Compared++
			if !seenTool[s.Tool] {
				seenTool[s.Tool] = true
				res.Tools = append(res.Tools, s.Tool)
			}
		}
	}
	sort.Strings(res.Tools)
	prefix := fmt.Sprintf("tools-%s-%s-", r.RunID, c.Name)
	var kl, kf []output
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); kl = r.runOn(ctx, r.Klite, c, prefix) }()
	go func() { defer wg.Done(); kf = r.runOn(ctx, r.Kafka, c, prefix) }()
	wg.Wait()

	for i, s := range c.Steps {
		a, b := kl[i], kf[i]
		if a.err != nil || b.err != nil {
			res.Status = conformance.ToolsError
			for name, o := range map[string]output{"klite": a, "kafka": b} {
				if o.err != nil {
					res.Details = append(res.Details, fmt.Sprintf("step %d %s on %s: %v\n%s", i, s.Tool, name, o.err, tail(o.raw, 1500)))
				}
			}
			sort.Strings(res.Details)
			return res
		}
		if !s.Compared() {
			continue
		}
		if r.Dump {
			r.Logf("%s step %d %s\n--- klite (exit %d)\n%s\n--- kafka (exit %d)\n%s", c.Name, i, s.Tool,
				a.exit, strings.Join(a.lines, "\n"), b.exit, strings.Join(b.lines, "\n"))
		}
		d := diff(a, b)
		if len(d) == 0 {
			continue
		}
		detail := fmt.Sprintf("step %d %s %s:\n  %s", i, s.Tool, strings.Join(s.Args, " "), strings.Join(d, "\n  "))
		if reason := covering(r.Known, c.Name, i); reason != "" {
			if res.Status == conformance.ToolsMatch {
				res.Status = conformance.ToolsKnown
			}
			res.Reasons = appendOnce(res.Reasons, reason)
			continue
		}
		res.Status = conformance.ToolsDiffer
		res.Details = append(res.Details, detail)
	}
	return res
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// diff compares exit codes and lines; at most a few differing lines are listed.
func diff(a, b output) []string {
	var d []string
	if a.exit != b.exit {
		d = append(d, fmt.Sprintf("exit code: klite %d, kafka %d", a.exit, b.exit))
	}
	n := max(len(a.lines), len(b.lines))
	shown := 0
	for i := 0; i < n; i++ {
		var x, y string
		if i < len(a.lines) {
			x = a.lines[i]
		}
		if i < len(b.lines) {
			y = b.lines[i]
		}
		if x == y {
			continue
		}
		if shown == 6 {
			d = append(d, "...")
			break
		}
		shown++
		d = append(d, fmt.Sprintf("line %d: klite %q, kafka %q", i+1, x, y))
	}
	return d
}

// runOn runs a case's steps in order on one target; after a failed setup step the rest are
// not run.
func (r *Runner) runOn(ctx context.Context, t *conformance.Target, c *Case, prefix string) []output {
	outs := make([]output, len(c.Steps))
	dir, err := os.MkdirTemp("", "klite-tools-")
	if err != nil {
		for i := range outs {
			outs[i].err = err
		}
		return outs
	}
	defer os.RemoveAll(dir)
	files := map[string]string{}
	for name := range c.Files {
		files[name] = filepath.Join(dir, name)
	}
	for name, content := range c.Files {
		if err := os.WriteFile(files[name], []byte(expand(content, prefix, t.Addr, files)), 0o644); err != nil {
			outs[0].err = err
			return outs
		}
	}
	for i, s := range c.Steps {
		args := make([]string, len(s.Args))
		for j, a := range s.Args {
			args[j] = expand(a, prefix, t.Addr, files)
		}
		stdin := expand(s.Stdin, prefix, t.Addr, files)
		var o output
		for attempt := 0; attempt < 10; attempt++ {
			o = r.exec(ctx, s, args, stdin)
			if s.Until == "" || o.err != nil || strings.Contains(o.raw, s.Until) || ctx.Err() != nil {
				break
			}
			time.Sleep(time.Second)
		}
		if o.err == nil && !s.Compared() && o.exit != 0 {
			o.err = fmt.Errorf("setup step exited %d", o.exit)
		}
		outs[i] = o
		if o.err != nil {
			for j := i + 1; j < len(outs); j++ {
				outs[j].err = fmt.Errorf("not run: step %d failed", i)
			}
			break
		}
	}
	return outs
}

func (r *Runner) exec(ctx context.Context, s Step, args []string, stdin string) output {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	libs := filepath.Join(r.Root, ".cache", "kafka", "libs")
	full := append([]string{"-Xshare:auto", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m",
		"-Dlog4j2.configurationFile=" + filepath.Join(r.Root, "conformance", "kafkatools", "log4j2.yaml"),
		"-cp", libs + "/*", Tools[s.Tool]}, args...)
	cmd := exec.CommandContext(cctx, "java", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	o := output{raw: stdout.String() + "\n--- stderr\n" + stderr.String()}
	if cctx.Err() != nil {
		o.err = fmt.Errorf("timed out after %v", timeout)
		return o
	}
	if ee, ok := err.(*exec.ExitError); ok {
		o.exit = ee.ExitCode()
	} else if err != nil {
		o.err = err
		return o
	}
	text := stdout.String()
	if s.Stderr {
		text += stderr.String()
	}
	o.lines = Normalize(text, s.Sort)
	return o
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
