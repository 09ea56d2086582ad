package wire

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Known is one declared difference between klite and Kafka (conformance/wire-known-diffs.yaml).
// A compared variant whose every difference is covered by declarations of its case is "known"
// rather than "differ".
type Known struct {
	Case     string   `yaml:"case"`     // case name or glob ("fetch-*")
	Versions string   `yaml:"versions"` // "" (all), "3", "0-4"
	Paths    []string `yaml:"paths"`    // globs over GlobPath of a difference ("Topics.*.ErrorCode"); empty: any
	Reason   string   `yaml:"reason"`
	// Fuzz: the difference is the API's, not the case's: it also covers the fuzz mode's random
	// requests of the API the case's compared steps use (versions are then the API's).
	Fuzz bool `yaml:"fuzz"`

	lo, hi int // parsed Versions; lo > hi never
	used   bool
}

// KnownList is the loaded file.
type KnownList struct {
	List []*Known   `yaml:"diffs"`
	mu   sync.Mutex // Match marks declarations used from parallel variants
}

// LoadKnown reads the known-differences file; a missing file is an empty list.
func LoadKnown(file string) (*KnownList, error) {
	raw, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return &KnownList{}, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseKnown(raw)
}

func ParseKnown(raw []byte) (*KnownList, error) {
	var k KnownList
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&k); err != nil {
		return nil, err
	}
	for i, d := range k.List {
		if d.Case == "" || strings.TrimSpace(d.Reason) == "" {
			return nil, fmt.Errorf("known difference %d: case and reason are required", i)
		}
		if _, err := path.Match(d.Case, ""); err != nil {
			return nil, fmt.Errorf("known difference %d: case glob: %v", i, err)
		}
		d.lo, d.hi = 0, 1<<15
		if d.Versions != "" {
			lo, hi, ok := strings.Cut(d.Versions, "-")
			if !ok {
				hi = lo
			}
			a, e1 := strconv.Atoi(lo)
			b, e2 := strconv.Atoi(hi)
			if e1 != nil || e2 != nil || a > b {
				return nil, fmt.Errorf("known difference %d: versions %q: want N or N-M", i, d.Versions)
			}
			d.lo, d.hi = a, b
		}
	}
	return &k, nil
}

// Match returns the reasons that cover every difference of a case variant (version -1: the case
// has no version variants), or ok false when some difference is not declared.
func (k *KnownList) Match(caseName string, version int, diffs []Difference) (reasons []string, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	seen := map[string]bool{}
	for _, d := range diffs {
		gp := GlobPath(d.Path)
		covered := false
		for _, kd := range k.List {
			if m, _ := path.Match(kd.Case, caseName); !m {
				continue
			}
			// a declaration for some versions never covers a case without version variants
			if kd.Versions != "" && (version < 0 || version < kd.lo || version > kd.hi) {
				continue
			}
			if len(kd.Paths) > 0 && !ignored(gp, kd.Paths) && !prefixed(gp, kd.Paths) {
				continue
			}
			covered = true
			kd.used = true
			if !seen[kd.Reason] {
				seen[kd.Reason] = true
				reasons = append(reasons, strings.TrimSpace(kd.Reason))
			}
			break
		}
		if !covered {
			return nil, false
		}
	}
	return reasons, true
}

// prefixed: a declared path also covers everything under it ("ApiKeys" covers "ApiKeys.*.MaxVersion").
func prefixed(p string, globs []string) bool {
	for _, g := range globs {
		parts := strings.Split(p, ".")
		for i := 1; i < len(parts); i++ {
			if ignored(strings.Join(parts[:i], "."), []string{g}) {
				return true
			}
		}
	}
	return false
}

// Unused lists declarations no difference needed in this run (candidates for removal).
func (k *KnownList) Unused() []*Known {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*Known
	for _, d := range k.List {
		if !d.used {
			out = append(out, d)
		}
	}
	return out
}

// ForFuzz returns the declarations that apply in fuzz mode: each one marked fuzz, re-targeted at
// the fuzz cases of the API its corpus cases compare (cases: the corpus). A fuzz declaration
// whose cases compare no API or more than one is an error.
func (k *KnownList) ForFuzz(cases []*Case) (*KnownList, error) {
	out := &KnownList{}
	for i, d := range k.List {
		if !d.Fuzz {
			continue
		}
		keys := map[int16]bool{}
		for _, c := range cases {
			if m, _ := path.Match(d.Case, c.Name); !m {
				continue
			}
			for _, s := range c.Steps {
				if s.Compared() {
					keys[s.Key] = true
				}
			}
		}
		if len(keys) != 1 {
			return nil, fmt.Errorf("known difference %d (case %s): fuzz needs cases comparing exactly one API, found %d", i, d.Case, len(keys))
		}
		for key := range keys {
			f := *d
			f.Case, f.used = FuzzCaseGlob(key), false
			out.List = append(out.List, &f)
		}
	}
	return out, nil
}
