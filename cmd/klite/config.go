package main

// Configuration sources, in precedence order: a flag on the command line, then its KLITE_*
// environment variable, then the key of the same name in the --config YAML file, then the
// default. The file is flat: one key per flag, named as the flag without dashes in front.
//
//	# klite.yaml
//	listen: ":9092"
//	data-dir: /var/lib/klite
//	health-addr: "127.0.0.1:9644"
//	log-level: info
//	s3-flush-interval: 10s
//
// Unknown keys, nested values and keys for the command-only flags (config, version,
// print-config) are refused with the file's name, so a typo cannot go unnoticed.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// commandOnly are flags that act on this invocation and are not configuration.
var commandOnly = map[string]bool{"config": true, "version": true, "print-config": true}

// secretFlags are masked by --print-config.
var secretFlags = map[string]bool{"sasl-password": true}

// Where a setting came from, for --print-config.
const (
	srcDefault = "default"
	srcFlag    = "flag"
	srcFile    = "file"
)

// applyConfigFile sets every flag named in the YAML file at path that set does not hold yet
// (a flag or an environment variable set it), marking it in set and sources.
func applyConfigFile(fs *flag.FlagSet, path string, set map[string]bool, sources map[string]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading --config: %w", err)
	}
	var kv map[string]any
	if err := yaml.Unmarshal(data, &kv); err != nil {
		return fmt.Errorf("config file %s: not a YAML mapping of flag names to values: %v", path, oneLine(err))
	}
	// In file order is not needed: every key is independent, and validation comes after.
	for k, v := range kv {
		f := fs.Lookup(k)
		if f == nil || commandOnly[k] {
			return fmt.Errorf("config file %s: unknown key %q (keys are klite's flag names)", path, k)
		}
		s, err := scalar(v)
		if err != nil {
			return fmt.Errorf("config file %s: key %q: %v", path, k, err)
		}
		if set[k] {
			continue // a flag or environment variable wins
		}
		if err := fs.Set(k, s); err != nil {
			return fmt.Errorf("config file %s: invalid value %q for %s: %v", path, s, k, oneLine(err))
		}
		set[k] = true
		sources[k] = srcFile
	}
	return nil
}

// scalar renders a YAML scalar as the flag's text.
func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case nil:
		return "", errors.New("no value")
	}
	return "", fmt.Errorf("want a single value, got %T", v)
}

func oneLine(err error) string {
	s := err.Error()
	for i := range s {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

// printConfig writes the effective configuration as a YAML file that --config accepts,
// each line commented with where its value came from; secrets are masked.
func printConfig(w io.Writer, o *options) {
	fmt.Fprintf(w, "# klite %s: effective configuration (precedence: flag > KLITE_* environment > config file > default)\n", version())
	if o.configFile != "" {
		fmt.Fprintf(w, "# config file: %s\n", o.configFile)
	}
	fs := newFlagSet(&options{})
	fs.VisitAll(func(f *flag.Flag) {
		if commandOnly[f.Name] {
			return
		}
		v := o.values[f.Name]
		if secretFlags[f.Name] && v != "" {
			v = "********"
		}
		var node any = v
		switch f.Value.(flag.Getter).Get().(type) {
		case bool:
			node, _ = strconv.ParseBool(v)
		case int, int64:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				node = n
			}
		case time.Duration:
		}
		line, _ := yaml.Marshal(map[string]any{f.Name: node})
		fmt.Fprintf(w, "%s  # %s\n", trimNL(line), o.sources[f.Name])
	})
}

func trimNL(b []byte) string {
	for len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
	}
	return string(b)
}

// buildVersion is set at link time: go build -ldflags "-X main.buildVersion=v1.2.3" (the
// Makefile passes git describe). Without it the module's build information is used.
var buildVersion string

// version is klite's version: the linked-in one, else the module version or VCS revision
// Go recorded, else "devel".
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 && (v == "" || v == "(devel)") {
			v = "devel-" + s.Value[:12]
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	return v
}

func versionLine() string {
	return fmt.Sprintf("klite %s (%s %s/%s)", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
