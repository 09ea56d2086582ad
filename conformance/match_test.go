package conformance

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	ans := map[string]any{"ok": true, "offset": int64(5), "records": []any{
		map[string]any{"key": "a", "offset": int64(0), "headers": []any{}},
		map[string]any{"key": nil, "offset": int64(1)},
	}}
	cases := []struct {
		name string
		pat  any
		fail string // substring of the mismatch; "" means it must match
	}{
		{"subset", map[string]any{"offset": int64(5)}, ""},
		{"float equals int", map[string]any{"offset": 5.0}, ""},
		{"wrong scalar", map[string]any{"offset": int64(6)}, "offset: got 5, want 6"},
		{"null matches absent", map[string]any{"error": nil}, ""},
		{"missing key", map[string]any{"error": "X"}, "error: missing"},
		{"list length", map[string]any{"records": []any{map[string]any{}}}, "got 2 elements, want 1"},
		{"list elements", map[string]any{"records": []any{map[string]any{"key": "a"}, map[string]any{"key": nil}}}, ""},
		{"element mismatch", map[string]any{"records": []any{map[string]any{"key": "b"}, map[string]any{}}}, "records.0.key: got \"a\""},
		{"gte", map[string]any{"offset": map[string]any{"$gte": int64(5), "$lt": int64(6)}}, ""},
		{"gt fails", map[string]any{"offset": map[string]any{"$gt": int64(5)}}, "offset: got 5, want gt 5"},
		{"oneOf", map[string]any{"offset": map[string]any{"$oneOf": []any{int64(-1), int64(5)}}}, ""},
		{"oneOf fails", map[string]any{"offset": map[string]any{"$oneOf": []any{int64(1)}}}, "want one of"},
		{"len", map[string]any{"records": map[string]any{"$len": int64(2)}}, ""},
		{"len fails", map[string]any{"records": map[string]any{"$len": map[string]any{"$gte": int64(3)}}}, "records(len)"},
		{"each", map[string]any{"records": map[string]any{"$each": map[string]any{"offset": map[string]any{"$lte": int64(1)}}}}, ""},
		{"each fails", map[string]any{"records": map[string]any{"$each": map[string]any{"key": "a"}}}, "records.1.key"},
		{"contains", map[string]any{"records": map[string]any{"$contains": []any{map[string]any{"offset": int64(1)}}}}, ""},
		{"unordered", map[string]any{"records": map[string]any{"$unordered": []any{map[string]any{"offset": int64(1)}, map[string]any{"offset": int64(0)}}}}, ""},
		{"unordered fails", map[string]any{"records": map[string]any{"$unordered": []any{map[string]any{"offset": int64(1)}, map[string]any{"offset": int64(1)}}}}, "no element matches"},
		{"any", map[string]any{"ok": map[string]any{"$any": true}}, ""},
		{"any missing", map[string]any{"nope": map[string]any{"$any": true}}, "nope: missing"},
		{"ignore", map[string]any{"nope": map[string]any{"$ignore": true}}, ""},
		{"ne", map[string]any{"offset": map[string]any{"$ne": int64(5)}}, "want anything else"},
		{"not", map[string]any{"records": map[string]any{"$not": map[string]any{"$len": int64(0)}}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(match(c.pat, ans, ""), "; ")
			if c.fail == "" && got != "" {
				t.Fatalf("want match, got %s", got)
			}
			if c.fail != "" && !strings.Contains(got, c.fail) {
				t.Fatalf("want mismatch containing %q, got %q", c.fail, got)
			}
		})
	}
}
