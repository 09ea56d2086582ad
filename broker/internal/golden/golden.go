// Package golden runs golden-file tests: every script file matching a pattern is run, and
// the transcript it yields must equal the .golden file next to it. `go test ... -update`
// rewrites the golden files from the transcripts instead (then read them in git diff).
// Imported by tests only (the group and transaction coordinators' trace tests).
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden files from the transcripts")

// Run runs run on every file matching pattern (a glob ending in the scripts' extension),
// as a subtest named after the file, and compares each transcript with the file's .golden.
func Run(t *testing.T, pattern string, run func(t *testing.T, script string) string) {
	t.Helper()
	files, _ := filepath.Glob(pattern)
	if len(files) == 0 {
		t.Fatalf("no files match %s", pattern)
	}
	for _, f := range files {
		base := strings.TrimSuffix(f, filepath.Ext(f))
		t.Run(filepath.Base(base), func(t *testing.T) {
			script, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := run(t, string(script))
			golden := base + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Fatalf("transcript differs from %s (run with -update to see it in git diff):\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}
