//go:build integration

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestVersionPrintConfigAndBadConfigFile runs the binary's command-only modes.
func TestVersionPrintConfigAndBadConfigFile(t *testing.T) {
	bin := klite(t)
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "klite ") || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("--version: %v %q", err, out)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "klite.yaml")
	os.WriteFile(file, []byte("default-partitions: 3\nsasl-password: hunter2\nlog-level: warn\n"), 0o600)
	cmd := exec.Command(bin, "--config", file, "--print-config", "--log-level", "error")
	cmd.Env = append(os.Environ(), "KLITE_DEFAULT_PARTITIONS=4")
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("--print-config: %v", err)
	}
	for _, want := range []string{"default-partitions: 4  # env KLITE_DEFAULT_PARTITIONS\n", "log-level: error  # flag\n", "sasl-password: '********'  # file\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--print-config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "hunter2") {
		t.Fatal("--print-config printed the password")
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen: :9092\nno-such-setting: 1\n"), 0o600)
	for _, args := range [][]string{{"--config", bad}, {"--config", filepath.Join(dir, "missing.yaml")}, {"--config", bad, "--print-config"}} {
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Fatalf("%v: err %v, want exit 2", args, err)
		}
		if s := stderr.String(); strings.Count(s, "\n") != 1 || !strings.HasPrefix(s, "klite: ") || !strings.Contains(s, args[1]) {
			t.Fatalf("%v: stderr %q, want one line naming the file", args, s)
		}
	}
}

func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsEndpointAndRuntimeLogLevel: /metrics on the health address counts a produce;
// the log level follows PUT /log-level and, on SIGHUP, the config file.
func TestMetricsEndpointAndRuntimeLogLevel(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "klite.yaml")
	os.WriteFile(file, []byte("log-level: info\n"), 0o600)
	health := freeAddr(t)
	p := startKlite(t, filepath.Join(dir, "data"), "--config", file, "--health-addr", health)
	base := "http://" + health

	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.DefaultProduceTopic("ops"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	code, body := httpDo(t, "GET", base+"/metrics", "")
	if code != 200 || !strings.Contains(body, `klite_topic_records_in_total{topic="ops"} 3`+"\n") ||
		!strings.Contains(body, `klite_requests_total{api="Produce"}`) || !strings.Contains(body, "go_goroutines ") {
		t.Fatalf("/metrics: %d\n%.3000s", code, body)
	}

	if code, body := httpDo(t, "GET", base+"/log-level", ""); code != 200 || body != "info\n" {
		t.Fatalf("GET /log-level: %d %q", code, body)
	}
	if code, body := httpDo(t, "PUT", base+"/log-level", "warn"); code != 200 || body != "warn\n" {
		t.Fatalf("PUT /log-level: %d %q", code, body)
	}
	if code, _ := httpDo(t, "PUT", base+"/log-level", "verbose"); code != 400 {
		t.Fatalf("PUT bad level: %d", code)
	}
	os.WriteFile(file, []byte("log-level: debug\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	var got string
	for i := 0; i < 100; i++ {
		if _, got = httpDo(t, "GET", base+"/log-level", ""); got == "debug\n" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != "debug\n" {
		t.Fatalf("after SIGHUP the level is %q, want debug from the file", got)
	}
	if code, _ := httpDo(t, "GET", base+"/readyz", ""); code != 200 {
		t.Fatalf("not ready after SIGHUP: %d", code)
	}
}

// TestMetricsOff: --metrics=false serves no /metrics.
func TestMetricsOff(t *testing.T) {
	health := freeAddr(t)
	startKlite(t, t.TempDir(), "--metrics=false", "--health-addr", health)
	if code, _ := httpDo(t, "GET", "http://"+health+"/metrics", ""); code != 404 {
		t.Fatalf("/metrics with --metrics=false: %d", code)
	}
}

// TestSIGHUPReloadsTLSCertificate: a renewed certificate is served to new connections after
// SIGHUP, without a restart.
func TestSIGHUPReloadsTLSCertificate(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writeSelfSigned(t, cert, key, 1)
	p := startKlite(t, filepath.Join(dir, "data"), "--tls-cert", cert, "--tls-key", key)
	serial := func() int64 {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", p.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serving serial %d, want 1", s)
	}
	writeSelfSigned(t, cert, key, 2)
	p.cmd.Process.Signal(syscall.SIGHUP)
	var s int64
	for i := 0; i < 100; i++ {
		if s = serial(); s == 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s != 2 {
		t.Fatalf("after SIGHUP serving serial %d, want the renewed 2", s)
	}
}
