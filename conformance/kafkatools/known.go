package kafkatools

import (
	"fmt"
	"os"
	"path"

	"gopkg.in/yaml.v3"
)

// Known is one declared difference between a tool's output on klite and on Kafka.
type Known struct {
	Case   string `yaml:"case"` // name or glob
	Step   *int   `yaml:"step"` // step index; default every step
	Reason string `yaml:"reason"`
}

// LoadKnown reads conformance/tools-known-diffs.yaml (a missing file declares nothing).
func LoadKnown(p string) ([]Known, error) {
	data, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		Diffs []Known `yaml:"diffs"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	for i, k := range doc.Diffs {
		if k.Case == "" || k.Reason == "" {
			return nil, fmt.Errorf("entry %d: case and reason are required", i)
		}
		if _, err := path.Match(k.Case, ""); err != nil {
			return nil, fmt.Errorf("entry %d: bad glob %q", i, k.Case)
		}
	}
	return doc.Diffs, nil
}

// covering returns the reason declared for a case's step, or "".
func covering(known []Known, caseName string, step int) string {
	for _, k := range known {
		if ok, _ := path.Match(k.Case, caseName); ok && (k.Step == nil || *k.Step == step) {
			return k.Reason
		}
	}
	return ""
}
