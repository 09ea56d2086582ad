// Package motoserver starts moto's S3 API server (PyPI moto[server]) on 127.0.0.1 for a
// test and stops it when the test ends. `make moto` installs it into .cache/moto/ (a
// git-ignored virtualenv); the Makefile exports its path as KLITE_MOTO_SERVER and sets
// KLITE_REQUIRE_MOTO=1, so under `make test` (or with CI=true) a missing moto fails the
// test instead of skipping it.
package motoserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Moto's server accepts any credentials; these are what the tests sign with.
const (
	AccessKey = "testing"
	SecretKey = "testing"
	Region    = "us-east-1"
)

// Server is one running moto_server.
type Server struct {
	// Endpoint is its base URL, http://127.0.0.1:PORT.
	Endpoint string
	// StartTime is how long it took from exec to the first answer.
	StartTime time.Duration

	cmd    *exec.Cmd
	exited chan struct{}
	log    *lockedBuffer
}

// Credentials are static credentials moto accepts.
func Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, "")
}

// Required reports whether a missing moto must fail a test rather than skip it: under
// `make test` (the Makefile sets KLITE_REQUIRE_MOTO=1) and in CI (CI=true).
func Required() bool {
	return os.Getenv("KLITE_REQUIRE_MOTO") == "1" || os.Getenv("CI") == "true"
}

// Binary finds moto_server: $KLITE_MOTO_SERVER, else .cache/moto/bin/moto_server in the
// module root (found from the working directory), else moto_server on PATH.
func Binary() (string, error) {
	if p := os.Getenv("KLITE_MOTO_SERVER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("KLITE_MOTO_SERVER=%s: %w (run `make moto`)", p, err)
		}
		return p, nil
	}
	if dir, err := os.Getwd(); err == nil {
		for i := 0; i < 20; i++ {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, ".cache", "moto", "bin", "moto_server")
				if _, err := os.Stat(p); err == nil {
					return p, nil
				}
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath("moto_server"); err == nil {
		return p, nil
	}
	return "", errors.New("moto_server not found: run `make moto` (installs moto[server] into .cache/moto) or set KLITE_MOTO_SERVER")
}

// Start runs moto_server on a free loopback port and stops it when t ends. Without moto it
// skips t, or fails it where Required.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if Required() {
			t.Fatalf("S3 tests need moto: %v", err)
		}
		t.Skipf("skipping S3 test: %v", err)
	}
	s, err := start(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		began := time.Now()
		if err := s.Stop(); err != nil {
			t.Errorf("stopping moto_server: %v", err)
		}
		t.Logf("moto_server: answered %v after exec, stopped in %v", s.StartTime, time.Since(began))
	})
	return s
}

// StartServer runs moto_server on a free loopback port outside a test (the conformance
// harness's klite-s3 target); the caller stops it.
func StartServer() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	return start(bin)
}

// start tries a few free ports: another process may take the port between our probe and
// moto's bind.
func start(bin string) (*Server, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := startOn(bin, port)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startOn(bin string, port int) (*Server, error) {
	began := time.Now()
	log := &lockedBuffer{}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, exited: make(chan struct{}), log: log}
	go func() { cmd.Wait(); close(s.exited) }()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("moto_server on port %d exited at start: %s", port, log.tail())
		default:
		}
		if resp, err := client.Get(s.Endpoint + "/"); err == nil {
			resp.Body.Close()
			s.StartTime = time.Since(began)
			return s, nil
		}
		select {
		case <-s.exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.Stop()
	return nil, fmt.Errorf("moto_server on port %d did not answer within 30s: %s", port, log.tail())
}

// Stop ends the server (SIGTERM, then SIGKILL after 5s) and waits for it to exit.
func (s *Server) Stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	pgid := s.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	syscall.Kill(-pgid, syscall.SIGCONT) // a paused server handles SIGTERM once continued
	select {
	case <-s.exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-s.exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("moto_server (pid %d) did not exit after SIGKILL", pgid)
	}
}

// Pause stops the server process (SIGSTOP) without losing its state: requests hang, as
// with an S3 that stopped answering, until Resume. Stop resumes a paused server first.
func (s *Server) Pause() error { return syscall.Kill(-s.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT) }

// CreateBucket creates a bucket through moto's plain REST API (no SDK needed).
func (s *Server) CreateBucket(t testing.TB, bucket string) {
	t.Helper()
	if err := s.MakeBucket(bucket); err != nil {
		t.Fatal(err)
	}
}

// MakeBucket is CreateBucket outside a test.
func (s *Server) MakeBucket(bucket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.Endpoint+"/"+bucket, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("creating bucket %s: %v", bucket, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("creating bucket %s: HTTP %d", bucket, resp.StatusCode)
	}
	return nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.b) < 1<<20 { // keep the first MiB: start-up errors are there
		l.b = append(l.b, p...)
	}
	return len(p), nil
}

func (l *lockedBuffer) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(string(l.b))
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}
