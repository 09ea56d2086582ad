package conformance

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func obs(off int64) []Observation {
	return []Observation{{Step: "1 p produce", Answer: map[string]any{"offset": off}}}
}

func TestResultsDiffsAndDoc(t *testing.T) {
	gaps := &Gaps{List: []Gap{{Scenario: "txn", Client: "*", Target: "klite", Reason: "transactions not implemented yet"}}}
	r := &Results{Updated: time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC), Tools: map[string]string{"go (harness)": "go1.26"},
		Clients: map[string]string{"franz-go": "v1.22.2", "java": "4.0.0"},
		Targets: map[string]*TargetInfo{
			"klite": {Version: "klite dev", APIs: []APIVersion{{Key: 0, Name: "Produce", Min: 3, Max: 11}}},
			"kafka": {Version: "Apache Kafka 4.0.2", APIs: []APIVersion{{Key: 0, Name: "Produce", Min: 3, Max: 12}, {Key: 1, Name: "Fetch", Min: 4, Max: 17}}},
		},
		Scenarios: []ScenarioInfo{{Name: "acks", Description: "acks work"}, {Name: "txn", Description: "transactions"}}}
	cells := []*CellResult{
		{Scenario: "acks", Client: "franz-go", Target: "klite", Status: StatusPass, Observations: obs(0)},
		{Scenario: "acks", Client: "franz-go", Target: "kafka", Status: StatusPass, Observations: obs(0)},
		{Scenario: "acks", Client: "java", Target: "klite", Status: StatusPass, Observations: obs(1)},
		{Scenario: "acks", Client: "java", Target: "kafka", Status: StatusPass, Observations: obs(0)},
		{Scenario: "txn", Client: "franz-go", Target: "klite", Status: StatusFail, Message: "step 1: boom"},
		{Scenario: "txn", Client: "franz-go", Target: "kafka", Status: StatusPass},
		{Scenario: "txn", Client: "java", Target: "klite", Status: StatusPass},
		{Scenario: "txn", Client: "java", Target: "kafka", Status: StatusNA, Message: "step 2 p txn_init: txn_init unsupported: no"},
	}
	ApplyGaps(cells, gaps)
	if cells[4].Status != StatusKnownGap || cells[4].GapReason == "" {
		t.Fatalf("gap not applied: %+v", cells[4])
	}
	if !cells[6].GapPassed {
		t.Fatal("a passing cell under a gap is not flagged")
	}
	r.Merge(cells)
	// Merging a re-run replaces, not duplicates.
	r.Merge([]*CellResult{{Scenario: "acks", Client: "java", Target: "klite", Status: StatusPass, Observations: obs(1)}})
	if len(r.Cells) != 8 {
		t.Fatalf("merge: %d cells", len(r.Cells))
	}
	r.ComputeDiffs(gaps)
	want := map[string]string{"acks/franz-go": DiffMatch, "acks/java": DiffDiffer, "txn/franz-go": DiffNone, "txn/java": DiffNone}
	for _, d := range r.Diffs {
		if want[d.Scenario+"/"+d.Client] != d.Status {
			t.Fatalf("diff %s/%s = %s, want %s (%v)", d.Scenario, d.Client, d.Status, want[d.Scenario+"/"+d.Client], d.Details)
		}
	}

	// Removing the gap turns the known gap back into a failure and clears the flag.
	r.ReapplyGaps(&Gaps{})
	if c := r.Cell("txn", "franz-go", "klite"); c.Status != StatusFail || c.GapReason != "" {
		t.Fatalf("reapply: %+v", c)
	}
	if c := r.Cell("txn", "java", "klite"); c.GapPassed {
		t.Fatalf("reapply kept GapPassed: %+v", c)
	}
	r.ReapplyGaps(gaps)

	// Round trip through the file, then render.
	f := filepath.Join(t.TempDir(), "r.json")
	if err := r.Save(f); err != nil {
		t.Fatal(err)
	}
	r2, err := LoadResults(f)
	if err != nil {
		t.Fatal(err)
	}
	doc := RenderDoc(r2, gaps)
	for _, s := range []string{
		"| scenario | franz-go | java |",
		"| `acks` | pass | pass |",                                              // klite table
		"| `txn` | known gap[^",                                                 // klite txn/franz-go
		"pass (gap declared, remove it)",                                        // klite txn/java
		"| `txn` | pass | n/a[^",                                                // kafka table
		"| `acks` | match | **differ** |",                                       // differential
		"| 0 | Produce | 3-11 | 3-12 |",                                         // API table
		"| 1 | Fetch | - | 4-17 |",                                              //
		"| client `java` | 4.0.0 |",                                             // versions
		"| target `kafka` | Apache Kafka 4.0.2 |",                               //
		"`acks` / `java` klite differs from Kafka: 1 p produce: offset: 0 != 1", // details
		"]: transactions not implemented yet",                                   // footnote
		"Last run: 2026-11-23 20:00 UTC.",
	} {
		if !strings.Contains(doc, s) {
			t.Errorf("doc lacks %q", s)
		}
	}
	if t.Failed() {
		t.Log(doc)
	}
}

func TestRenderWireSection(t *testing.T) {
	r := &Results{Targets: map[string]*TargetInfo{}, Wire: &WireResults{
		Targets: map[string]*TargetInfo{
			"klite": {APIs: []APIVersion{{Key: 1, Min: 4, Max: 17}, {Key: 3, Min: 0, Max: 13}, {Key: 18, Min: 0, Max: 4}}},
			"kafka": {APIs: []APIVersion{{Key: 1, Min: 4, Max: 17}, {Key: 3, Min: 0, Max: 13}}},
		},
		Variants: []*WireVariant{
			{Case: "fetch", File: "records.yaml", Key: 1, Version: 4, Status: WireMatch,
				Steps: []WireStep{{Key: 0, Version: 12, Status: WireMatch}, {Key: 1, Version: 4, Status: WireMatch}}},
			{Case: "fetch", File: "records.yaml", Key: 1, Version: 5, Status: WireKnown, Reasons: []string{"fixed on branch x"},
				Steps: []WireStep{{Key: 0, Version: 12, Status: WireMatch}, {Key: 1, Version: 5, Status: WireKnown}}},
			{Case: "md", File: "topics.yaml", Key: 3, Version: -1, Status: WireDiffer, Details: []string{"step 0 Metadata v13: Topics.0.ErrorCode: klite=0 kafka=3"},
				Steps: []WireStep{{Key: 3, Version: 13, Status: WireDiffer}}},
		}}}
	doc := RenderDoc(r, nil)
	for _, want := range []string{
		"## Wire-level differential",
		"3 case variants: 1 match, 1 differ only as declared, 1 differ, 0 klite-only, 0 error.",
		"| 0 | Produce | - | - | 0 | 2 | 2 | 0 | 0 | [records.yaml](scenarios/wire/records.yaml) |",
		"| 1 | Fetch | 4-17 | 4-17 | 2 | 2 | 1 | 1 | 0 | [records.yaml](scenarios/wire/records.yaml) |",
		"| 3 | Metadata | 0-13 | 0-13 | 1 | 1 | 0 | 0 | **1** | [topics.yaml](scenarios/wire/topics.yaml) |",
		"| 18 | ApiVersions (no case) | 0-4 | - | 0 | 0 | 0 | 0 | 0 |  |",
		"- `md` (differ): step 0 Metadata v13: Topics.0.ErrorCode: klite=0 kafka=3",
		"| fixed on branch x | fetch v5 |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("doc lacks %q", want)
		}
	}
	if strings.Contains(RenderDoc(&Results{Targets: map[string]*TargetInfo{}}, nil), "Wire-level") {
		t.Error("wire section without wire results")
	}
}
