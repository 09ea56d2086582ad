//go:build integration

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func klite(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "klite-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "klite")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestBadFlagExitsWithOneLine(t *testing.T) {
	bin := klite(t)
	for _, args := range [][]string{{"--default-partitions=zero"}, {"--no-such-flag"}, {"--listen", "nope"}, {"--sasl-enabled"}} {
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() == 0 {
			t.Fatalf("%v: err %v, want non-zero exit", args, err)
		}
		if lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "klite: ") {
			t.Fatalf("%v: stderr %q, want one line", args, stderr.String())
		}
	}
	out, err := exec.Command(bin, "--help").Output()
	if err != nil || !bytes.Contains(out, []byte("KLITE_DATA_DIR")) {
		t.Fatalf("--help: %v %s", err, out)
	}
}

// proc is a running klite process.
type proc struct {
	cmd    *exec.Cmd
	addr   string
	health string
	logs   *bytes.Buffer
	exited chan error
}

var servingRE = regexp.MustCompile(`msg="klite serving" listen=(\S+)`)

func startKlite(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"--listen", "127.0.0.1:0", "--data-dir", dataDir, "--health-addr", "127.0.0.1:0"}, extra...)
	return startProc(t, exec.Command(klite(t), args...))
}

// startProc starts cmd (klite, or a wrapper that execs it) and waits until it serves.
func startProc(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: &bytes.Buffer{}, exited: make(chan error, 1)}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			p.logs.WriteString(line + "\n")
			if m := servingRE.FindStringSubmatch(line); m != nil {
				found <- m[1]
			}
		}
	}()
	go func() { p.exited <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case p.addr = <-found:
	case err := <-p.exited:
		t.Fatalf("klite exited at start: %v\n%s", err, p.logs)
	case <-time.After(15 * time.Second):
		t.Fatalf("klite did not start\n%s", p.logs)
	}
	return p
}

// TestSIGKILLLosesNoAcknowledgedRecord kills klite with SIGKILL while an idempotent producer
// is writing with acks=all, restarts it, and checks that every acknowledged record is there.
// The second case uses 1 MiB WAL segments, 3 KiB values and every batch in the WAL, so the
// kill comes after several segment rotations (with direct I/O each finished segment ends in
// zero padding that replay must take as its end). The third is the same load on the
// single-copy path (from 1 MiB/s): the hot partition's batches are only in its segment
// being written (the WAL has their headers), which the restart reads.
func TestSIGKILLLosesNoAcknowledgedRecord(t *testing.T) {
	t.Run("small records", func(t *testing.T) { testSIGKILL(t, 0, nil) })
	t.Run("many segments", func(t *testing.T) {
		testSIGKILL(t, 3<<10, func(t *testing.T, dir string) {
			segs, err := os.ReadDir(filepath.Join(dir, "wal"))
			if err != nil || len(segs) < 3 {
				t.Fatalf("%d WAL segments before the restart (%v), want several", len(segs), err)
			}
		}, "--wal-segment-bytes", "1048576", "--wal-single-copy=false")
	})
	t.Run("single copy", func(t *testing.T) {
		testSIGKILL(t, 3<<10, func(t *testing.T, dir string) {
			left, _ := filepath.Glob(filepath.Join(dir, "segments", "*", "*", "*.xtmp"))
			if len(left) == 0 {
				t.Fatal("no single-copy segment was being written at the kill")
			}
		}, "--wal-segment-bytes", "1048576", "--wal-single-copy-bytes-per-sec", "1048576")
	})
}

// testSIGKILL produces records of 9+pad bytes, kills klite, runs before (if set) on the
// data directory and checks after a restart that every acknowledged record is there.
func testSIGKILL(t *testing.T, pad int, before func(t *testing.T, dir string), flags ...string) {
	dir := t.TempDir()
	p := startKlite(t, dir, flags...)
	// Uncompressed: the padding is zeros and must reach the disk as written.
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.DefaultProduceTopic("crash"), kgo.AllowAutoTopicCreation(),
		kgo.RecordDeliveryTimeout(5*time.Second), kgo.ProduceRequestTimeout(3*time.Second),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 3000; i++ {
		if i == 1500 {
			// Enough acknowledged before the kill (on a loaded machine the first answers can
			// take a while): with padding, enough to span several segments.
			want := 100
			if pad > 0 {
				want = 1200
			}
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				mu.Lock()
				n := len(acked)
				mu.Unlock()
				if n >= want {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
		v := fmt.Sprintf("rec-%05d", i)
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: append([]byte(v), make([]byte, pad)...)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err == nil {
				mu.Lock()
				acked[v] = true
				mu.Unlock()
			}
		})
		if i%100 == 0 {
			time.Sleep(time.Millisecond) // let batches go out while we keep producing
		}
	}
	// Records still buffered for the dead broker fail when the client closes.
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(8 * time.Second):
	}
	cl.Close()
	<-waited
	<-p.exited
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged before the kill")
	}

	if before != nil {
		before(t, dir)
	}
	p2 := startKlite(t, dir, flags...)
	cons, err := kgo.NewClient(kgo.SeedBrokers(p2.addr), kgo.ConsumeTopics("crash"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	deadline := time.Now().Add(15 * time.Second)
	missing := func() int {
		n := 0
		for v := range acked {
			if !seen[v] {
				n++
			}
		}
		return n
	}
	for missing() > 0 && time.Now().Before(deadline) {
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		fs := cons.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Value) != 9+pad {
				t.Errorf("record of %d bytes, want %d", len(r.Value), 9+pad)
			}
			seen[string(r.Value[:min(9, len(r.Value))])] = true
		})
	}
	if n := missing(); n > 0 {
		t.Fatalf("%d of %d acknowledged records lost after SIGKILL", n, len(acked))
	}
	t.Logf("%d records acknowledged before SIGKILL, all present after restart (%d read)", len(acked), len(seen))
}

// TestSIGTERMGracefulAndHealth checks /livez and /readyz, then that SIGTERM exits 0 quickly.
func TestSIGTERMGracefulAndHealth(t *testing.T) {
	dir := t.TempDir()
	healthAddr := freeAddr(t)
	p := startKlite(t, dir, "--health-addr", healthAddr)
	for _, path := range []string{"/livez", "/readyz"} {
		resp, err := http.Get("http://" + healthAddr + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.DefaultProduceTopic("term"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("SIGTERM shutdown took %v", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("klite did not exit after SIGTERM")
	}
	// Cluster ID persisted: the restarted broker reports the same one.
	re := regexp.MustCompile(`cluster_id=(\S+)`)
	first := re.FindStringSubmatch(p.logs.String())
	p2 := startKlite(t, dir)
	second := re.FindStringSubmatch(p2.logs.String())
	if first == nil || second == nil || first[1] != second[1] {
		t.Fatalf("cluster id not persisted: %v vs %v", first, second)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
