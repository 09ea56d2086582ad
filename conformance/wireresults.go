package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Wire variant and step statuses (the wire-level differential, conformance/wire).
const (
	WireMatch     = "match"
	WireDiffer    = "differ"
	WireKnown     = "known-diff" // differs, every difference declared in wire-known-diffs.yaml
	WireKliteOnly = "klite-only" // a version klite advertises and Kafka 4.0 does not: not compared
	WireError     = "error"      // the harness could not run it (build, connect)
)

// WireResults is conformance/results/wire.json, written by `klite-conformance wire`.
type WireResults struct {
	Updated  time.Time              `json:"updated"`
	Targets  map[string]*TargetInfo `json:"targets"`
	Variants []*WireVariant         `json:"variants"`
}

// WireVariant is one case at one version (Version -1: the case has no version variants).
type WireVariant struct {
	Case    string     `json:"case"`
	File    string     `json:"file"`
	Key     int16      `json:"key"` // the API the variant is about (its `version: all` step, else its last compared step)
	Version int16      `json:"version"`
	Status  string     `json:"status"`
	Details []string   `json:"details,omitempty"`
	Reasons []string   `json:"reasons,omitempty"`
	Steps   []WireStep `json:"steps,omitempty"`
}

// WireStep is one compared request of a variant.
type WireStep struct {
	Key     int16  `json:"key"`
	Version int16  `json:"version"`
	Status  string `json:"status"`
}

// LoadWireResults reads a wire results file; a missing file is nil, nil.
func LoadWireResults(file string) (*WireResults, error) { return loadJSON[WireResults](file) }

// Save writes the file atomically.
func (w *WireResults) Save(file string) error { return saveJSON(file, w) }

// loadJSON reads a results file of the wire or tools layer; a missing file is nil, nil.
func loadJSON[T any](file string) (*T, error) {
	raw, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return &v, nil
}

// saveJSON writes v indented, atomically (a temporary file renamed over the old one).
func saveJSON(file string, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
