package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "klite.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigPrecedence: flag > env > file > default, for each kind of value.
func TestConfigPrecedence(t *testing.T) {
	file := writeConfig(t, "default-partitions: 3\ndata-dir: /from/file\nlog-level: debug\nauto-create-topics: false\ns3-flush-interval: 5s\nmax-frame-bytes: 2048\n")
	o, err := parse([]string{"--config", file, "--default-partitions", "7"},
		env(map[string]string{"KLITE_DEFAULT_PARTITIONS": "5", "KLITE_DATA_DIR": "/from/env"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.defaultPartitions != 7 {
		t.Errorf("flag lost to env or file: default-partitions %d", o.defaultPartitions)
	}
	if o.dataDir != "/from/env" {
		t.Errorf("env lost to file: data-dir %q", o.dataDir)
	}
	if o.logLevel != "debug" || o.autoCreateTopics || o.s3FlushInterval != 5*time.Second || o.maxFrameBytes != 2048 {
		t.Errorf("file values not applied: %+v", o)
	}
	if o.listen != ":9092" {
		t.Errorf("default changed: listen %q", o.listen)
	}
	want := map[string]string{"default-partitions": srcFlag, "data-dir": "env KLITE_DATA_DIR", "log-level": srcFile, "listen": srcDefault}
	for k, v := range want {
		if o.sources[k] != v {
			t.Errorf("source of %s = %q, want %q", k, o.sources[k], v)
		}
	}

	// The file may be named by the environment too.
	o, err = parse(nil, env(map[string]string{"KLITE_CONFIG": file}))
	if err != nil || o.defaultPartitions != 3 || o.dataDir != "/from/file" {
		t.Fatalf("KLITE_CONFIG: %+v %v", o, err)
	}
}

func TestConfigFileRejects(t *testing.T) {
	cases := map[string]string{
		"unknown key":     "no-such-flag: 1\n",
		"command only":    "version: true\n",
		"nested value":    "listen:\n  host: x\n",
		"list value":      "super-users: [a, b]\n",
		"bad value":       "default-partitions: many\n",
		"invalid setting": "default-partitions: 0\n",
		"not a mapping":   "- listen\n",
		"broken YAML":     "listen: [\n",
		"empty value":     "listen:\n",
	}
	for name, body := range cases {
		_, err := parse([]string{"--config", writeConfig(t, body)}, env(nil))
		if err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err %v, want a one-line error", name, err)
			continue
		}
		if name != "invalid setting" && !strings.Contains(err.Error(), "klite.yaml") {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	if _, err := parse([]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, env(nil)); err == nil {
		t.Error("missing config file accepted")
	}
	// An empty file is no settings, not an error.
	if _, err := parse([]string{"--config", writeConfig(t, "")}, env(nil)); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

// TestPrintConfigRoundTrips: --print-config masks secrets, and its output is a config file
// that gives the same settings back.
func TestPrintConfigRoundTrips(t *testing.T) {
	o, err := parse([]string{"--default-partitions", "6", "--sasl-enabled", "--sasl-user", "admin", "--s3-flush-interval", "3s"},
		env(map[string]string{"KLITE_SASL_PASSWORD": "hunter2", "KLITE_LOG_LEVEL": "warn"}))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	printConfig(&buf, o)
	out := buf.String()
	if strings.Contains(out, "hunter2") || !strings.Contains(out, "sasl-password: '********'") {
		t.Fatalf("secret not masked:\n%s", out)
	}
	for _, line := range []string{"default-partitions: 6  # flag", "log-level: warn  # env KLITE_LOG_LEVEL", "listen: :9092  # default", "s3-flush-interval: 3s  # flag"} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("missing %q in\n%s", line, out)
		}
	}
	for _, k := range []string{"config:", "version:", "print-config:"} {
		if strings.Contains(out, "\n"+k) {
			t.Errorf("command-only flag %s printed", k)
		}
	}
	var kv map[string]any
	if err := yaml.Unmarshal(buf.Bytes(), &kv); err != nil {
		t.Fatalf("output is not YAML: %v", err)
	}
	back, err := parse([]string{"--config", writeConfig(t, strings.Replace(out, "'********'", "hunter2", 1))}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range o.values {
		if back.values[k] != v && k != "config" {
			t.Errorf("%s: %q after the round trip, was %q", k, back.values[k], v)
		}
	}
}

func TestVersion(t *testing.T) {
	if v := version(); v == "" {
		t.Fatal("empty version")
	}
	old := buildVersion
	buildVersion = "v9.9.9"
	defer func() { buildVersion = old }()
	if !strings.HasPrefix(versionLine(), "klite v9.9.9 (go") {
		t.Fatalf("version line %q", versionLine())
	}
	// --version needs nothing else valid.
	o, err := parse([]string{"--version", "--listen", "nope"}, env(nil))
	if err != nil || !o.showVersion {
		t.Fatalf("--version: %+v %v", o, err)
	}
}

// FuzzConfigFile: any config file content gives settings or a one-line error, never a panic.
func FuzzConfigFile(f *testing.F) {
	f.Add("listen: :9092\nlog-level: debug\n")
	f.Add("default-partitions: [1\n")
	f.Add("- a\n- b\n")
	f.Add("s3-flush-interval: 1e3\nmetrics: yes\n")
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(t.TempDir(), "klite.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := parse([]string{"--config", p}, env(nil)); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error: %q", err)
		}
	})
}
