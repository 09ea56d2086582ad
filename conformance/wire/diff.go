package wire

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Difference is one field that differs between the two targets' normalized answers.
type Difference struct {
	Path  string `json:"path"` // "Topics.0.Partitions.1.ErrorCode"
	Klite string `json:"klite"`
	Kafka string `json:"kafka"`
}

func (d Difference) String() string {
	return fmt.Sprintf("%s: klite=%s kafka=%s", d.Path, d.Klite, d.Kafka)
}

// Diff compares two normalized trees field by field.
func Diff(klite, kafka any) []Difference {
	var out []Difference
	diff("", klite, kafka, &out)
	return out
}

const absent = "(absent)"

func show(v any) string {
	if v == nil {
		return "null"
	}
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func diff(p string, a, b any, out *[]Difference) {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			*out = append(*out, Difference{p, show(a), show(b)})
			return
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
		for _, k := range sorted {
			va, oka := x[k]
			vb, okb := y[k]
			switch {
			case !oka:
				*out = append(*out, Difference{join(p, k), absent, show(vb)})
			case !okb:
				*out = append(*out, Difference{join(p, k), show(va), absent})
			default:
				diff(join(p, k), va, vb, out)
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok {
			*out = append(*out, Difference{p, show(a), show(b)})
			return
		}
		if key := arrayKey(x, y); key != "" {
			diffKeyed(p, key, x, y, out)
			return
		}
		n := len(x)
		if len(y) > n {
			n = len(y)
		}
		for i := 0; i < n; i++ {
			ip := join(p, fmt.Sprint(i))
			switch {
			case i >= len(x):
				*out = append(*out, Difference{ip, absent, show(y[i])})
			case i >= len(y):
				*out = append(*out, Difference{ip, show(x[i]), absent})
			default:
				diff(ip, x[i], y[i], out)
			}
		}
	default:
		if show(a) != show(b) {
			*out = append(*out, Difference{p, show(a), show(b)})
		}
	}
}

// arrayKey is the identifying field shared by every element of both arrays, with unique
// values on each side; "" when the arrays are not keyed that way.
func arrayKey(a, b []any) string {
	if len(a) == 0 || len(b) == 0 {
		return ""
	}
	first, ok := a[0].(map[string]any)
	if !ok {
		return ""
	}
	for _, k := range sortKeys {
		if _, ok := first[k]; !ok {
			continue
		}
		if uniqueKeys(a, k) && uniqueKeys(b, k) {
			return k
		}
		return ""
	}
	return ""
}

func uniqueKeys(a []any, k string) bool {
	seen := map[string]bool{}
	for _, e := range a {
		m, ok := e.(map[string]any)
		if !ok {
			return false
		}
		v, ok := m[k]
		if !ok || seen[show(v)] {
			return false
		}
		seen[show(v)] = true
	}
	return true
}

// diffKeyed pairs elements by their key: a missing element is one difference, not a shift of
// every element after it. Its path segment is {Key=value}.
func diffKeyed(p, key string, a, b []any, out *[]Difference) {
	idx := func(arr []any) (map[string]any, []string) {
		m := map[string]any{}
		var order []string
		for _, e := range arr {
			// a "." inside a key value would read as a path separator
			k := strings.ReplaceAll(show(e.(map[string]any)[key]), ".", "_")
			m[k] = e
			order = append(order, k)
		}
		return m, order
	}
	ma, oa := idx(a)
	mb, ob := idx(b)
	for _, k := range oa {
		seg := join(p, "{"+key+"="+strings.Trim(k, `"`)+"}")
		if vb, ok := mb[k]; ok {
			diff(seg, ma[k], vb, out)
		} else {
			*out = append(*out, Difference{seg, show(ma[k]), absent})
		}
	}
	for _, k := range ob {
		if _, ok := ma[k]; !ok {
			*out = append(*out, Difference{join(p, "{"+key+"="+strings.Trim(k, `"`)+"}"), absent, show(mb[k])})
		}
	}
}

// GlobPath is a difference's path with array indexes as "*", the form known-difference
// declarations and ignore lists use.
func GlobPath(p string) string {
	parts := strings.Split(p, ".")
	for i, s := range parts {
		if s != "" && (strings.Trim(s, "0123456789") == "" || strings.HasPrefix(s, "{")) {
			parts[i] = "*"
		}
	}
	return strings.Join(parts, ".")
}
