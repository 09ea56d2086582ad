//go:build integration

package main

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSIGKILLKeepsCommittedOffsets commits group offsets (with metadata and leader epoch),
// SIGKILLs the broker right after the commits are answered, and checks every one after restart.
func TestSIGKILLKeepsCommittedOffsets(t *testing.T) {
	dir := t.TempDir()
	p := startKlite(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "offsets-crash"); err != nil {
		t.Fatal(err)
	}
	want := map[string]kadm.Offsets{}
	for g := 0; g < 5; g++ {
		group := fmt.Sprintf("g%d", g)
		offs := kadm.Offsets{}
		for part := int32(0); part < 3; part++ {
			offs.Add(kadm.Offset{Topic: "offsets-crash", Partition: part, At: int64(100*g) + int64(part) + 1,
				LeaderEpoch: 0, Metadata: fmt.Sprintf("m-%s-%d", group, part)})
		}
		resp, err := adm.CommitOffsets(ctx, group, offs)
		if err != nil {
			t.Fatal(err)
		}
		if err := resp.Error(); err != nil {
			t.Fatalf("commit %s: %v", group, err)
		}
		want[group] = offs
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	<-p.exited

	p2 := startKlite(t, dir)
	cl2, err := kgo.NewClient(kgo.SeedBrokers(p2.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	adm2 := kadm.NewClient(cl2)
	for group, offs := range want {
		got, err := adm2.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatalf("fetch %s: %v", group, err)
		}
		offs.Each(func(o kadm.Offset) {
			r, ok := got.Lookup(o.Topic, o.Partition)
			if !ok || r.Err != nil {
				t.Fatalf("%s %s/%d: missing after SIGKILL (%v)", group, o.Topic, o.Partition, r.Err)
			}
			if r.At != o.At || r.Metadata != o.Metadata || r.LeaderEpoch != o.LeaderEpoch {
				t.Fatalf("%s %s/%d: got offset %d metadata %q epoch %d, want %d %q %d", group, o.Topic, o.Partition,
					r.At, r.Metadata, r.LeaderEpoch, o.At, o.Metadata, o.LeaderEpoch)
			}
		})
	}
}
