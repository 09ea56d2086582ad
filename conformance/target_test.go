package conformance

import (
	"context"
	"os"
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
