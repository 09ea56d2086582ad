package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"gopkg.in/yaml.v3"
)

// Cell statuses.
const (
	StatusPass     = "pass"
	StatusFail     = "fail"
	StatusNA       = "n/a"       // the client cannot do an op the scenario needs
	StatusKnownGap = "known-gap" // failed, and a known gap declares why
)

// Diff statuses (klite vs kafka, per scenario and client).
const (
	DiffMatch    = "match"
	DiffDiffer   = "differ"
	DiffKnownGap = "known-gap"
	DiffNone     = "-" // not comparable: a side is missing, n/a or failed
)

// CellResult is one scenario x client x target.
type CellResult struct {
	Scenario       string        `json:"scenario"`
	Client         string        `json:"client"`
	Target         string        `json:"target"`
	Status         string        `json:"status"`
	SpecDigest     string        `json:"spec_digest,omitempty"`
	Message        string        `json:"message,omitempty"`
	GapReason      string        `json:"gap_reason,omitempty"`
	GapPassed      bool          `json:"gap_passed,omitempty"` // declared gap that passed: remove it
	DurationMs     int64         `json:"duration_ms"`
	StepMs         []int64       `json:"step_ms,omitempty"` // wall time of each step, for tuning
	Started        time.Time     `json:"started"`
	LibraryVersion string        `json:"library_version,omitempty"`
	Stderr         string        `json:"stderr,omitempty"`
	Observations   []Observation `json:"observations,omitempty"`
}

// DiffResult compares one scenario x client across klite and kafka.
type DiffResult struct {
	Scenario  string   `json:"scenario"`
	Client    string   `json:"client"`
	Status    string   `json:"status"`
	Details   []string `json:"details,omitempty"`
	GapReason string   `json:"gap_reason,omitempty"`
}

// TargetInfo is what a run learnt about a target.
type TargetInfo struct {
	Version string       `json:"version"`
	Addr    string       `json:"addr,omitempty"`
	APIs    []APIVersion `json:"api_versions"`
	Seen    time.Time    `json:"seen"`
}

// ScenarioInfo is kept in the results so `doc` needs nothing else.
type ScenarioInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Results is the machine-readable results file (conformance/results/latest.json). Runs merge
// into it: a cell run again replaces its previous result, others are kept.
type Results struct {
	Updated   time.Time              `json:"updated"`
	Tools     map[string]string      `json:"tools"` // go version, java version, ...
	Targets   map[string]*TargetInfo `json:"targets"`
	Clients   map[string]string      `json:"clients"` // client -> library version
	Scenarios []ScenarioInfo         `json:"scenarios"`
	Cells     []*CellResult          `json:"cells"`
	Diffs     []*DiffResult          `json:"diffs"`
	// Wire is the wire-level differential's results (conformance/results/wire.json), loaded
	// beside this file by `doc`; nil when there are none.
	Wire *WireResults `json:"-"`
	// KafkaTools is the Kafka-tools differential's results (conformance/results/tools.json),
	// loaded beside this file by `doc`; nil when there are none.
	KafkaTools *ToolsResults `json:"-"`
}

// LoadResults reads a results file; a missing file is an empty result set.
func LoadResults(path string) (*Results, error) {
	r := &Results{Tools: map[string]string{}, Targets: map[string]*TargetInfo{}, Clients: map[string]string{}}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if r.Tools == nil {
		r.Tools = map[string]string{}
	}
	if r.Targets == nil {
		r.Targets = map[string]*TargetInfo{}
	}
	if r.Clients == nil {
		r.Clients = map[string]string{}
	}
	return r, nil
}

// Save writes the results atomically, sorted for stable diffs.
func (r *Results) Save(path string) error {
	sort.Slice(r.Cells, func(i, j int) bool { return cellKey(r.Cells[i]) < cellKey(r.Cells[j]) })
	sort.Slice(r.Diffs, func(i, j int) bool {
		return r.Diffs[i].Scenario+"\x00"+r.Diffs[i].Client < r.Diffs[j].Scenario+"\x00"+r.Diffs[j].Client
	})
	sort.Slice(r.Scenarios, func(i, j int) bool { return r.Scenarios[i].Name < r.Scenarios[j].Name })
	data, err := r.marshal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// marshal writes one cell (and one diff) per line, so a re-run shows in git as changed lines.
func (r *Results) marshal() ([]byte, error) {
	var b bytes.Buffer
	head := []struct {
		k string
		v any
	}{{"updated", r.Updated}, {"tools", r.Tools}, {"targets", r.Targets}, {"clients", r.Clients}, {"scenarios", r.Scenarios}}
	b.WriteString("{\n")
	for _, h := range head {
		v, err := json.Marshal(h.v)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%q: %s,\n", h.k, v)
	}
	list := func(name string, n int, item func(i int) any, last bool) error {
		fmt.Fprintf(&b, "%q: [", name)
		for i := 0; i < n; i++ {
			v, err := json.Marshal(item(i))
			if err != nil {
				return err
			}
			sep := ","
			if i == n-1 {
				sep = ""
			}
			fmt.Fprintf(&b, "\n  %s%s", v, sep)
		}
		if n > 0 {
			b.WriteString("\n")
		}
		b.WriteString("]")
		if !last {
			b.WriteString(",")
		}
		b.WriteString("\n")
		return nil
	}
	if err := list("cells", len(r.Cells), func(i int) any { return r.Cells[i] }, false); err != nil {
		return nil, err
	}
	if err := list("diffs", len(r.Diffs), func(i int) any { return r.Diffs[i] }, true); err != nil {
		return nil, err
	}
	b.WriteString("}")
	if !json.Valid(b.Bytes()) {
		return nil, fmt.Errorf("results: produced invalid JSON")
	}
	return b.Bytes(), nil
}

func cellKey(c *CellResult) string { return c.Scenario + "\x00" + c.Client + "\x00" + c.Target }

// Merge replaces cells with the same key and adds new ones.
func (r *Results) Merge(cells []*CellResult) {
	idx := map[string]int{}
	for i, c := range r.Cells {
		idx[cellKey(c)] = i
	}
	for _, c := range cells {
		if i, ok := idx[cellKey(c)]; ok {
			r.Cells[i] = c
		} else {
			idx[cellKey(c)] = len(r.Cells)
			r.Cells = append(r.Cells, c)
		}
	}
}

// Cell finds a cell.
func (r *Results) Cell(scenario, client, target string) *CellResult {
	for _, c := range r.Cells {
		if c.Scenario == scenario && c.Client == client && c.Target == target {
			return c
		}
	}
	return nil
}

// ComputeDiffs recomputes every klite-vs-kafka comparison from the stored cells.
func (r *Results) ComputeDiffs(gaps *Gaps) {
	r.Diffs = r.Diffs[:0]
	seen := map[string]bool{}
	for _, c := range r.Cells {
		k := c.Scenario + "\x00" + c.Client
		if seen[k] {
			continue
		}
		seen[k] = true
		d := &DiffResult{Scenario: c.Scenario, Client: c.Client, Status: DiffNone}
		kl, kf := r.Cell(c.Scenario, c.Client, "klite"), r.Cell(c.Scenario, c.Client, "kafka")
		if kl != nil && kf != nil && kl.Status == StatusPass && kf.Status == StatusPass && kl.SpecDigest != kf.SpecDigest {
			d.Details = []string{"not compared: the scenario changed between the klite and the kafka run"}
		} else if kl != nil && kf != nil && kl.Status == StatusPass && kf.Status == StatusPass {
			d.Details = diffObservations("kafka", kf.Observations, "klite", kl.Observations)
			d.Status = DiffMatch
			if len(d.Details) > 0 {
				d.Status = DiffDiffer
				if g := gaps.Find(c.Scenario, c.Client, "klite"); g != nil {
					d.Status, d.GapReason = DiffKnownGap, g.Reason
				}
			}
		}
		r.Diffs = append(r.Diffs, d)
	}
}

// Gap is one declared known gap.
type Gap struct {
	Scenario string `yaml:"scenario"`
	Client   string `yaml:"client"` // "" or "*" for every client
	Target   string `yaml:"target"` // default klite (which covers klite-s3 too); "*" for every target
	Reason   string `yaml:"reason"`
	// Flaky marks a gap whose cell sometimes passes (a client library race): a pass is
	// not reported as "remove this gap".
	Flaky bool `yaml:"flaky"`
	Line  int  `yaml:"-"`
}

// Gaps is conformance/known-gaps.yaml.
type Gaps struct {
	List []Gap `yaml:"gaps"`
}

// LoadGaps reads the known-gaps file; every gap needs a scenario and a reason.
func LoadGaps(path string) (*Gaps, error) {
	g := &Gaps{}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return g, nil
	}
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if err := doc.Decode(g); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	// Recover lines for error messages.
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "gaps" {
				for j, n := range root.Content[i+1].Content {
					if j < len(g.List) {
						g.List[j].Line = n.Line
					}
				}
			}
		}
	}
	for i := range g.List {
		x := &g.List[i]
		if x.Scenario == "" || x.Reason == "" {
			return nil, &LoadError{File: path, Line: x.Line, Reason: "a known gap needs scenario and reason"}
		}
		if x.Target == "" {
			x.Target = "klite"
		}
		if x.Client == "" {
			x.Client = "*"
		}
	}
	return g, nil
}

// Find returns the gap covering a cell, if any.
func (g *Gaps) Find(scenario, client, target string) *Gap {
	if g == nil {
		return nil
	}
	for i := range g.List {
		x := &g.List[i]
		if x.Scenario == scenario && (x.Client == "*" || x.Client == client) && (x.Target == "*" || x.Target == target || x.Target == "klite" && target == S3TargetName) {
			return x
		}
	}
	return nil
}

// ReapplyGaps re-evaluates stored cells against the current known-gaps file (a gap may have
// been added or removed since the cells ran).
func (r *Results) ReapplyGaps(gaps *Gaps) {
	for _, c := range r.Cells {
		if c.Status == StatusKnownGap {
			c.Status = StatusFail
		}
		c.GapPassed, c.GapReason = false, ""
	}
	ApplyGaps(r.Cells, gaps)
}

// ApplyGaps marks failed cells covered by a gap as known gaps and flags gaps that passed.
func ApplyGaps(cells []*CellResult, gaps *Gaps) {
	for _, c := range cells {
		g := gaps.Find(c.Scenario, c.Client, c.Target)
		if g == nil {
			continue
		}
		switch c.Status {
		case StatusFail:
			c.Status, c.GapReason = StatusKnownGap, g.Reason
		case StatusPass:
			if !g.Flaky {
				c.GapPassed, c.GapReason = true, g.Reason
			}
		}
	}
}
