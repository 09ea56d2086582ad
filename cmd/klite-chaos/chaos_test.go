//go:build integration

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klite/klite/conformance/chaos"
	"github.com/klite/klite/internal/motoserver"
)

func kliteBin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "klite")
	if out, err := exec.Command("go", "build", "-o", bin, "../klite").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestChaosShort is the short chaos run of `make test`: 5 SIGKILL cycles of every workload
// (group-members: members joining, leaving and dying, one with each kill; compacted: the
// latest value per key never lost), one
// SIGSTOP pause (longer than the clients' time-outs) of the idempotent one and 3 kills with a
// second kill during the restart's recovery of the transactional one, each on a fresh
// broker; the checker must find nothing lost, duplicated (idempotent, transactional), aborted-
// visible or otherwise wrong. Every run is bounded by its Deadline.
func TestChaosShort(t *testing.T) {
	bin := kliteBin(t)
	var results []chaos.Result
	runs := []struct{ workload, fault string }{
		{chaos.Plain, chaos.SIGKILL}, {chaos.Idempotent, chaos.SIGKILL}, {chaos.Transactional, chaos.SIGKILL},
		{chaos.Group, chaos.SIGKILL}, {chaos.Members, chaos.SIGKILL}, {chaos.Compacted, chaos.SIGKILL},
		{chaos.Idempotent, chaos.SIGSTOP}, {chaos.Transactional, chaos.RecoveryKill},
	}
	for i, r := range runs {
		b, err := chaos.StartBroker(bin, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		cycles := 5
		switch r.fault {
		case chaos.SIGSTOP:
			cycles = 1
		case chaos.RecoveryKill:
			cycles = 3
		}
		res := chaos.Run(context.Background(), chaos.Config{
			Workload: r.workload, Fault: r.fault, Addr: b.Addr, Broker: b, Cycles: cycles,
			MinGap: 200 * time.Millisecond, MaxGap: 800 * time.Millisecond, Pause: 4 * time.Second,
			Seed: int64(i + 1), Deadline: 2 * time.Minute,
		})
		b.Stop()
		results = append(results, res)
		if res.Err != nil {
			t.Errorf("%s/%s: %v", r.workload, r.fault, res.Err)
		}
		if res.Cycles != cycles || res.Report.Acked == 0 {
			t.Errorf("%s/%s: %d cycles, %d acknowledged", r.workload, r.fault, res.Cycles, res.Report.Acked)
		}
		for _, a := range res.Report.Anomalies {
			t.Errorf("%s/%s: %s: %s", r.workload, r.fault, a.Kind, a.Detail)
		}
	}
	var sb strings.Builder
	chaos.PrintTable(&sb, "klite", results)
	t.Log("\n" + sb.String())
}

// TestChaosDiskFull runs klite on a 64 MiB tmpfs of its own (skipped where unshare -rm is not
// allowed) and fills it to the last byte twice during the idempotent and group-members
// workloads: probes must get KAFKA_STORAGE_ERROR while full (nothing acknowledged that was
// not stored: the checker finds every acknowledged value) and be acknowledged again once the
// space returns, without a restart.
func TestChaosDiskFull(t *testing.T) {
	bin := kliteBin(t)
	for i, w := range []string{chaos.Idempotent, chaos.Members} {
		b, err := chaos.StartBrokerOnTmpfs(bin, t.TempDir(), 64)
		if errors.Is(err, chaos.ErrNoTmpfs) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		res := chaos.Run(context.Background(), chaos.Config{
			Workload: w, Fault: chaos.DiskFull, Addr: b.Addr, Broker: b, Cycles: 2,
			MinGap: 300 * time.Millisecond, MaxGap: 800 * time.Millisecond, Pause: 2 * time.Second,
			Seed: int64(i + 1), Deadline: 2 * time.Minute,
		})
		b.Stop()
		if res.Err != nil {
			t.Errorf("%s: %v", w, res.Err)
		}
		if res.Cycles != 2 || res.StorageErrors < 2 || res.Report.Acked == 0 {
			t.Errorf("%s: %d cycles, %d probes refused with KAFKA_STORAGE_ERROR, %d acknowledged", w, res.Cycles, res.StorageErrors, res.Report.Acked)
		}
		for _, a := range res.Report.Anomalies {
			t.Errorf("%s/%s: %s: %s", w, chaos.DiskFull, a.Kind, a.Detail)
		}
	}
}

// TestChaosSeesDataLoss proves the whole pipeline (workload, fault, final reads, checker) sees
// loss: each "fault" kills klite and deletes its data directory before the restart, so
// acknowledged records vanish and the run must report them lost.
func TestChaosSeesDataLoss(t *testing.T) {
	bin := kliteBin(t)
	dir := t.TempDir()
	b, err := chaos.StartBroker(bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	res := chaos.Run(context.Background(), chaos.Config{
		Workload: chaos.Idempotent, Fault: "wipe", Addr: b.Addr, Broker: b, Cycles: 1,
		MinGap: time.Second, MaxGap: time.Second, Seed: 1, Deadline: time.Minute, DrainTimeout: 5 * time.Second,
		Inject: func() error {
			b.Kill()
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			return b.Start()
		},
	})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if res.Report.Lost == 0 || res.Report.Count(chaos.Lost) != res.Report.Lost {
		t.Log(b.Tail(30), res.Report.Read)
		t.Fatalf("wiped data but the checker reports %d lost of %d acknowledged: %+v", res.Report.Lost, res.Report.Acked, res.Report.Anomalies)
	}
	t.Logf("%d of %d acknowledged reported lost, %d anomalies in all", res.Report.Lost, res.Report.Acked, len(res.Report.Anomalies))
}

// runOne runs one workload under one fault on a fresh broker (flags added) and fails t on any
// error or anomaly, or when fewer cycles ran or nothing was acknowledged.
func runOne(t *testing.T, bin string, c chaos.Config, flags ...string) chaos.Result {
	t.Helper()
	b, err := chaos.StartBroker(bin, t.TempDir(), flags...)
	if err != nil {
		t.Fatal(err)
	}
	c.Addr, c.Broker = b.Addr, b
	if c.MinGap == 0 {
		c.MinGap, c.MaxGap = 200*time.Millisecond, 800*time.Millisecond
	}
	if c.Deadline == 0 {
		c.Deadline = 2 * time.Minute
	}
	res := chaos.Run(context.Background(), c)
	b.Stop()
	if res.Err != nil {
		t.Errorf("%s/%s: %v", c.Workload, c.Fault, res.Err)
	}
	if res.Cycles != c.Cycles || res.Report.Acked == 0 {
		t.Errorf("%s/%s: %d cycles, %d acknowledged", c.Workload, c.Fault, res.Cycles, res.Report.Acked)
	}
	for _, a := range res.Report.Anomalies {
		t.Errorf("%s/%s: %s: %s", c.Workload, c.Fault, a.Kind, a.Detail)
	}
	var sb strings.Builder
	chaos.PrintTable(&sb, "klite", []chaos.Result{res})
	t.Log("\n" + sb.String())
	return res
}

// TestChaosStorageErrors injects fsync errors (twice) and write errors (once) below the WAL
// and the metadata logs of the real process (--test-storage-faults): each time a probe must
// be refused with KAFKA_STORAGE_ERROR, the log must say the WAL append failed with the
// injected error, and once the errors stop a probe must be acknowledged again without a
// restart; the checker finds every acknowledged record.
func TestChaosStorageErrors(t *testing.T) {
	bin := kliteBin(t)
	for i, f := range []string{chaos.FsyncError, chaos.WriteError} {
		res := runOne(t, bin, chaos.Config{Workload: chaos.Idempotent, Fault: f, Cycles: 2 - i, Pause: time.Second, Seed: int64(i + 1)},
			chaos.StorageFaultFlags...)
		if res.StorageErrors < 2-i {
			t.Errorf("%s: %d probes refused with KAFKA_STORAGE_ERROR", f, res.StorageErrors)
		}
	}
}

// TestChaosDamagedFiles: after SIGKILLs, torn copies of the last record at the end of the
// WAL and the metadata logs must be cut (and said so) with nothing acknowledged lost; flipped
// bytes in durable data (WAL, meta.log, producers.snapshot, a partition segment's footer,
// its checkpoint) must be refused naming the file, or lose nothing; restored, klite starts.
func TestChaosDamagedFiles(t *testing.T) {
	bin := kliteBin(t)
	runOne(t, bin, chaos.Config{Workload: chaos.Group, Fault: chaos.TornTail, Cycles: 3, Seed: 1})
	res := runOne(t, bin, chaos.Config{Workload: chaos.Retention, Fault: chaos.Corrupt, Cycles: 8, Seed: 2},
		append([]string{"--retention-check-interval", "1s"}, chaos.DamageFlags...)...)
	if res.Damage.Refused == 0 {
		t.Errorf("no damage was refused: %s", res.Damage)
	}
	t.Logf("served/refused by kind: %s", res.Damage)
}

// TestChaosRetention: the retention workload (records expire after 6 s, 1 s segments, klite
// checking retention every second) under SIGKILLs 1.5-2.5 s apart (so that retention runs
// between them): retention must really delete (records below the final log start), and
// nothing at or above the log start may be missing.
func TestChaosRetention(t *testing.T) {
	bin := kliteBin(t)
	res := runOne(t, bin, chaos.Config{Workload: chaos.Retention, Fault: chaos.SIGKILL, Cycles: 8, Seed: 3,
		MinGap: 1500 * time.Millisecond, MaxGap: 2500 * time.Millisecond},
		"--retention-check-interval", "1s")
	if res.Report.Expired == 0 {
		t.Errorf("retention deleted nothing (log start %v)", res.LogStart)
	}
}

// TestChaosS3 runs klite's S3 tier against moto behind the fault proxy (skipped without
// moto, failed under make test): SIGKILLs (restarts wait out the 1 s lease), S3 stopped,
// slowed and answering 500/503: nothing acknowledged is lost, and segments reached S3.
func TestChaosS3(t *testing.T) {
	if _, err := motoserver.Binary(); err != nil {
		if motoserver.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	bin := kliteBin(t)
	s3, err := chaos.StartS3("klite-chaos")
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	for i, f := range []string{chaos.SIGKILL, chaos.S3Down, chaos.S3Slow, chaos.S3Errors} {
		cycles := 1
		if f == chaos.SIGKILL {
			cycles = 3
		}
		prefix := fmt.Sprintf("t%d", i)
		before := s3.Injected()
		runOne(t, bin, chaos.Config{Workload: chaos.Idempotent, Fault: f, Cycles: cycles, Pause: 2 * time.Second, Seed: int64(i + 1),
			ValueBytes: 1000, S3: s3}, s3.Flags(prefix)...)
		if n, err := s3.Objects(prefix + "/"); err != nil || n < 2 {
			t.Errorf("%s: %d objects in S3 (%v): nothing flushed", f, n, err)
		}
		if f != chaos.SIGKILL && s3.Injected() == before {
			t.Errorf("%s: the proxy faulted no request", f)
		}
	}
}
