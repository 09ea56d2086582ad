package kafkatools

// Normalization of a tool's output before the two targets' outputs are compared. Declared here:
//   - the target's address (and any 127.0.0.1:port) becomes <broker>;
//   - Kafka UUIDs printed base64 (topic and cluster IDs: 22 characters with an upper-case
//     letter) and Java UUIDs (client-generated member IDs) become <uuid>;
//   - epoch-millisecond timestamps (13 digits) become <ts>;
//   - log directory paths in kafka-log-dirs' JSON become <dir> (each target's own temp dir);
//   - kafka-verifiable-producer's measured "avg_throughput" becomes <rate>;
//   - log lines that reach stdout (SLF4J, log4j) are dropped, trailing blanks trimmed, and
//     empty lines at the end dropped;
//   - with `sort: true` the lines are sorted (tools that print hash-map order).

import (
	"regexp"
	"sort"
	"strings"
)

var (
	addrRE     = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	javaUUIDRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	kafkaIDRE  = regexp.MustCompile(`(^|[^A-Za-z0-9_-])([A-Za-z0-9_-]{22})($|[^A-Za-z0-9_-])`)
	upperRE    = regexp.MustCompile(`[A-Z]`)
	tsRE       = regexp.MustCompile(`\b1[0-9]{12}\b`)
	logDirRE   = regexp.MustCompile(`"logDir":"[^"]*"`)
	rateRE     = regexp.MustCompile(`"avg_throughput":[-0-9.E]+`)
)

// Normalize applies the declared normalization to one output.
func Normalize(out string, sorted bool) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimRight(l, " \t\r")
		if strings.HasPrefix(l, "SLF4J") || strings.HasPrefix(l, "log4j") {
			continue
		}
		l = addrRE.ReplaceAllString(l, "<broker>")
		l = javaUUIDRE.ReplaceAllString(l, "<uuid>")
		l = replaceKafkaIDs(l)
		l = tsRE.ReplaceAllString(l, "<ts>")
		l = logDirRE.ReplaceAllString(l, `"logDir":"<dir>"`)
		l = rateRE.ReplaceAllString(l, `"avg_throughput":<rate>`)
		lines = append(lines, l)
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if sorted {
		sort.Strings(lines)
	}
	return lines
}

// replaceKafkaIDs replaces 22-character base64 tokens holding an upper-case letter (run names
// are lower-case, so they never match).
func replaceKafkaIDs(l string) string {
	for range 8 { // matches may share a separator: a few passes, bounded
		changed := false
		l = kafkaIDRE.ReplaceAllStringFunc(l, func(m string) string {
			sm := kafkaIDRE.FindStringSubmatch(m)
			if !upperRE.MatchString(sm[2]) {
				return m
			}
			changed = true
			return sm[1] + "<uuid>" + sm[3]
		})
		if !changed {
			break
		}
	}
	return l
}
