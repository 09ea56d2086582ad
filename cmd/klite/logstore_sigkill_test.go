//go:build integration

package main

// SIGKILL while the partition segment store is busy: tiny segments (a roll every few
// batches), retention and compaction every 30 ms, and an idempotent producer writing all the
// time, so the kills land during rolls, retention deletes and compaction swaps (several kills
// per test, at random moments). After each restart nothing acknowledged is lost, except what
// retention or compaction may legitimately remove: retention only records older than
// retention.ms, compaction only a key's older values.

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var fastJobFlags = []string{"--retention-check-interval", "30ms", "--compaction-backoff", "30ms", "--wal-segment-bytes", "1048576"}

type ackedRec struct {
	key, val string
	offset   int64
}

// killCycles runs cycles of: start klite on dir, produce records rec(i) (i counting on
// across cycles; the first warmup acknowledged one by one first) for a random while, SIGKILL. It returns the acknowledged records and a
// klite started once more on dir.
func killCycles(t *testing.T, dir, topic string, cfgs map[string]*string, cycles, warmup int, rec func(i int) *kgo.Record) ([]ackedRec, *proc) {
	t.Helper()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	var mu sync.Mutex
	var acked []ackedRec
	next := 0
	for c := 0; c < cycles; c++ {
		p := startKlite(t, dir, fastJobFlags...)
		if c == 0 {
			adm, err := kgo.NewClient(kgo.SeedBrokers(p.addr))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kadm.NewClient(adm).CreateTopic(context.Background(), 1, 1, cfgs, topic); err != nil {
				t.Fatal(err)
			}
			adm.Close()
		}
		// No record delivery timeout: franz-go counts it from the record timestamp, an hour
		// old for retention; records left for the dead broker fail when the client closes.
		cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0),
			kgo.ProducerBatchCompression(kgo.NoCompression()))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		for ; c == 0 && next < warmup; next++ { // acknowledged before the rest is produced
			r := rec(next)
			key, val := string(r.Key), string(r.Value)
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				if err != nil {
					t.Errorf("warm-up record: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, ackedRec{key, val, r.Offset})
				mu.Unlock()
			})
		}
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		killAt := time.Now().Add(time.Duration(700+rng.Intn(1300)) * time.Millisecond)
		var wg sync.WaitGroup
		killed := false
		for n := 0; n < 20000 && !killed; n++ {
			r := rec(next)
			next++
			key, val := string(r.Key), string(r.Value)
			wg.Add(1)
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err == nil {
					mu.Lock()
					acked = append(acked, ackedRec{key, val, r.Offset})
					mu.Unlock()
				}
			})
			if n%20 == 19 {
				time.Sleep(2 * time.Millisecond)
			}
			if time.Now().After(killAt) {
				if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		waited := make(chan struct{})
		go func() { wg.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-time.After(8 * time.Second):
		}
		cl.Close()
		<-waited
		cancel()
		<-p.exited
	}
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	return acked, startKlite(t, dir, fastJobFlags...)
}

// readAll consumes topic partition 0 from its log start to its high watermark.
func readAll(t *testing.T, p *proc, topic string) map[int64]*kgo.Record {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(p.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	cons, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[int64]*kgo.Record{}
	last := int64(-1)
	deadline := time.Now().Add(20 * time.Second)
	for last < end.Offset-1 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cons.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Offset] = r
			last = max(last, r.Offset)
		})
	}
	if last < end.Offset-1 {
		t.Fatalf("read up to offset %d, high watermark %d", last, end.Offset)
	}
	return got
}

// TestSIGKILLDuringSegmentRolls: 4 KiB segments roll every few batches; every acknowledged
// record is at its acknowledged offset after each kill, and no offset is missing.
func TestSIGKILLDuringSegmentRolls(t *testing.T) {
	dir := t.TempDir()
	s := func(v string) *string { return &v }
	acked, p := killCycles(t, dir, "roll", map[string]*string{"segment.bytes": s("4096")}, 3, 0, func(i int) *kgo.Record {
		return &kgo.Record{Value: []byte(fmt.Sprintf("r%06d-%s", i, strings.Repeat("x", 200)))}
	})
	got := readAll(t, p, "roll")
	for _, a := range acked {
		if r := got[a.offset]; r == nil || string(r.Value) != a.val {
			t.Fatalf("acknowledged record %.7s at offset %d lost or changed", a.val, a.offset)
		}
	}
	for o := int64(0); o < int64(len(got)); o++ {
		if got[o] == nil {
			t.Fatalf("offset %d missing of %d", o, len(got))
		}
	}
	t.Logf("%d acknowledged records across 3 kills, all present", len(acked))
}

// TestSIGKILLDuringRetention: retention.ms=60000 with records an hour old first and then
// interleaved: the
// jobs loop deletes old segments all the time; no record younger than retention.ms that was
// acknowledged is lost.
func TestSIGKILLDuringRetention(t *testing.T) {
	dir := t.TempDir()
	s := func(v string) *string { return &v }
	old := time.Now().Add(-time.Hour)
	acked, p := killCycles(t, dir, "ret", map[string]*string{"segment.bytes": s("4096"), "retention.ms": s("60000")}, 3, 300, func(i int) *kgo.Record {
		r := &kgo.Record{Key: []byte("fresh"), Value: []byte(fmt.Sprintf("r%06d-%s", i, strings.Repeat("x", 200)))}
		if i < 300 || (i/50)%2 == 0 { // 300 old records first, then runs of 50 old and 50 fresh
			r.Key, r.Timestamp = []byte("old"), old
		}
		return r
	})
	got := readAll(t, p, "ret")
	fresh, oldLost := 0, 0
	for _, a := range acked {
		r := got[a.offset]
		if a.key == "old" {
			if r == nil {
				oldLost++
			}
			continue
		}
		fresh++
		if r == nil || string(r.Value) != a.val {
			t.Fatalf("acknowledged fresh record %.7s at offset %d lost", a.val, a.offset)
		}
	}
	if oldLost == 0 {
		t.Fatal("retention deleted nothing")
	}
	t.Logf("%d fresh records kept; retention removed %d old ones", fresh, oldLost)
}

// TestSIGKILLDuringCompaction: a compacted topic cleaned every 30 ms; after the kills every
// key still reads its newest acknowledged value at its offset.
func TestSIGKILLDuringCompaction(t *testing.T) {
	dir := t.TempDir()
	s := func(v string) *string { return &v }
	acked, p := killCycles(t, dir, "cmp", map[string]*string{"cleanup.policy": s("compact"), "segment.bytes": s("4096"),
		"min.cleanable.dirty.ratio": s("0.01")}, 3, 0, func(i int) *kgo.Record {
		return &kgo.Record{Key: []byte(fmt.Sprintf("k%02d", i%40)), Value: []byte(fmt.Sprintf("v%06d-%s", i, strings.Repeat("x", 100)))}
	})
	newest := map[string]ackedRec{}
	for _, a := range acked {
		if a.offset >= newest[a.key].offset {
			newest[a.key] = a
		}
	}
	got := readAll(t, p, "cmp")
	for k, a := range newest {
		if r := got[a.offset]; r == nil || string(r.Value) != a.val {
			t.Fatalf("key %s: newest acknowledged value %.7s at offset %d lost", k, a.val, a.offset)
		}
	}
	t.Logf("%d acknowledged records, %d read after compaction; every key's newest value present", len(acked), len(got))
}
