package conformance

import "time"

// Kafka-tools case statuses (conformance/kafkatools).
const (
	ToolsMatch  = "match"
	ToolsDiffer = "differ"
	ToolsKnown  = "known-diff" // differs, every differing step declared in tools-known-diffs.yaml
	ToolsError  = "error"      // a setup step failed or a tool could not run
)

// ToolsResults is conformance/results/tools.json, written by `klite-conformance tools`.
type ToolsResults struct {
	Updated time.Time              `json:"updated"`
	Targets map[string]*TargetInfo `json:"targets"`
	Cases   []*ToolsCase           `json:"cases"`
}

// ToolsCase is one case's outcome.
type ToolsCase struct {
	Case        string   `json:"case"`
	File        string   `json:"file"`
	Description string   `json:"description,omitempty"`
	Tools       []string `json:"tools"`    // the tools the case's compared steps run
	Compared    int      `json:"compared"` // compared steps
	Status      string   `json:"status"`
	Details     []string `json:"details,omitempty"`
	Reasons     []string `json:"reasons,omitempty"`
}

// LoadToolsResults reads tools.json; a missing file is nil, nil.
func LoadToolsResults(path string) (*ToolsResults, error) { return loadJSON[ToolsResults](path) }

// Save writes the results (indented, atomically).
func (r *ToolsResults) Save(path string) error { return saveJSON(path, r) }
