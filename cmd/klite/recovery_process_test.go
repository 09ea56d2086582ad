//go:build integration

package main

// Process-level corruption tests (issue 18): damage the files of a stopped broker, start it,
// and check that it refuses with one line naming the file and byte, exits non-zero and
// changes nothing; or, with --recover-damaged, that it starts and says at ERROR what it moved.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// stopKlite stops p with SIGTERM (a clean shutdown) and waits for it to exit 0.
func stopKlite(t *testing.T, p *proc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("klite did not exit after SIGTERM")
	}
}

// refusedStart runs klite on dir and expects it to exit non-zero before serving; it returns
// the error line.
func refusedStart(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--listen", "127.0.0.1:0", "--data-dir", dir}, extra...)
	cmd := exec.CommandContext(ctx, klite(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() == 0 || strings.Contains(stderr.String(), "klite serving") {
		t.Fatalf("klite started on damaged data (err %v):\n%s", err, stderr.String())
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if strings.Contains(l, "level=ERROR") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("want one error line, got:\n%s", stderr.String())
	}
	return lines[0]
}

func produceN(t *testing.T, addr, topic string, n, size int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		v := append([]byte(fmt.Sprintf("%s-%06d", topic, i)), make([]byte, size)...)
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// walEntry is one WAL entry's byte range in a segment file.
type walEntry struct {
	start, end int64
	seal       bool
}

// walEntries walks a segment's entries (56-byte header with the length at byte 8, flags at
// byte 7; see broker/storage/wal.go) up to its seal or padding.
func walEntries(t *testing.T, path string) []walEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []walEntry
	for pos := int64(0); pos+56 <= int64(len(data)); {
		if binary.BigEndian.Uint16(data[pos+4:]) != 0x4B57 {
			break
		}
		n := int64(binary.BigEndian.Uint32(data[pos+8:]))
		e := walEntry{start: pos, end: pos + 56 + n, seal: data[pos+7] == 1}
		out = append(out, e)
		pos = e.end
		if e.seal {
			break
		}
	}
	return out
}

func segFile(dir string, n int) string {
	return filepath.Join(dir, "wal", fmt.Sprintf("%020d.wal", n))
}

// Finding 1: one flipped byte in meta.log lost every topic. Now klite refuses, naming
// meta.log and the byte; --recover-damaged starts, moves the damage aside and says so.
func TestProcessDamagedMetaLogRefusesStart(t *testing.T) {
	dir := t.TempDir()
	p := startKlite(t, dir)
	produceN(t, p.addr, "first", 20, 100)
	produceN(t, p.addr, "second", 20, 100)
	stopKlite(t, p)
	path := filepath.Join(dir, "meta.log")
	data, _ := os.ReadFile(path)
	at := bytes.Index(data, []byte(`"name":"first"`))
	if at < 0 {
		t.Fatalf("no topic record in meta.log: %q", data)
	}
	data[at+9] ^= 0x20
	os.WriteFile(path, data, 0o644)
	// The byte offset named is where the damaged record starts (its 8-byte header).
	recStart := bytes.LastIndex(data[:at], []byte("{")) - 8
	line := refusedStart(t, dir)
	if !strings.Contains(line, path) || !strings.Contains(line, fmt.Sprintf("at byte %d", recStart)) {
		t.Fatalf("error line does not name %s at byte %d: %s", path, recStart, line)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatal("meta.log changed although the start was refused")
	}

	p2 := startKlite(t, dir, "--recover-damaged")
	logs := p2.logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "RECOVERY") || !strings.Contains(logs, "moved_to=") {
		t.Fatalf("recovery not reported at ERROR:\n%s", logs)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "damaged", "meta.log.*.damaged")); len(m) != 1 {
		t.Fatalf("damaged metadata not moved aside: %v", m)
	}
	stopKlite(t, p2)
	// Recovered: the next start needs no flag.
	stopKlite(t, startKlite(t, dir))
}

// Finding 3: a missing middle WAL segment went unnoticed.
func TestProcessMissingWALSegmentRefusesStart(t *testing.T) {
	dir := t.TempDir()
	// The WAL is kept whole (no trim after draining into partition segments) and holds
	// every batch (not single-copy): the test damages rotated WAL segments.
	p := startKlite(t, dir, "--wal-segment-bytes", "1048576", "--wal-trim-interval", "0", "--wal-single-copy=false")
	produceN(t, p.addr, "segs", 400, 8<<10) // ~3.3 MB: several segments
	stopKlite(t, p)
	if _, err := os.Stat(segFile(dir, 3)); err != nil {
		t.Fatalf("want at least 3 segments: %v", err)
	}
	os.Remove(segFile(dir, 2))
	line := refusedStart(t, dir, "--wal-segment-bytes", "1048576", "--wal-trim-interval", "0")
	if !strings.Contains(line, segFile(dir, 2)) || !strings.Contains(line, "missing") {
		t.Fatalf("error line does not name the missing segment: %s", line)
	}
}

// Finding 5: fewer than 4 KiB of zeros at the end of a rotated segment were taken for padding,
// losing its last batch silently.
func TestProcessZeroedBatchInRotatedSegmentRefusesStart(t *testing.T) {
	dir := t.TempDir()
	p := startKlite(t, dir, "--wal-segment-bytes", "1048576", "--wal-trim-interval", "0") // WAL kept whole
	produceN(t, p.addr, "zeros", 500, 3<<10)                                              // ~1.6 MB: segment 1 is rotated
	stopKlite(t, p)
	if _, err := os.Stat(segFile(dir, 2)); err != nil {
		t.Fatalf("segment 1 was not rotated: %v", err)
	}
	ents := walEntries(t, segFile(dir, 1))
	for len(ents) > 0 && ents[len(ents)-1].seal {
		ents = ents[:len(ents)-1]
	}
	if len(ents) < 2 {
		t.Fatalf("segment 1 has %d batches", len(ents))
	}
	last := ents[len(ents)-1] // the last batch
	// The batch (and the seal) lost to zeros, the file ending on a block boundary: fewer
	// than 4 KiB of zeros after the previous batch, which looks like direct-I/O padding.
	data, _ := os.ReadFile(segFile(dir, 1))
	end := (last.start + 4095) &^ 4095
	data = append(data[:last.start], make([]byte, end-last.start)...)
	os.WriteFile(segFile(dir, 1), data, 0o644)
	line := refusedStart(t, dir, "--wal-segment-bytes", "1048576", "--wal-trim-interval", "0")
	if !strings.Contains(line, segFile(dir, 1)) || !strings.Contains(line, fmt.Sprintf("at byte %d", last.start)) {
		t.Fatalf("error line does not name segment 1 at byte %d: %s", last.start, line)
	}
}

// Finding 4: after a clean shutdown nothing is torn, so a damaged last batch is corruption
// (it used to be cut as a torn tail, up to 32 MiB of it).
func TestProcessDamageAfterCleanShutdownRefusesStart(t *testing.T) {
	dir := t.TempDir()
	p := startKlite(t, dir)
	produceN(t, p.addr, "clean", 50, 200)
	stopKlite(t, p)
	ents := walEntries(t, segFile(dir, 1))
	last := ents[len(ents)-1]
	data, _ := os.ReadFile(segFile(dir, 1))
	data[last.end-10] ^= 0xFF
	os.WriteFile(segFile(dir, 1), data, 0o644)
	line := refusedStart(t, dir)
	if !strings.Contains(line, segFile(dir, 1)) || !strings.Contains(line, fmt.Sprintf("at byte %d", last.start)) || !strings.Contains(line, "shut down cleanly") {
		t.Fatalf("error line does not name segment 1 at byte %d: %s", last.start, line)
	}
}

// Finding 2: groups.log damage moved committed offsets backwards silently.
func TestProcessDamagedGroupsLogRefusesStart(t *testing.T) {
	dir := t.TempDir()
	p := startKlite(t, dir)
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "offs"); err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 50; i++ {
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "offs", Partition: 0, At: i, LeaderEpoch: -1})
		if resp, err := adm.CommitOffsets(ctx, "g", offs); err != nil || resp.Error() != nil {
			t.Fatalf("commit %d: %v %v", i, err, resp.Error())
		}
	}
	cl.Close()
	stopKlite(t, p)
	path := filepath.Join(dir, "meta", "groups.log")
	data, _ := os.ReadFile(path)
	mid := len(data) / 2
	data[mid] ^= 0x01
	os.WriteFile(path, data, 0o644)
	line := refusedStart(t, dir)
	if !strings.Contains(line, path) || !strings.Contains(line, "at byte ") {
		t.Fatalf("error line does not name %s: %s", path, line)
	}
}
