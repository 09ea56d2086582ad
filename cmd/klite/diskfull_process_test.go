//go:build integration

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRealFullFilesystem runs klite on a real small file system: a 12 MiB tmpfs mounted in
// a user and mount namespace of its own (unshare -rm: no root needed where the kernel allows
// unprivileged user namespaces; skipped otherwise), 4 MiB of it taken by a filler file. A
// producer writes until the file system is full: the broker refuses (the produce fails)
// and keeps serving; nothing acknowledged is lost. The filler is then removed (through
// /proc/PID/root, the broker's view of its mounts): produce works again without a restart.
// Finally the data directory is copied out (the tmpfs dies with the process) and a fresh
// klite started on the copy finds every acknowledged record.
func TestRealFullFilesystem(t *testing.T) {
	if err := exec.Command("unshare", "-rm", "true").Run(); err != nil {
		t.Skipf("no unprivileged user+mount namespace here (unshare -rm: %v): cannot mount a small file system", err)
	}
	mnt := t.TempDir()
	data := filepath.Join(mnt, "data")
	script := `mount -t tmpfs -o size=12m tmpfs "$0" && dd if=/dev/zero of="$0/filler" bs=1M count=4 2>/dev/null && exec "$@"`
	cmd := exec.Command("unshare", "-rm", "sh", "-c", script, mnt, klite(t),
		"--listen", "127.0.0.1:0", "--data-dir", data, "--health-addr", "127.0.0.1:0", "--wal-segment-bytes", "1048576")
	p := startProc(t, cmd)
	inside := func(path string) string { // the broker's view of its tmpfs
		return filepath.Join(fmt.Sprintf("/proc/%d/root", p.cmd.Process.Pid), path)
	}
	if _, err := os.Stat(inside(filepath.Join(mnt, "filler"))); err != nil {
		t.Fatalf("cannot see the broker's file system: %v", err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.DefaultProduceTopic("full"), kgo.AllowAutoTopicCreation(),
		kgo.RecordDeliveryTimeout(3*time.Second), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pad := strings.Repeat("x", 32<<10)
	var acked []string
	produce := func(v string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v + pad)}).FirstErr()
		if err == nil {
			acked = append(acked, v)
		}
		return err
	}
	// 8 MiB free, 32 KiB records: full after about 250.
	var fullErr error
	for i := 0; i < 1000 && fullErr == nil; i++ {
		fullErr = produce(fmt.Sprintf("a-%05d", i))
	}
	if fullErr == nil {
		t.Fatal("1000 records of 32 KiB fit in 8 MiB")
	}
	if len(acked) < 50 {
		t.Fatalf("only %d records acknowledged before the file system filled (%v)", len(acked), fullErr)
	}
	t.Logf("file system full after %d acknowledged records: %v", len(acked), fullErr)
	// Still serving: metadata answers.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("broker not serving on a full file system: %v", err)
	}

	if err := os.Remove(inside(filepath.Join(mnt, "filler"))); err != nil {
		t.Fatal(err)
	}
	var again error = fullErr
	for i := 0; i < 50 && again != nil; i++ {
		if again = produce(fmt.Sprintf("b-%05d", i)); again != nil {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if again != nil {
		t.Fatalf("produce still failing after space returned: %v", again)
	}
	for i := 0; i < 20; i++ {
		if err := produce(fmt.Sprintf("c-%05d", i)); err != nil {
			t.Fatalf("produce after recovery: %v", err)
		}
	}
	checkAll(t, p.addr, acked, "the running broker")

	// The tmpfs goes away with the process: copy the (idle, fsynced) data out and start on it.
	copyDir := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command("cp", "-a", inside(data), copyDir).CombinedOutput(); err != nil {
		t.Fatalf("copying the data directory out: %v\n%s", err, out)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	p2 := startKlite(t, copyDir)
	checkAll(t, p2.addr, acked, "a restart on the data")
}

// checkAll consumes topic "full" from the start until every acknowledged value is seen.
func checkAll(t *testing.T, addr string, acked []string, where string) {
	t.Helper()
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("full"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	missing := len(acked)
	deadline := time.Now().Add(20 * time.Second)
	for missing > 0 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cons.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value[:min(7, len(r.Value))])] = true })
		missing = 0
		for _, v := range acked {
			if !seen[v] {
				missing++
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%s: %d of %d acknowledged records missing", where, missing, len(acked))
	}
}
