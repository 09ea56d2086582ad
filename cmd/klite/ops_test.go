package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestLogLevelEndpoint(t *testing.T) {
	level := new(slog.LevelVar)
	var logs bytes.Buffer
	srv := httptest.NewServer(logLevelHandler(level, slog.New(slog.NewTextHandler(&logs, nil))))
	defer srv.Close()
	do := func(method, url, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+url, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if c, b := do("GET", "", ""); c != 200 || b != "info" {
		t.Fatalf("GET: %d %q", c, b)
	}
	if c, b := do("PUT", "", "debug\n"); c != 200 || b != "debug" || level.Level() != slog.LevelDebug {
		t.Fatalf("PUT debug: %d %q level %v", c, b, level.Level())
	}
	if c, _ := do("PUT", "?level=warn", ""); c != 200 || level.Level() != slog.LevelWarn {
		t.Fatalf("PUT ?level=warn: %d level %v", c, level.Level())
	}
	if c, _ := do("PUT", "", "loud"); c != 400 || level.Level() != slog.LevelWarn {
		t.Fatalf("PUT loud: %d, level %v", c, level.Level())
	}
	if c, _ := do("DELETE", "", ""); c != 405 {
		t.Fatalf("DELETE: %d", c)
	}
	if !strings.Contains(logs.String(), "log level changed") {
		t.Fatalf("change not logged: %s", logs.String())
	}
}

// TestReloadConfigAppliesLogLevel: SIGHUP's reload takes the file's new log level and names
// the settings that need a restart; a broken file changes nothing.
func TestReloadConfigAppliesLogLevel(t *testing.T) {
	file := writeConfig(t, "log-level: info\ndefault-partitions: 2\n")
	reload := func() (*options, error) { return parse([]string{"--config", file}, env(nil)) }
	cur, err := reload()
	if err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	os.WriteFile(file, []byte("log-level: debug\ndefault-partitions: 5\n"), 0o600)
	reloadConfig(cur, reload, level, log)
	if level.Level() != slog.LevelDebug {
		t.Fatalf("level %v after reload, want debug", level.Level())
	}
	if !strings.Contains(logs.String(), "settings=default-partitions") {
		t.Fatalf("restart-only change not reported: %s", logs.String())
	}
	os.WriteFile(file, []byte("log-level: [\n"), 0o600)
	reloadConfig(cur, reload, level, log)
	if level.Level() != slog.LevelDebug || !strings.Contains(logs.String(), "configuration not reloaded") {
		t.Fatalf("broken file: level %v, logs %s", level.Level(), logs.String())
	}
}
