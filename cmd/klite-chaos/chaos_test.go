//go:build integration

package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klite/klite/conformance/chaos"
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
