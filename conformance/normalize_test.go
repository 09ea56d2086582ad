package conformance

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	n := &normalizer{unique: map[string]string{"t-franz-go-abc": "t"}, start: 1_700_000_000_000, end: 1_700_000_060_000}
	ans := map[string]any{"id": int64(3), "ok": true, "message": "broker said x", "cluster_id": "c1",
		"elapsed_ms": int64(12),
		"records": []any{
			map[string]any{"topic": "t-franz-go-abc", "offset": int64(1), "timestamp": int64(1_700_000_001_000), "member_id": "m-1", "metadata": "c-a-8ba91e65-afea-4a98-8a52-ee74bc36b94d"},
			map[string]any{"topic": "t-franz-go-abc", "offset": int64(0), "timestamp": int64(1_600_000_000_000), "value": strings.Repeat("x", 100)},
		}}
	got := n.normalize(ans, DiffSpec{Sort: []string{"records"}})
	// Sorted by canonical JSON, so the record with metadata comes first.
	want := `{"ok":true,"records":[{"metadata":"c-a-\u003cuuid\u003e","offset":1,"timestamp":"\u003cwallclock\u003e","topic":"${t}"},` +
		`{"offset":0,"timestamp":1600000000000,"topic":"${t}","value":"\u003c100 bytes `
	if s := canonJSON(got); !strings.HasPrefix(s, want) {
		t.Fatalf("normalized: %s", s)
	}
	only := n.normalize(ans, DiffSpec{Only: []string{"records.*.offset", "error"}})
	if s := canonJSON(only); s != `{"error":"(absent)","records.0.offset":1,"records.1.offset":0}` {
		t.Fatalf("only: %s", s)
	}
	ign := n.normalize(ans, DiffSpec{Ignore: []string{"records.*.offset", "records"}})
	if s := canonJSON(ign); s != `{"ok":true}` {
		t.Fatalf("ignore: %s", s)
	}
	if n.normalize(ans, DiffSpec{Off: true}) != nil {
		t.Fatal("diff off still observed")
	}
	// The input answer is not modified.
	if ans["id"] != int64(3) {
		t.Fatal("normalize mutated its input")
	}
}

func TestDiffObservations(t *testing.T) {
	a := []Observation{{Step: "1 p produce", Answer: map[string]any{"ok": true, "results": []any{map[string]any{"offset": int64(0), "error": nil}}}},
		{Step: "2 c consume", Answer: map[string]any{"ok": false, "error": "UNKNOWN_TOPIC_OR_PARTITION"}}}
	b := []Observation{{Step: "1 p produce", Answer: map[string]any{"ok": true, "results": []any{map[string]any{"offset": int64(1)}}}},
		{Step: "2 c consume", Answer: map[string]any{"ok": false, "error": "UNKNOWN_TOPIC_OR_PARTITION"}}}
	d := diffObservations("kafka", a, "klite", b)
	if len(d) != 1 || d[0] != "1 p produce: results.0.offset: 0 != 1 (kafka vs klite)" {
		t.Fatalf("diff: %q", d)
	}
	if d := diffObservations("kafka", a, "klite", a); len(d) != 0 {
		t.Fatalf("identical observations differ: %q", d)
	}
	if d := diffObservations("kafka", a, "klite", b[:1]); len(d) != 2 || !strings.Contains(d[1], "kafka observed 2 steps, klite observed 1") {
		t.Fatalf("length diff: %q", d)
	}
	c := []Observation{{Step: "1 p consume", Answer: nil}}
	if d := diffObservations("kafka", a, "klite", c); !strings.Contains(d[0], `ran "1 p produce"`) {
		t.Fatalf("step mismatch: %q", d)
	}
}
