package conformance

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// absent stands for a key missing from an answer.
type absent struct{}

// match checks an expanded pattern against an answer value and returns the mismatches, each
// "path: reason". Maps match as subsets (keys not in the pattern are not checked); lists match
// element-wise with equal length; $-directives are matchers (see scenarios/README.md).
func match(pat, act any, at string) []string {
	if m, ok := pat.(map[string]any); ok && isDirective(m) {
		var out []string
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, matchDirective(k, m[k], act, at)...)
		}
		return out
	}
	if _, ok := act.(absent); ok {
		if pat == nil {
			return nil // absent and null are the same for a driver
		}
		return []string{fmt.Sprintf("%s: missing, want %s", at, show(pat))}
	}
	switch p := pat.(type) {
	case map[string]any:
		a, ok := act.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want an object", at, show(act))}
		}
		keys := make([]string, 0, len(p))
		for k := range p {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []string
		for _, k := range keys {
			var av any = absent{}
			if v, ok := a[k]; ok {
				av = v
			}
			out = append(out, match(p[k], av, join(at, k))...)
		}
		return out
	case []any:
		a, ok := act.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %s, want a list of %d", at, show(act), len(p))}
		}
		if len(a) != len(p) {
			return []string{fmt.Sprintf("%s: got %d elements, want %d (got %s)", at, len(a), len(p), clip(show(a)))}
		}
		var out []string
		for i := range p {
			out = append(out, match(p[i], a[i], join(at, strconv.Itoa(i)))...)
		}
		return out
	}
	if !scalarEqual(pat, act) {
		return []string{fmt.Sprintf("%s: got %s, want %s", at, show(act), show(pat))}
	}
	return nil
}

func isDirective(m map[string]any) bool {
	for k := range m {
		if strings.HasPrefix(k, "$") {
			return true
		}
	}
	return false
}

func matchDirective(d string, arg, act any, at string) []string {
	fail := func(f string, a ...any) []string { return []string{at + ": " + fmt.Sprintf(f, a...)} }
	_, isAbsent := act.(absent)
	switch d {
	case "$ignore":
		return nil
	case "$any":
		if isAbsent {
			return fail("missing")
		}
		return nil
	case "$gte", "$gt", "$lte", "$lt":
		a, ok1 := num(act)
		b, ok2 := num(arg)
		if !ok1 || !ok2 {
			return fail("got %s, want a number %s %s", show(act), d[1:], show(arg))
		}
		ok := map[string]bool{"$gte": a >= b, "$gt": a > b, "$lte": a <= b, "$lt": a < b}[d]
		if !ok {
			return fail("got %s, want %s %s", show(act), d[1:], show(arg))
		}
		return nil
	case "$ne":
		if len(match(arg, act, at)) == 0 {
			return fail("got %s, want anything else", show(act))
		}
		return nil
	case "$not":
		if len(match(arg, act, at)) == 0 {
			return fail("got %s, which matches %s", show(act), show(arg))
		}
		return nil
	case "$oneOf":
		alts, ok := arg.([]any)
		if !ok {
			return fail("$oneOf needs a list, got %s", show(arg))
		}
		for _, alt := range alts {
			if len(match(alt, act, at)) == 0 {
				return nil
			}
		}
		return fail("got %s, want one of %s", show(act), show(arg))
	case "$len":
		var n int
		switch a := act.(type) {
		case []any:
			n = len(a)
		case string:
			n = len(a)
		case nil:
			n = 0
		default:
			return fail("got %s, want something with a length", show(act))
		}
		return match(arg, int64(n), at+"(len)")
	case "$each":
		a, ok := act.([]any)
		if !ok {
			return fail("got %s, want a list", show(act))
		}
		for i, e := range a {
			if errs := match(arg, e, join(at, strconv.Itoa(i))); len(errs) > 0 {
				return errs
			}
		}
		return nil
	case "$contains", "$unordered":
		a, ok := act.([]any)
		if !ok {
			return fail("got %s, want a list", show(act))
		}
		want, ok := arg.([]any)
		if !ok {
			return fail("%s needs a list, got %s", d, show(arg))
		}
		if d == "$unordered" && len(a) != len(want) {
			return fail("got %d elements, want %d (got %s)", len(a), len(want), clip(show(a)))
		}
		used := make([]bool, len(a))
		for _, w := range want {
			found := false
			for i, e := range a {
				if !used[i] && len(match(w, e, at)) == 0 {
					used[i], found = true, true
					break
				}
			}
			if !found {
				return fail("no element matches %s (got %s)", show(w), clip(show(a)))
			}
		}
		return nil
	}
	return fail("unknown matcher %s", d)
}

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

func scalarEqual(a, b any) bool {
	if x, ok := num(a); ok {
		y, ok := num(b)
		return ok && x == y
	}
	return a == b
}

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

func show(v any) string {
	if _, ok := v.(absent); ok {
		return "(absent)"
	}
	return canonJSON(v)
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
