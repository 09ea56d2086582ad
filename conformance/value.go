package conformance

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Values handled by the harness are JSON-like: map[string]any, []any, string, int64, float64,
// bool and nil. canon converts decoded YAML/JSON into that form.
func canon(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = canon(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = canon(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = canon(e)
		}
		return out
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case uint64:
		return int64(x)
	case float32:
		return canonFloat(float64(x))
	case float64:
		return canonFloat(x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return canonFloat(f)
	}
	return v
}

func canonFloat(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f)
	}
	return f
}

// decodeJSON parses one answer line into canonical form.
func decodeJSON(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return canon(m).(map[string]any), nil
}

// expandCtx holds what templates refer to during one cell.
type expandCtx struct {
	names map[string]string // logical name -> unique name for this cell
	vars  map[string]any
	now   int64
}

func (c *expandCtx) interp(s string) string {
	return interpRe.ReplaceAllStringFunc(s, func(m string) string {
		if r, ok := c.names[m[2:len(m)-1]]; ok {
			return r
		}
		return m
	})
}

// expand evaluates generators and ${name} references; matcher maps are kept (their arguments
// expanded) for match to interpret.
func (c *expandCtx) expand(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return c.interp(x), nil
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			ev, err := c.expand(e)
			if err != nil {
				return nil, err
			}
			// $records inside a list splices its records into the list.
			if m, ok := e.(map[string]any); ok && len(m) == 1 && m["$records"] != nil {
				out = append(out, ev.([]any)...)
				continue
			}
			out = append(out, ev)
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ev, err := c.expand(e)
			if err != nil {
				return nil, err
			}
			out[k] = ev
		}
		if len(out) == 1 {
			for k, arg := range out {
				if generators[k] {
					return c.generate(k, arg)
				}
			}
		}
		return out, nil
	}
	return v, nil
}

func (c *expandCtx) generate(d string, arg any) (any, error) {
	switch d {
	case "$bytes":
		n, seed := int64(0), ""
		if m, ok := arg.(map[string]any); ok {
			n, _ = m["n"].(int64)
			seed = fmt.Sprint(m["seed"])
		} else {
			n, _ = arg.(int64)
		}
		return genBytes(int(n), seed), nil
	case "$now":
		off, _ := arg.(int64)
		return c.now + off, nil
	case "$var":
		name, add := "", int64(0)
		if m, ok := arg.(map[string]any); ok {
			name, _ = m["name"].(string)
			add, _ = m["add"].(int64)
		} else {
			name, _ = arg.(string)
		}
		v, ok := c.vars[name]
		if !ok {
			return nil, fmt.Errorf("variable %q was not saved (did its step fail?)", name)
		}
		if add != 0 {
			i, ok := v.(int64)
			if !ok {
				return nil, fmt.Errorf("variable %q is %v, cannot add %d", name, v, add)
			}
			return i + add, nil
		}
		return v, nil
	case "$records":
		return genRecords(arg.(map[string]any))
	}
	return nil, fmt.Errorf("unknown generator %s", d)
}

// genBytes returns n printable bytes, deterministic in (n, seed), not compressible to nothing.
func genBytes(n int, seed string) string {
	h := fnv.New64a()
	h.Write([]byte(seed))
	x := h.Sum64() | 1
	const alpha = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = alpha[x%uint64(len(alpha))]
	}
	return string(b)
}

func genRecords(m map[string]any) ([]any, error) {
	count, _ := m["count"].(int64)
	size, _ := m["size"].(int64)
	out := make([]any, 0, count)
	first, _ := m["first"].(int64) // {i} counts from here
	for i := int64(0); i < count; i++ {
		idx := strconv.FormatInt(first+i, 10)
		sub := func(v any) any {
			if s, ok := v.(string); ok {
				return strings.ReplaceAll(s, "{i}", idx)
			}
			return v
		}
		r := map[string]any{}
		if k, ok := m["key"]; ok {
			r["key"] = sub(k)
		}
		val := "v" + idx
		if v, ok := m["value"]; ok {
			if v == nil {
				r["value"] = nil
			} else {
				val = fmt.Sprint(sub(v))
			}
		}
		if _, isNull := r["value"]; !isNull {
			if size > 0 && int64(len(val)) < size {
				val += genBytes(int(size)-len(val), idx)
			}
			r["value"] = val
		}
		if p, ok := m["partition"]; ok {
			r["partition"] = p
		}
		if t, ok := m["timestamp"]; ok {
			if ti, ok := t.(int64); ok {
				r["timestamp"] = ti + i
			}
		}
		if hs, ok := m["headers"].([]any); ok {
			var hl []any
			for _, h := range hs {
				hm, _ := h.(map[string]any)
				hl = append(hl, map[string]any{"key": sub(hm["key"]), "value": sub(hm["value"])})
			}
			r["headers"] = hl
		}
		if of, ok := m["offset_from"].(int64); ok {
			r["offset"] = of + i
		}
		out = append(out, r)
	}
	return out, nil
}

// path is a parsed dotted path: keys, list indexes, or * for every element.
type path []string

func parsePath(s string) (path, error) {
	if s == "" {
		return nil, fmt.Errorf("empty path")
	}
	p := strings.Split(s, ".")
	for _, seg := range p {
		if seg == "" {
			return nil, fmt.Errorf("bad path %q", s)
		}
	}
	return p, nil
}

// getPath returns the value at a path without wildcards.
func getPath(v any, s string) (any, bool) {
	p, err := parsePath(s)
	if err != nil {
		return nil, false
	}
	for _, seg := range p {
		switch x := v.(type) {
		case map[string]any:
			e, ok := x[seg]
			if !ok {
				return nil, false
			}
			v = e
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// editPath calls f on every (container, key) the path designates; f may delete or rewrite.
func editPath(v any, p path, f func(parent any, key string)) {
	if len(p) == 0 {
		return
	}
	seg, rest := p[0], p[1:]
	switch x := v.(type) {
	case map[string]any:
		keys := []string{seg}
		if seg == "*" {
			keys = keys[:0]
			for k := range x {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			if _, ok := x[k]; !ok {
				continue
			}
			if len(rest) == 0 {
				f(x, k)
			} else {
				editPath(x[k], rest, f)
			}
		}
	case []any:
		for i := range x {
			if seg != "*" && seg != strconv.Itoa(i) {
				continue
			}
			if len(rest) == 0 {
				f(x, strconv.Itoa(i))
			} else {
				editPath(x[i], rest, f)
			}
		}
	}
}

// deepCopy copies a canonical value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// canonJSON is a stable textual form (sorted keys) used for sorting and equality.
func canonJSON(v any) string {
	b, _ := json.Marshal(v) // encoding/json sorts map keys
	return string(b)
}

func sortList(l []any) {
	sort.SliceStable(l, func(i, j int) bool { return canonJSON(l[i]) < canonJSON(l[j]) })
}
