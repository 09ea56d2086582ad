//go:build integration

package main

// franz-go's own integration tests (github.com/twmb/franz-go/pkg/kgo, the version go.mod
// pins) run against a klite process: the group ETL chains over classic and KIP-848 consumer
// groups (range and sticky, static members) and the simple group test. franz-go skips its
// KIP-848 variants on a broker without ConsumerGroupHeartbeat v1; here they must run and pass.
// Test848RegexBrokerResolves needs the internal __consumer_offsets topic in Metadata and in the
// broker's regex resolution (broker/internal_topics.go).

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestFranzGoSuiteGroups(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH")
	}
	p := startKlite(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-v", "-run", "^(TestGroupETL|TestGroupSimple|Test848RegexBrokerResolves)$",
		"github.com/twmb/franz-go/pkg/kgo")
	cmd.Env = append(os.Environ(), "KGO_SEEDS="+p.addr, "KGO_TEST_RF=1", "KGO_TEST_RECORDS=2000")
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil {
		t.Fatalf("franz-go's tests against klite: %v\n%s", err, tailOf(text, 6000))
	}
	// Every KIP-848 variant ran (a SKIP would mean franz-go found no KIP-848 support).
	// (TestGroupSimple/848 may skip: franz-go reads the broker's versions lazily, and that
	// subtest can look before any other test has asked.)
	want := []string{"TestGroupETL/range/848", "TestGroupETL/sticky/848", "TestGroupETL/sticky/848/static", "Test848RegexBrokerResolves"}
	for _, name := range want {
		if !regexp.MustCompile(`--- PASS: ` + regexp.QuoteMeta(name) + ` `).MatchString(text) {
			t.Errorf("%s did not pass:\n%s", name, tailOf(text, 4000))
		}
	}
	if strings.Contains(text, "--- SKIP: TestGroupETL") {
		t.Errorf("franz-go skipped group ETL tests against klite:\n%s", tailOf(text, 4000))
	}
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
