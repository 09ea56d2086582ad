package conformance

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKliteTargetEnvironment checks that the klite target is started with the short retention
// check and compaction backoff the retention and compaction scenarios wait on. A stand-in
// bin/klite records its KLITE_* environment and exits, so no broker is needed.
func TestKliteTargetEnvironment(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "env.txt")
	script := "#!/bin/sh\nenv | grep '^KLITE_' > '" + out + "'\necho 'stand-in klite exits'\nexit 7\n"
	if err := os.WriteFile(filepath.Join(root, "bin", "klite"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := startTarget(context.Background(), root, "klite", "", "")
	if err == nil || !strings.Contains(err.Error(), "exited before answering ApiVersions") {
		t.Fatalf("want the stand-in's early exit reported, got %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Fields(string(b))
	for _, want := range []string{"KLITE_RETENTION_CHECK_INTERVAL=1s", "KLITE_COMPACTION_BACKOFF=1s"} {
		found := false
		for _, e := range env {
			found = found || e == want
		}
		if !found {
			t.Errorf("klite target environment %q lacks %s", env, want)
		}
	}
}

// The harness's own outputs (results, COMPATIBILITY.md) do not make a build dirty; any other
// change to a tracked file does.
func TestGitDescribeIgnoresHarnessOutputs(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	write("COMPATIBILITY.md", "a")
	write("conformance/results/wire.json", "a")
	write("broker/x.go", "a")
	git("add", ".")
	git("commit", "-q", "-m", "c")
	clean := gitDescribe(dir)
	if !strings.HasPrefix(clean, "dev build ") || strings.HasSuffix(clean, "-dirty") {
		t.Fatalf("clean checkout: %q", clean)
	}
	write("COMPATIBILITY.md", "b")
	write("conformance/results/wire.json", "b")
	if got := gitDescribe(dir); got != clean {
		t.Fatalf("with rewritten harness outputs: %q, want %q", got, clean)
	}
	write("broker/x.go", "b")
	if got := gitDescribe(dir); got != clean+"-dirty" {
		t.Fatalf("with a changed source file: %q, want %q", got, clean+"-dirty")
	}
}
