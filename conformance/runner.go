package conformance

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Runner runs cells.
type Runner struct {
	Root  string
	RunID string      // makes topic/group names unique per run
	Pool  *DriverPool // nil: a fresh driver process per actor and cell
}

// cell is the state of one running scenario x client x target.
type cell struct {
	root    string
	pool    *DriverPool
	spec    *Spec
	client  Manifest
	target  *Target
	drivers map[string]*Driver
	ctx     *expandCtx
	norm    *normalizer
	obs     []Observation
	mu      sync.Mutex
	res     *CellResult
}

// stepFailure ends a cell.
type stepFailure struct {
	status string // StatusFail or StatusNA
	msg    string
}

func (f *stepFailure) Error() string { return f.msg }

// RunCell runs one scenario for one client against one target.
func (r *Runner) RunCell(ctx context.Context, spec *Spec, client Manifest, target *Target) *CellResult {
	// A SASL or ACL variant of the target starts on first use, outside the cell's budget (a
	// second Kafka takes a while to start).
	cellTarget, variantErr := target, error(nil)
	if spec.Security != "" {
		variant := target.SASLVariant
		switch {
		case len(spec.ACLs) > 0:
			variant = target.ACLVariant
		case spec.Security != "sasl":
			variant = func(ctx context.Context) (*Target, error) { return target.TLSVariant(ctx, spec.Security) }
		}
		vctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		cellTarget, variantErr = variant(vctx)
		cancel()
	}
	start := time.Now()
	res := &CellResult{Scenario: spec.Name, Client: client.Name, Target: target.Name, Started: start.UTC(),
		SpecDigest: spec.Digest}
	c := &cell{root: r.Root, pool: r.Pool, spec: spec, client: client, target: target, drivers: map[string]*Driver{}, res: res}
	suffix := fmt.Sprintf("%s-%s", sanitize(client.Name), r.RunID)
	names := map[string]string{}
	unique := map[string]string{}
	for _, t := range spec.Topics {
		names[t.Name] = fmt.Sprintf("%s-%s-%s", spec.Name, strings.ReplaceAll(t.Name, "_", "-"), suffix)
	}
	for _, n := range spec.Names {
		names[n] = fmt.Sprintf("%s-%s-%s", spec.Name, strings.ReplaceAll(n, "_", "-"), suffix)
	}
	for l, u := range names {
		unique[u] = l
	}
	c.ctx = &expandCtx{names: names, vars: map[string]any{}, now: start.UnixMilli()}
	// A cell cannot outlive its budget, so every clock-assigned timestamp is inside this window.
	c.norm = &normalizer{unique: unique, start: start.UnixMilli(), end: start.UnixMilli() + int64(spec.TimeoutMs)}

	cctx, cancel := context.WithTimeout(ctx, time.Duration(spec.TimeoutMs)*time.Millisecond)
	defer cancel()
	// The cell's budget: when it runs out, kill the drivers so a blocked call returns.
	stop := context.AfterFunc(cctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, d := range c.drivers {
			d.kill()
		}
	})
	defer stop()

	if msg, dead := target.Exited(); dead {
		res.Status, res.Message = StatusFail, msg
		return res
	}
	if variantErr != nil {
		res.Status, res.Message = StatusFail, "SASL target: "+variantErr.Error()
		return res
	}
	c.target = cellTarget
	err := c.run(cctx)
	if err != nil {
		res.Stderr = c.stderrTails() // before the drivers go back to the pool
	}
	c.closeDrivers()
	if msg, dead := target.Exited(); dead && err != nil {
		err = fmt.Errorf("%v\n%s", err, msg)
	}
	res.DurationMs = time.Since(start).Milliseconds()
	if err != nil {
		var sf *stepFailure
		if errors.As(err, &sf) {
			res.Status, res.Message = sf.status, sf.msg
		} else {
			res.Status, res.Message = StatusFail, err.Error()
		}
		if cctx.Err() != nil && ctx.Err() == nil {
			res.Status = StatusFail
			res.Message = fmt.Sprintf("cell exceeded its %dms budget; %s", spec.TimeoutMs, res.Message)
		}
		if res.Status != StatusFail {
			res.Stderr = ""
		}
	} else {
		res.Status = StatusPass
	}
	res.Observations = c.obs
	return res
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

func (c *cell) run(ctx context.Context) error {
	// Start every actor's driver and say hello.
	for _, a := range c.spec.Actors {
		d := c.pool.get(c.client.Name, a.Name)
		if d == nil {
			var err error
			if d, err = StartDriver(c.root, c.client, a.Name); err != nil {
				return err
			}
		}
		c.mu.Lock()
		c.drivers[a.Name] = d
		c.mu.Unlock()
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.spec.Actors))
	for i, a := range c.spec.Actors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cid := a.ClientID
			if cid == "" {
				cid = "klite-conformance-" + a.Name
			}
			hello := map[string]any{"bootstrap": c.target.Addr, "client_id": c.ctx.interp(cid)}
			if s := a.SASL; s != nil {
				hello["sasl"] = map[string]any{"mechanism": s.Mechanism, "user": c.ctx.interp(s.User), "password": c.ctx.interp(s.Password)}
			}
			if tf := c.target.TLS; tf != nil {
				tlsArgs := map[string]any{"ca_file": tf.CA}
				if c.spec.Security == "mtls" {
					tlsArgs["cert_file"], tlsArgs["key_file"] = tf.ClientCert, tf.ClientKey
				}
				hello["tls"] = tlsArgs
			}
			ans, err := c.drivers[a.Name].Call("hello", hello, 90*time.Second)
			if err == nil && ans["ok"] != true {
				err = fmt.Errorf("hello failed: %v %v", ans["error"], ans["message"])
			}
			if err == nil && i == 0 {
				c.res.LibraryVersion, _ = ans["library_version"].(string)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("actor %s: %v", c.spec.Actors[i].Name, err)
		}
	}
	if len(c.spec.ScramUsers) > 0 {
		if err := c.target.CreateScramUsers(ctx, c.spec.ScramUsers, c.ctx.interp); err != nil {
			return err
		}
	}
	if len(c.spec.Topics) > 0 {
		if err := c.target.CreateTopics(ctx, c.spec.Topics, c.ctx.names); err != nil {
			return err
		}
	}
	if len(c.spec.ACLs) > 0 {
		if err := c.target.CreateACLs(ctx, c.spec.ACLs, c.ctx.interp); err != nil {
			return err
		}
	}
	if len(c.spec.ClientQuotas) > 0 {
		if err := c.target.SetClientQuotas(ctx, c.spec.ClientQuotas, c.ctx.interp); err != nil {
			return err
		}
	}
	for i, st := range c.spec.Steps {
		t0 := time.Now()
		err := c.runStep(ctx, i, st)
		c.res.StepMs = append(c.res.StepMs, time.Since(t0).Milliseconds())
		if err != nil {
			return err
		}
	}
	return nil
}

func stepName(i int, st *Step) string {
	if st.Label != "" {
		return fmt.Sprintf("%d %s", i+1, st.Label)
	}
	if len(st.Parallel) > 0 {
		var parts []string
		for _, s := range st.Parallel {
			parts = append(parts, s.Actor+" "+s.Op)
		}
		return fmt.Sprintf("%d parallel(%s)", i+1, strings.Join(parts, ", "))
	}
	return fmt.Sprintf("%d %s %s", i+1, st.Actor, st.Op)
}

// outcome is one call's result before it is accepted.
type outcome struct {
	step   *Step
	ans    map[string]any
	misses []string
	err    error
}

func (c *cell) runStep(ctx context.Context, i int, st *Step) error {
	name := stepName(i, st)
	subs := st.Parallel
	if len(subs) == 0 {
		subs = []*Step{st}
	}
	var outs []outcome
	for attempt := 1; attempt <= st.Retry; attempt++ {
		outs = make([]outcome, len(subs))
		var wg sync.WaitGroup
		for j, s := range subs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[j] = c.call(ctx, s)
			}()
		}
		wg.Wait()
		retryable := true
		allOK := true
		for _, o := range outs {
			if o.err != nil {
				var ed *errDriver
				var eu *errUnsupported
				if errors.As(o.err, &ed) || errors.As(o.err, &eu) && !o.step.Optional || ctx.Err() != nil {
					retryable = false
				}
				if !(errors.As(o.err, &eu) && o.step.Optional) {
					allOK = false
				}
			} else if len(o.misses) > 0 {
				allOK = false
			}
		}
		if allOK || !retryable || attempt == st.Retry {
			break
		}
	}
	for j, o := range outs {
		sn := name
		if len(subs) > 1 {
			sn = fmt.Sprintf("%s/%s %s", name, o.step.Actor, o.step.Op)
		}
		var eu *errUnsupported
		if errors.As(o.err, &eu) {
			if o.step.Optional {
				c.obs = append(c.obs, Observation{Step: sn, Answer: "(skipped: unsupported)"})
				continue
			}
			return &stepFailure{status: StatusNA, msg: fmt.Sprintf("step %s: %s unsupported: %s", sn, o.step.Op, eu.reason)}
		}
		if o.err != nil {
			return &stepFailure{status: StatusFail, msg: fmt.Sprintf("step %s (line %d): %v", sn, o.step.Line, o.err)}
		}
		if len(o.misses) > 0 {
			tries := ""
			if st.Retry > 1 {
				tries = fmt.Sprintf(" after %d attempts", st.Retry)
			}
			return &stepFailure{status: StatusFail, msg: fmt.Sprintf("step %s (line %d)%s: %s\nanswer: %s",
				sn, o.step.Line, tries, strings.Join(o.misses, "; "), clip(show(o.ans)))}
		}
		for v, p := range o.step.Save {
			val, ok := getPath(o.ans, p)
			if !ok {
				return &stepFailure{status: StatusFail, msg: fmt.Sprintf("step %s (line %d): save %s: no value at %s in %s",
					sn, o.step.Line, v, p, clip(show(o.ans)))}
			}
			c.ctx.vars[v] = val
		}
		if !o.step.Diff.Off {
			c.obs = append(c.obs, Observation{Step: sn, Answer: c.norm.normalize(o.ans, o.step.Diff)})
		}
		_ = j
	}
	return nil
}

// call runs one driver op with its expectation.
func (c *cell) call(ctx context.Context, s *Step) outcome {
	o := outcome{step: s}
	if s.DelayMs > 0 {
		select {
		case <-ctx.Done():
			o.err = ctx.Err()
			return o
		case <-time.After(time.Duration(s.DelayMs) * time.Millisecond):
		}
	}
	argsV, err := c.ctx.expand(s.Args)
	if err != nil {
		o.err = err
		return o
	}
	args, _ := argsV.(map[string]any)
	timeout := 15 * time.Second
	if t, ok := args["timeout_ms"].(int64); ok {
		timeout += time.Duration(t) * time.Millisecond
	}
	if s.TimeoutMs > 0 {
		timeout = time.Duration(s.TimeoutMs) * time.Millisecond
	}
	c.mu.Lock()
	d := c.drivers[s.Actor]
	c.mu.Unlock()
	t0 := time.Now()
	o.ans, o.err = d.Call(s.Op, args, timeout)
	if o.err != nil {
		return o
	}
	// How long the call took, for expectations on waiting (long poll); never compared.
	o.ans["elapsed_ms"] = time.Since(t0).Milliseconds()
	var pat any = map[string]any{}
	if s.Expect != nil {
		if pat, err = c.ctx.expand(s.Expect); err != nil {
			o.err = err
			return o
		}
	}
	pm := pat.(map[string]any)
	if _, ok := pm["ok"]; !ok && !isDirective(pm) { // a top-level $oneOf names ok in each choice
		if _, hasErr := pm["error"]; hasErr {
			pm["ok"] = false
		} else {
			pm["ok"] = true
		}
	}
	o.misses = match(pm, o.ans, "")
	return o
}

func (c *cell) closeDrivers() {
	c.mu.Lock()
	ds := make([]*Driver, 0, len(c.drivers))
	for _, d := range c.drivers {
		ds = append(ds, d)
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Add(1)
		go func() { defer wg.Done(); c.pool.put(c.client.Name, d) }()
	}
	wg.Wait()
}

func (c *cell) stderrTails() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.drivers))
	for n := range c.drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		t := c.drivers[n].Stderr()
		if len(t) > 3000 {
			t = "..." + t[len(t)-3000:]
		}
		if t != "" {
			fmt.Fprintf(&b, "--- %s stderr (tail) ---\n%s\n", n, strings.TrimRight(t, "\n"))
		}
	}
	return b.String()
}
