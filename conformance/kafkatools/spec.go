// Package kafkatools is the Kafka-tools layer of the conformance harness: Apache Kafka 4.0's own
// command-line tools (kafka-topics, kafka-configs, kafka-consumer-groups, ...; their classes
// from the kafka-tools and kafka_2.13 jars `make kafka-jars` fetches) run against klite and
// against Kafka with the same arguments; their output is normalized (normalize.go) and compared
// line by line. Known differences are declared with a reason in
// conformance/tools-known-diffs.yaml.
//
// A case file (scenarios/tools/*.yaml):
//
//	cases:
//	  - name: topics-describe                  # unique across files
//	    description: ...
//	    files: {plan: '{"version":1,...}'}     # written per target; {{file:plan}} is its path
//	    steps:
//	      - tool: kafka-topics                  # a name of Tools below
//	        args: [--bootstrap-server, "{{bootstrap}}", --create, --topic, "{{topic:a}}"]
//	        compare: false                      # setup: run (must exit 0), not compared
//	      - tool: kafka-console-producer
//	        args: [...]
//	        stdin: "k1:v1\nk2:v2\n"             # fed to the tool
//	      - tool: kafka-topics
//	        args: [--bootstrap-server, "{{bootstrap}}", --describe, --topic, "{{topic:a}}"]
//	        sort: true                          # compare the lines sorted (the tool prints map order)
//	        until: "PartitionCount: 3"          # (optional) rerun, bounded, until stdout contains it
//
// Names {{topic:x}}, {{group:x}}, {{txn:x}}, {{user:x}}, {{client:x}} are unique per run and case and the same on both
// targets, so the outputs compare; {{bootstrap}} is the target's address.
package kafkatools

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Tools maps a tool's script name to its main class in Kafka 4.0.2's jars.
var Tools = map[string]string{
	"kafka-topics":              "org.apache.kafka.tools.TopicCommand",
	"kafka-configs":             "kafka.admin.ConfigCommand",
	"kafka-consumer-groups":     "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
	"kafka-console-producer":    "org.apache.kafka.tools.ConsoleProducer",
	"kafka-console-consumer":    "org.apache.kafka.tools.consumer.ConsoleConsumer",
	"kafka-verifiable-producer": "org.apache.kafka.tools.VerifiableProducer",
	"kafka-verifiable-consumer": "org.apache.kafka.tools.VerifiableConsumer",
	"kafka-transactions":        "org.apache.kafka.tools.TransactionsCommand",
	"kafka-delete-records":      "org.apache.kafka.tools.DeleteRecordsCommand",
	"kafka-get-offsets":         "org.apache.kafka.tools.GetOffsetShell",
	"kafka-log-dirs":            "org.apache.kafka.tools.LogDirsCommand",
	"kafka-cluster":             "org.apache.kafka.tools.ClusterTool",
	"kafka-features":            "org.apache.kafka.tools.FeatureCommand",
	"kafka-leader-election":     "org.apache.kafka.tools.LeaderElectionCommand",
	"kafka-reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
	"kafka-broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
	"kafka-acls":                "org.apache.kafka.tools.AclCommand",
}

// Case is one sequence of tool runs.
type Case struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Files       map[string]string `yaml:"files"`
	// Exclusive cases run alone, one at a time after all the others: they change state other
	// cases' output shows (a cluster-wide dynamic broker config).
	Exclusive bool   `yaml:"exclusive"`
	Steps     []Step `yaml:"steps"`
	File      string `yaml:"-"`
}

// Step is one tool run.
type Step struct {
	Tool    string   `yaml:"tool"`
	Args    []string `yaml:"args"`
	Stdin   string   `yaml:"stdin"`
	Compare *bool    `yaml:"compare"`
	Sort    bool     `yaml:"sort"`
	Until   string   `yaml:"until"`
	// Stderr compares the tool's stderr too (where a tool prints its answer there).
	Stderr bool `yaml:"stderr"`
}

// Compared reports whether the step's output is compared.
func (s *Step) Compared() bool { return s.Compare == nil || *s.Compare }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// LoadDir reads every *.yaml case file of dir.
func LoadDir(dir string) ([]*Case, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*Case
	seen := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Cases []*Case `yaml:"cases"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		for _, c := range doc.Cases {
			c.File = filepath.Base(f)
			if err := c.check(); err != nil {
				return nil, fmt.Errorf("%s: case %q: %v", f, c.Name, err)
			}
			if prev, ok := seen[c.Name]; ok {
				return nil, fmt.Errorf("%s: case %q already defined in %s", f, c.Name, prev)
			}
			seen[c.Name] = c.File
			out = append(out, c)
		}
	}
	return out, nil
}

func (c *Case) check() error {
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("name must be lower-case letters, digits and dashes")
	}
	if len(c.Steps) == 0 {
		return fmt.Errorf("no steps")
	}
	for i, s := range c.Steps {
		if _, ok := Tools[s.Tool]; !ok {
			known := make([]string, 0, len(Tools))
			for k := range Tools {
				known = append(known, k)
			}
			sort.Strings(known)
			return fmt.Errorf("step %d: unknown tool %q (known: %s)", i, s.Tool, strings.Join(known, ", "))
		}
		for _, a := range s.Args {
			for _, m := range tmplRE.FindAllStringSubmatch(a, -1) {
				if m[1] == "file" {
					if _, ok := c.Files[m[2]]; !ok {
						return fmt.Errorf("step %d: {{file:%s}} names no entry of files", i, m[2])
					}
				}
			}
		}
	}
	return nil
}

var tmplRE = regexp.MustCompile(`\{\{(bootstrap|topic|group|txn|user|client|file)(?::([a-z0-9-]+))?\}\}`)

// expand fills a case's templates for one target.
func expand(s, prefix, bootstrap string, files map[string]string) string {
	return tmplRE.ReplaceAllStringFunc(s, func(m string) string {
		sm := tmplRE.FindStringSubmatch(m)
		switch sm[1] {
		case "bootstrap":
			return bootstrap
		case "file":
			return files[sm[2]]
		default:
			return prefix + sm[1] + "-" + sm[2]
		}
	})
}
