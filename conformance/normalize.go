package conformance

import (
	"crypto/sha256"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Observation is one step's answer after normalization, as compared across targets.
type Observation struct {
	Step   string `json:"step"` // "<index> <actor> <op>" or the step's label
	Answer any    `json:"answer"`
}

// volatileKeys are dropped from every answer before comparing targets: they legitimately
// differ between two brokers (identities, messages, versions) or between runs.
var volatileKeys = map[string]bool{
	"id": true, "message": true, "reason": true, "cluster_id": true, "topic_id": true,
	"member_id": true, "controller_id": true, "controller": true, "leader": true, "node_id": true,
	"library_version": true, "client": true, "host": true, "port": true, "client_host": true,
	"producer_id": true, "producer_epoch": true, "elapsed_ms": true,
}

var uuidRe = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)

// WallClock is what a broker- or client-assigned wall-clock timestamp normalizes to.
const WallClock = "<wallclock>"

// normalizer rewrites answers of one cell into target-independent observations.
type normalizer struct {
	unique     map[string]string // unique name -> logical name
	start, end int64             // the cell's wall-clock window, ms
}

func (n *normalizer) normalize(ans map[string]any, d DiffSpec) any {
	if d.Off {
		return nil
	}
	v := n.walk(deepCopy(ans), "")
	for _, p := range d.Sort {
		pp, _ := parsePath(p)
		editPath(v, pp, func(parent any, key string) {
			if l, ok := getChild(parent, key).([]any); ok {
				sortList(l)
			}
		})
	}
	for _, p := range d.Ignore {
		pp, _ := parsePath(p)
		editPath(v, pp, func(parent any, key string) {
			switch x := parent.(type) {
			case map[string]any:
				delete(x, key)
			case []any:
				i, _ := strconv.Atoi(key)
				x[i] = "<ignored>"
			}
		})
	}
	if len(d.Only) > 0 {
		flat := map[string]any{}
		for _, p := range d.Only {
			pp, _ := parsePath(p)
			collect(v, pp, "", flat)
		}
		return flat
	}
	return v
}

func getChild(parent any, key string) any {
	switch x := parent.(type) {
	case map[string]any:
		return x[key]
	case []any:
		i, _ := strconv.Atoi(key)
		return x[i]
	}
	return nil
}

// collect flattens the values a wildcard path designates into "concrete.path" -> value.
func collect(v any, p path, at string, out map[string]any) {
	if len(p) == 0 {
		out[at] = v
		return
	}
	seg, rest := p[0], p[1:]
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if seg == "*" || seg == k {
				collect(e, rest, join(at, k), out)
			}
		}
		if _, ok := x[seg]; !ok && seg != "*" && len(rest) == 0 {
			out[join(at, seg)] = "(absent)"
		}
	case []any:
		for i, e := range x {
			if seg == "*" || seg == strconv.Itoa(i) {
				collect(e, rest, join(at, strconv.Itoa(i)), out)
			}
		}
	}
}

func (n *normalizer) walk(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if volatileKeys[k] {
				delete(x, k)
				continue
			}
			x[k] = n.walk(e, k)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = n.walk(e, key)
		}
		return x
	case string:
		for u, l := range n.unique {
			x = strings.ReplaceAll(x, u, "${"+l+"}")
		}
		// Broker-generated ids (member ids are "<client id>-<uuid>") end up in committed
		// metadata and elsewhere.
		x = uuidRe.ReplaceAllString(x, "<uuid>")
		if len(x) > 64 {
			// Long values are compared by digest: keeps results small and diffs readable.
			sum := sha256.Sum256([]byte(x))
			return fmt.Sprintf("<%d bytes %x...: %s>", len(x), sum[:6], x[:16])
		}
		return x
	case int64:
		// A timestamp inside the cell's window (with an hour of slack) was assigned by a clock,
		// not written by the scenario: compare it as "a wall-clock time".
		if (key == "timestamp" || strings.HasSuffix(key, "_timestamp")) &&
			x >= n.start-3600_000 && x <= n.end+3600_000 {
			return WallClock
		}
	}
	return v
}

// diffObservations compares two targets' observations of one scenario and client; it returns
// readable difference lines, empty when they match.
func diffObservations(aName string, a []Observation, bName string, b []Observation) []string {
	var out []string
	n := len(a)
	if len(b) < n {
		n = len(b)
	}
	for i := 0; i < n; i++ {
		if a[i].Step != b[i].Step {
			out = append(out, fmt.Sprintf("step %d: %s ran %q, %s ran %q", i, aName, a[i].Step, bName, b[i].Step))
			return out
		}
		for _, d := range diffValues(a[i].Answer, b[i].Answer, "") {
			out = append(out, fmt.Sprintf("%s: %s (%s vs %s)", a[i].Step, d, aName, bName))
		}
	}
	if len(a) != len(b) {
		out = append(out, fmt.Sprintf("%s observed %d steps, %s observed %d", aName, len(a), bName, len(b)))
	}
	return out
}

// diffValues lists "path: A != B" for every leaf where two values differ.
func diffValues(a, b any, at string) []string {
	if _, ok := a.(absent); ok {
		a = nil // a driver may omit a null field
	}
	if _, ok := b.(absent); ok {
		b = nil
	}
	here := at
	if here == "" {
		here = "(answer)"
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %s != %s", here, clip(show(a)), clip(show(b)))}
		}
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range y {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var out []string
		for _, k := range sorted {
			var av, bv any = absent{}, absent{}
			if v, ok := x[k]; ok {
				av = v
			}
			if v, ok := y[k]; ok {
				bv = v
			}
			out = append(out, diffValues(av, bv, join(at, k))...)
		}
		return out
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return []string{fmt.Sprintf("%s: %s != %s", here, clip(show(a)), clip(show(b)))}
		}
		var out []string
		for i := range x {
			out = append(out, diffValues(x[i], y[i], join(at, strconv.Itoa(i)))...)
		}
		return out
	}
	if scalarEqual(a, b) {
		return nil
	}
	return []string{fmt.Sprintf("%s: %s != %s", here, show(a), show(b))}
}
