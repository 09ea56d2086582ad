package conformance

import (
	"fmt"
	"strings"
)

// renderTools writes COMPATIBILITY.md's section on Kafka's own command-line tools.
func renderTools(b *strings.Builder, tr *ToolsResults) {
	w := func(f string, a ...any) { fmt.Fprintf(b, f, a...) }
	w("## Kafka's own tools\n\n")
	w("`make tools` (`bin/klite-conformance tools`) runs Apache Kafka 4.0.2's command-line tools\n")
	w("(their classes from the kafka-tools and kafka_2.13 jars) with the same arguments against klite\n")
	w("and against Kafka, and compares exit codes and output line by line after a declared\n")
	w("normalization (conformance/kafkatools/normalize.go: addresses, topic and cluster IDs, member\n")
	w("UUIDs, timestamps). Cases are in `scenarios/tools/`; declared differences, with reasons, in\n")
	w("`conformance/tools-known-diffs.yaml`.\n\n")
	if !tr.Updated.IsZero() {
		w("Last run: %s.\n\n", tr.Updated.UTC().Format("2006-01-02 15:04 UTC"))
	}
	count := map[string]int{}
	for _, c := range tr.Cases {
		count[c.Status]++
	}
	w("%d cases: %d match, %d differ only as declared, %d differ, %d error.\n\n", len(tr.Cases),
		count[ToolsMatch], count[ToolsKnown], count[ToolsDiffer], count[ToolsError])
	w("| case | tools | compared runs | result | notes |\n|---|---|---|---|---|\n")
	for _, c := range tr.Cases {
		notes := strings.Join(c.Reasons, "; ")
		if c.Status == ToolsDiffer || c.Status == ToolsError {
			notes = firstLineOf(strings.Join(c.Details, " "))
		}
		w("| [%s](scenarios/tools/%s) | %s | %d | %s | %s |\n", c.Case, c.File, strings.Join(c.Tools, ", "),
			c.Compared, c.Status, strings.ReplaceAll(notes, "|", "\\|"))
	}
	w("\n")
}

func firstLineOf(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
