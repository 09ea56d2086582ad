package kafkatools

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	in := "Topic: tools-1-a\tTopicId: 8wRLOKf4RhCHYAlz_5sAWA\tLeader: 1\n" +
		"SLF4J: a binding\n" +
		"consumer-g-1-1d7f8a2c-3b4e-4f5a-9b6c-7d8e9f0a1b2c /127.0.0.1 at 127.0.0.1:40123 since 1796540457660   \n" +
		`{"logDir":"/tmp/x/data","size":0}` + "\n" +
		`{"name":"tool_data","sent":5,"acked":5,"target_throughput":-1,"avg_throughput":2.474022761009401}` + "\n\n"
	got := Normalize(in, false)
	want := []string{
		"Topic: tools-1-a\tTopicId: <uuid>\tLeader: 1",
		"consumer-g-1-<uuid> /127.0.0.1 at <broker> since <ts>",
		`{"logDir":"<dir>","size":0}`,
		`{"name":"tool_data","sent":5,"acked":5,"target_throughput":-1,"avg_throughput":<rate>}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	// A lower-case 22-character name is not an ID.
	if got := Normalize("topic abcdefghijklmnopqrstuv", false); got[0] != "topic abcdefghijklmnopqrstuv" {
		t.Fatalf("run name replaced: %q", got)
	}
	if got := Normalize("b\na\n", true); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("sorted: %q", got)
	}
}

func TestLoadDirChecks(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) error {
		if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadDir(dir)
		return err
	}
	if err := write("cases:\n  - name: a\n    steps:\n      - tool: kafka-nope\n"); err == nil || !strings.Contains(err.Error(), "unknown tool") {
		t.Fatalf("unknown tool: %v", err)
	}
	if err := write("cases:\n  - name: a\n    steps:\n      - tool: kafka-topics\n        args: ['{{file:x}}']\n"); err == nil || !strings.Contains(err.Error(), "names no entry") {
		t.Fatalf("missing file: %v", err)
	}
	if err := write("cases:\n  - name: a\n    files: {x: '{{topic:t}}'}\n    steps:\n      - tool: kafka-topics\n        args: ['{{file:x}}', '{{bootstrap}}', '{{topic:t}}']\n"); err != nil {
		t.Fatal(err)
	}
	if got := expand("{{bootstrap}} {{topic:t}} {{file:x}}", "p-", "127.0.0.1:1", map[string]string{"x": "/f"}); got != "127.0.0.1:1 p-topic-t /f" {
		t.Fatalf("expand: %q", got)
	}
}

// The repository's own case files load.
func TestRepositoryCases(t *testing.T) {
	cases, err := LoadDir(filepath.Join("..", "..", "scenarios", "tools"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 10 {
		t.Fatalf("%d tool cases", len(cases))
	}
	if _, err := LoadKnown(filepath.Join("..", "tools-known-diffs.yaml")); err != nil {
		t.Fatal(err)
	}
}
