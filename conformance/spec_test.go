package conformance

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const goodSpec = `name: demo
description: a demo
topics:
  - name: t
    partitions: 2
names: [g]
actors: [p, c]
steps:
  - actor: p
    op: produce
    args:
      topic: "${t}"
      records: [{$records: {count: 2, key: "k{i}", size: 10}}]
    save: {off: results.0.offset}
  - actor: c
    op: consume
    args: {topic: "${t}", from: {$var: off}}
    expect:
      records: {$len: {$gte: 1}}
    diff: {ignore: [records.*.timestamp], sort: [records]}
  - parallel:
      - {actor: p, op: list_offsets, args: {topic: "${t}", partition: 0, spec: latest}}
      - {actor: c, op: group_subscribe, args: {group: "${g}", topics: ["${t}"]}}
    retry: 3
`

func TestParseGood(t *testing.T) {
	s, err := Parse("scenarios/demo.yaml", []byte(goodSpec))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "demo" || len(s.Topics) != 1 || s.Topics[0].Partitions != 2 || len(s.Actors) != 2 || len(s.Steps) != 3 {
		t.Fatalf("unexpected spec: %+v", s)
	}
	if s.Steps[0].Save["off"] != "results.0.offset" {
		t.Fatalf("save: %v", s.Steps[0].Save)
	}
	if got := s.Steps[1].Diff; len(got.Ignore) != 1 || got.Sort[0] != "records" {
		t.Fatalf("diff: %+v", got)
	}
	if p := s.Steps[2]; len(p.Parallel) != 2 || p.Retry != 3 {
		t.Fatalf("parallel: %+v", p)
	}
}

// Each bad spec must be rejected with file:line: reason.
func TestParseBad(t *testing.T) {
	cases := []struct {
		name, spec string
		line       int
		reason     string
	}{
		{"unknown key", "name: x\nactors: [p]\nsteps:\n  - actor: p\n    op: produce\n    bogus: 1\n", 6, `unknown key "bogus"`},
		{"unknown op", "name: x\nactors: [p]\nsteps:\n  - actor: p\n    op: fly\n", 5, `unknown op "fly"`},
		{"unknown actor", "name: x\nactors: [p]\nsteps:\n  - actor: q\n    op: produce\n", 4, `unknown actor "q"`},
		{"name mismatch", "name: y\nactors: [p]\nsteps:\n  - {actor: p, op: produce}\n", 1, `must equal the file name "x"`},
		{"undeclared name", "name: x\nactors: [p]\nsteps:\n  - actor: p\n    op: produce\n    args:\n      topic: \"${nope}\"\n", 7, "${nope} is not a declared"},
		{"unsaved var", "name: x\nactors: [p]\nsteps:\n  - actor: p\n    op: consume\n    args:\n      from: {$var: o}\n", 7, `variable "o" is not saved`},
		{"matcher in args", "name: x\nactors: [p]\nsteps:\n  - actor: p\n    op: consume\n    args:\n      from: {$gte: 1}\n", 7, "only allowed under expect"},
		{"unknown directive", "name: x\nactors: [p]\nsteps:\n  - actor: p\n    op: consume\n    expect:\n      records: {$sometimes: 1}\n", 7, "unknown directive $sometimes"},
		{"mixed directive", "name: x\nactors: [p]\nsteps:\n  - actor: p\n    op: consume\n    expect:\n      records: {$len: 1, a: 2}\n", 7, "must not be mixed"},
		{"bad partitions", "name: x\ntopics:\n  - name: t\n    partitions: zero\nactors: [p]\nsteps:\n  - {actor: p, op: produce}\n", 4, "positive integer"},
		{"missing steps", "name: x\nactors: [p]\n", 1, "missing steps"},
		{"bad yaml", "name: x\nactors: [p]\nsteps: : :\n", 3, "invalid YAML"},
		{"same actor twice in parallel", "name: x\nactors: [p]\nsteps:\n  - parallel:\n      - {actor: p, op: produce}\n      - {actor: p, op: consume}\n", 6, "appears twice"},
		{"bytes needs int", "name: x\nactors: [p]\nsteps:\n  - actor: p\n    op: produce\n    args:\n      value: {$bytes: lots}\n", 7, "positive integer"},
		{"duplicate actor", "name: x\nactors: [p, p]\nsteps:\n  - {actor: p, op: produce}\n", 2, `actor "p" declared twice`},
		{"sasl actor without security", "name: x\nactors:\n  - {name: p, sasl: {mechanism: PLAIN, user: a, password: b}}\nsteps:\n  - {actor: p, op: produce}\n", 3, "go with `security: sasl`"},
		{"sasl scenario actor without sasl", "name: x\nsecurity: sasl\nactors: [p]\nsteps:\n  - {actor: p, op: produce}\n", 3, "on every actor"},
		{"bad mechanism", "name: x\nsecurity: sasl\nactors:\n  - {name: p, sasl: {mechanism: GSSAPI, user: a, password: b}}\nsteps:\n  - {actor: p, op: produce}\n", 4, `sasl mechanism "GSSAPI"`},
		{"scram users without sasl", "name: x\nscram_users: []\nactors: [p]\nsteps:\n  - {actor: p, op: produce}\n", 2, "needs `security: sasl`"},
		{"scram user mechanism", "name: x\nsecurity: sasl\nscram_users:\n  - {user: u, password: p, mechanisms: [PLAIN]}\nactors:\n  - {name: p, sasl: {mechanism: PLAIN, user: a, password: b}}\nsteps:\n  - {actor: p, op: produce}\n", 4, `scram mechanism "PLAIN"`},
		{"acls without sasl", "name: x\nacls: []\nactors: [p]\nsteps:\n  - {actor: p, op: produce}\n", 2, "acls needs `security: sasl`"},
		{"acl operation", "name: x\nsecurity: sasl\nacls:\n  - {resource: topic, name: t, principal: \"User:a\", operation: fly}\nactors:\n  - {name: p, sasl: {mechanism: PLAIN, user: a, password: b}}\nsteps:\n  - {actor: p, op: produce}\n", 4, "ACLOperation"},
		{"acl without principal", "name: x\nsecurity: sasl\nacls:\n  - {resource: topic, name: t, operation: read}\nactors:\n  - {name: p, sasl: {mechanism: PLAIN, user: a, password: b}}\nsteps:\n  - {actor: p, op: produce}\n", 4, "an acl needs principal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("scenarios/x.yaml", []byte(c.spec))
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("want a LoadError, got %v", err)
			}
			if le.File != "scenarios/x.yaml" || le.Line != c.line || !strings.Contains(le.Reason, c.reason) {
				t.Fatalf("got %q, want scenarios/x.yaml:%d: ...%s...", err, c.line, c.reason)
			}
			if !strings.HasPrefix(err.Error(), "scenarios/x.yaml:") {
				t.Fatalf("error does not start with file:line: %q", err)
			}
		})
	}
}

// The committed scenarios must all load.
func TestRepoScenariosLoad(t *testing.T) {
	specs, err := LoadDir(filepath.Join("..", "scenarios"))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) < 7 {
		t.Fatalf("only %d scenarios", len(specs))
	}
	if _, err := LoadGaps(filepath.Join("known-gaps.yaml")); err != nil {
		t.Fatal(err)
	}
}

func TestLoadGapsNeedsReason(t *testing.T) {
	f := filepath.Join(t.TempDir(), "gaps.yaml")
	os.WriteFile(f, []byte("gaps:\n  - scenario: a\n    reason: r\n  - scenario: b\n"), 0o644)
	_, err := LoadGaps(f)
	var le *LoadError
	if !errors.As(err, &le) || le.Line != 4 {
		t.Fatalf("want error at line 4, got %v", err)
	}
}

func TestExpandGenerators(t *testing.T) {
	c := &expandCtx{names: map[string]string{"t": "t-x-1"}, vars: map[string]any{"o": int64(5)}, now: 1000}
	in := map[string]any{
		"topic": "${t}",
		"from":  map[string]any{"$var": map[string]any{"name": "o", "add": int64(2)}},
		"ts":    map[string]any{"$now": int64(-10)},
		"v":     map[string]any{"$bytes": int64(7)},
		"records": []any{map[string]any{"$records": map[string]any{"count": int64(2), "key": "k{i}", "size": int64(6), "offset_from": int64(3)}},
			map[string]any{"key": "last"}},
		"m": map[string]any{"$gte": map[string]any{"$now": int64(0)}},
	}
	out, err := c.expand(in)
	if err != nil {
		t.Fatal(err)
	}
	m := out.(map[string]any)
	if m["topic"] != "t-x-1" || m["from"] != int64(7) || m["ts"] != int64(990) || len(m["v"].(string)) != 7 {
		t.Fatalf("expand: %v", m)
	}
	recs := m["records"].([]any)
	if len(recs) != 3 {
		t.Fatalf("records not spliced: %v", recs)
	}
	r1 := recs[1].(map[string]any)
	if first, _ := genRecords(map[string]any{"count": int64(2), "first": int64(7), "key": "k{i}", "offset_from": int64(7)}); first[1].(map[string]any)["key"] != "k8" || first[1].(map[string]any)["offset"] != int64(8) {
		t.Fatalf("first: %v", first)
	}
	if r1["key"] != "k1" || r1["offset"] != int64(4) || len(r1["value"].(string)) != 6 || !strings.HasPrefix(r1["value"].(string), "v1") {
		t.Fatalf("record 1: %v", r1)
	}
	if g := m["m"].(map[string]any)["$gte"]; g != int64(1000) {
		t.Fatalf("matcher argument not expanded: %v", g)
	}
	// Deterministic: the same call gives the same bytes; another seed differs.
	if genBytes(50, "a") != genBytes(50, "a") || genBytes(50, "a") == genBytes(50, "b") {
		t.Fatal("genBytes not deterministic per seed")
	}
	if _, err := c.expand(map[string]any{"$var": "missing"}); err == nil {
		t.Fatal("unknown variable expanded")
	}
}

func TestParseAnchorsAndMerge(t *testing.T) {
	spec := `name: m
names: [g]
actors: [a, b]
steps:
  - actor: a
    op: group_subscribe
    args: &sub
      group: "${g}"
      assignor: range
  - actor: b
    op: group_subscribe
    args:
      <<: *sub
      assignor: sticky
  - actor: a
    op: group_subscribe
    args: *sub
`
	s, err := Parse("m.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	b := s.Steps[1].Args.(map[string]any)
	if b["group"] != "${g}" || b["assignor"] != "sticky" || b["<<"] != nil {
		t.Fatalf("merge: %v", b)
	}
	if a := s.Steps[2].Args.(map[string]any); a["assignor"] != "range" {
		t.Fatalf("alias: %v", a)
	}
}

func TestLoadACLs(t *testing.T) {
	spec := "name: x\nsecurity: sasl\nacls:\n  - {resource: transactional_id, name: t, pattern: prefixed, principal: \"User:a\", operation: describe_configs, permission: deny}\n  - {resource: group, name: g, principal: \"User:*\", operation: read}\nactors:\n  - {name: p, sasl: {mechanism: PLAIN, user: a, password: b}}\nsteps:\n  - {actor: p, op: produce}\n"
	dir := t.TempDir()
	path := filepath.Join(dir, "x.yaml")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []ACLSpec{
		{Resource: kmsg.ACLResourceTypeTransactionalId, Name: "t", Pattern: kmsg.ACLResourcePatternTypePrefixed, Principal: "User:a", Host: "*",
			Operation: kmsg.ACLOperationDescribeConfigs, Permission: kmsg.ACLPermissionTypeDeny, Line: 4},
		{Resource: kmsg.ACLResourceTypeGroup, Name: "g", Pattern: kmsg.ACLResourcePatternTypeLiteral, Principal: "User:*", Host: "*",
			Operation: kmsg.ACLOperationRead, Permission: kmsg.ACLPermissionTypeAllow, Line: 5},
	}
	if len(s.ACLs) != 2 || s.ACLs[0] != want[0] || s.ACLs[1] != want[1] {
		t.Fatalf("acls %+v, want %+v", s.ACLs, want)
	}
}
