package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A known gap declared for klite (the default) covers klite-s3, the same broker; one for
// kafka does not; "*" covers every target.
func TestGapsCoverKliteS3(t *testing.T) {
	g := &Gaps{List: []Gap{
		{Scenario: "a", Client: "*", Target: "klite", Reason: "r"},
		{Scenario: "b", Client: "*", Target: "kafka", Reason: "r"},
		{Scenario: "c", Client: "java", Target: "*", Reason: "r"},
	}}
	for _, c := range []struct {
		scenario, client, target string
		want                     bool
	}{
		{"a", "x", S3TargetName, true}, {"a", "x", "klite", true}, {"a", "x", "kafka", false},
		{"b", "x", S3TargetName, false}, {"c", "java", S3TargetName, true}, {"c", "go", S3TargetName, false},
	} {
		if got := g.Find(c.scenario, c.client, c.target) != nil; got != c.want {
			t.Errorf("Find(%s, %s, %s) = %v, want %v", c.scenario, c.client, c.target, got, c.want)
		}
	}
	if !isKlite(S3TargetName) || !isKlite("klite") || isKlite("kafka") {
		t.Error("isKlite")
	}
}

// The moto version shown for klite-s3 is the pinned one.
func TestMotoVersion(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "internal", "motoserver", "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	v := motoVersion(root)
	if v == "?" || !strings.Contains(string(data), "moto[server]=="+v) {
		t.Errorf("motoVersion = %q", v)
	}
	if motoVersion(t.TempDir()) != "?" {
		t.Error("motoVersion without the file")
	}
}
