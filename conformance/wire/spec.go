// Package wire is the wire-level differential layer of the conformance harness: request
// sequences kept as data (scenarios/wire/*.yaml), encoded with kmsg, sent over a raw connection
// to klite and to Apache Kafka, decoded with kmsg and compared field by field after a declared
// normalization (normalize.go). Known differences are declared with a reason in
// conformance/wire-known-diffs.yaml.
//
// A case file:
//
//	cases:
//	  - name: metadata-one-topic          # unique across files
//	    description: ...
//	    ignore: ["Topics.*.Partitions.*.LeaderEpoch"]   # extra paths left out of the comparison
//	    steps:
//	      - api: CreateTopics             # kmsg name or key
//	        version: max                  # max (default: highest both sides and kmsg know), N, or all
//	        request: {topics: [{topic: "{{topic:a}}", num_partitions: 1, replication_factor: 1}]}
//	        save: {a_id: Topics.0.TopicID}   # response path, per target; used as "$a_id"
//	        compare: false                # setup step: answer not compared
//	      - await_topic: "{{topic:a}}"    # poll Metadata until every partition has a leader
//	      - api: CreateTopics
//	        client_id: "{{client:m}}"     # this step alone, on its own connection with this client ID
//	      - api: DescribeConfigs
//	        until: {path: Resources.0.Configs.0.Value, equals: "7200000"}   # repeat until settled
//	      - api: Metadata
//	        version: all                  # one variant per version klite advertises
//	        from: 4                       # (optional) ... from this version on
//	        request: {topics: [{topic: "{{topic:a}}"}]}
//
// `version: all` (at most one step per case) makes the case a family of variants, one per
// version of that API klite advertises: version coverage comes from the kmsg definitions, not
// from hand-written requests. Names `{{kind:id}}` are unique per run, case and variant, and the
// same on both targets so the answers compare.
package wire

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
	"gopkg.in/yaml.v3"
)

// Case is one request sequence.
type Case struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Ignore      []string `yaml:"ignore"`
	// Exclusive cases run alone, one at a time after all the others: they change state every
	// case sees (a cluster-wide dynamic config shows in every topic's configs).
	Exclusive bool   `yaml:"exclusive"`
	Steps     []Step `yaml:"steps"`
	File      string `yaml:"-"`
	// KnownVersion (fuzz cases: one request at one version, no variants) is the version
	// declarations in the known-differences file are matched at.
	KnownVersion *int16 `yaml:"-"`
}

// Step is one request (or an await).
type Step struct {
	API        string            `yaml:"api"`
	Version    string            `yaml:"version"`
	Request    map[string]any    `yaml:"request"`
	Save       map[string]string `yaml:"save"`
	Compare    *bool             `yaml:"compare"`
	AwaitTopic string            `yaml:"await_topic"`
	// ClientID, when set, sends this step alone on a connection of its own with that client
	// ID (templated: "{{client:m}}"), for cases about client quotas; other steps use
	// "klite-wire".
	ClientID string `yaml:"client_id"`
	Until    *Until `yaml:"until"`
	From     int16  `yaml:"from"` // with version all: the lowest version the case means

	Key int16 `yaml:"-"`
}

// Until repeats a step (at most 100 times, 100 ms apart) until a path of the answer exists, or
// equals a value: Kafka applies metadata changes (configs, new partitions' logs) a moment after
// it answers, and the comparison is of the settled state, not of that race.
type Until struct {
	Path   string `yaml:"path"`   // "Resources.0.Configs.0.Value" (answer keeping only the variant's own names, before the rest of the normalization)
	Equals string `yaml:"equals"` // the value as text; empty: the path exists and is not null
}

// Compared reports whether the step's answers are compared between targets.
func (s *Step) Compared() bool { return s.AwaitTopic == "" && (s.Compare == nil || *s.Compare) }

type caseFile struct {
	Anchors any    `yaml:"anchors"` // YAML anchors shared by the file's cases; not read otherwise
	Cases   []Case `yaml:"cases"`
}

var keyByName = func() map[string]int16 {
	m := map[string]int16{}
	for k := int16(0); k < 100; k++ {
		if n := kmsg.NameForKey(k); n != "" {
			m[strings.ToLower(n)] = k
		}
	}
	return m
}()

// APIKey resolves a kmsg API name (any case) or a number.
func APIKey(s string) (int16, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if kmsg.RequestForKey(int16(n)) == nil {
			return 0, fmt.Errorf("no kmsg request for API key %d", n)
		}
		return int16(n), nil
	}
	k, ok := keyByName[strings.ToLower(s)]
	if !ok {
		return 0, fmt.Errorf("unknown API %q", s)
	}
	return k, nil
}

// LoadDir loads every *.yaml case file in dir, checking names and requests.
func LoadDir(dir string) ([]*Case, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*Case
	seen := map[string]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		cs, err := Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		for _, c := range cs {
			if prev, ok := seen[c.Name]; ok {
				return nil, fmt.Errorf("%s: case %q already defined in %s", f, c.Name, prev)
			}
			seen[c.Name] = f
			c.File = filepath.Base(f)
			out = append(out, c)
		}
	}
	return out, nil
}

var caseNameRe = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// Parse reads one case file and validates it: API names, versions, and that every request
// builds with kmsg (templates filled with placeholders).
func Parse(raw []byte) ([]*Case, error) {
	var f caseFile
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if len(f.Cases) == 0 {
		return nil, fmt.Errorf("no cases")
	}
	var out []*Case
	for i := range f.Cases {
		c := &f.Cases[i]
		if !caseNameRe.MatchString(c.Name) {
			return nil, fmt.Errorf("case %d: name %q must be lower-case words joined by single dashes", i, c.Name)
		}
		if len(c.Steps) == 0 {
			return nil, fmt.Errorf("case %s: no steps", c.Name)
		}
		all := 0
		for j := range c.Steps {
			s := &c.Steps[j]
			if s.AwaitTopic != "" {
				if s.API != "" || s.Request != nil {
					return nil, fmt.Errorf("case %s step %d: await_topic stands alone", c.Name, j)
				}
				continue
			}
			k, err := APIKey(s.API)
			if err != nil {
				return nil, fmt.Errorf("case %s step %d: %v", c.Name, j, err)
			}
			s.Key = k
			switch s.Version {
			case "", "max":
			case "all":
				all++
			default:
				if _, err := strconv.ParseInt(s.Version, 10, 16); err != nil {
					return nil, fmt.Errorf("case %s step %d: version %q: want max, all or a number", c.Name, j, s.Version)
				}
			}
			req, err := Template(s.Request, Names{Run: "check", Case: c.Name}, placeholderSaved)
			if err != nil {
				return nil, fmt.Errorf("case %s step %d: %v", c.Name, j, err)
			}
			if _, err := BuildRequest(k, 0, req); err != nil {
				return nil, fmt.Errorf("case %s step %d: %v", c.Name, j, err)
			}
		}
		if all > 1 {
			return nil, fmt.Errorf("case %s: %d steps with version all (at most one)", c.Name, all)
		}
		out = append(out, c)
	}
	return out, nil
}

// placeholderSaved stands for any saved value while a file is checked.
var placeholderSaved = savedFunc(func(string) (any, bool) { return nil, true })

type savedFunc func(name string) (any, bool)

// Names makes the per-run names of a case variant.
type Names struct {
	Run, Case string
	Variant   string // "v3" for a version variant, "" otherwise
}

// Own is the prefix of every name of this case variant: "wire-<run>-<case>--[<variant>-]"
// (case names have no double dash, so one case's prefix is never another's).
func (n Names) Own() string {
	p := "wire-" + n.Run + "-" + n.Case + "--"
	if n.Variant != "" {
		p += n.Variant + "-"
	}
	return p
}

func (n Names) name(kind, id string) string { return n.Own() + kind + "-" + id }

var templRe = regexp.MustCompile(`\{\{([a-z]+):([A-Za-z0-9_]+)\}\}`)

// Template fills names ({{kind:id}} anywhere in a string; {{repeat:N}} is N "x"s;
// {{saved:name}} a saved value as text) and saved values (a string that is exactly "$name")
// in a request tree, returning a copy.
func Template(v any, n Names, saved savedFunc) (map[string]any, error) {
	out, err := templ(v, n, saved)
	if err != nil || out == nil {
		return nil, err
	}
	return out.(map[string]any), nil
}

func templ(v any, n Names, saved savedFunc) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			t, err := templ(e, n, saved)
			if err != nil {
				return nil, err
			}
			out[k] = t
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			t, err := templ(e, n, saved)
			if err != nil {
				return nil, err
			}
			out[i] = t
		}
		return out, nil
	case string:
		if strings.HasPrefix(x, "$") && len(x) > 1 && !strings.HasPrefix(x, "$batch") {
			val, ok := saved(x[1:])
			if !ok {
				return nil, fmt.Errorf("saved value %s not set by an earlier step", x)
			}
			return val, nil
		}
		missing := ""
		out := templRe.ReplaceAllStringFunc(x, func(m string) string {
			p := templRe.FindStringSubmatch(m)
			if p[1] == "repeat" { // {{repeat:40000}}: that many "x", for over-long strings
				k, _ := strconv.Atoi(p[2])
				return strings.Repeat("x", min(k, 1<<20))
			}
			if p[1] == "saved" { // {{saved:node}}: a saved value as text (a broker ID as a resource name)
				val, ok := saved(p[2])
				if !ok {
					missing = p[2]
				}
				return fmt.Sprint(val)
			}
			return n.name(p[1], p[2])
		})
		if missing != "" {
			return nil, fmt.Errorf("saved value %s not set by an earlier step", missing)
		}
		return out, nil
	default:
		return v, nil
	}
}

// Versions lists the versions a `version: all` step runs at: those klite advertises for the
// API that kmsg can encode, lowest first.
func Versions(key int16, kliteMin, kliteMax int16) []int16 {
	max := kmsg.RequestForKey(key).MaxVersion()
	if kliteMax < max {
		max = kliteMax
	}
	var out []int16
	for v := kliteMin; v <= max; v++ {
		out = append(out, v)
	}
	return out
}
