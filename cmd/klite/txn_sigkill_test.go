//go:build integration

package main

// Transactions across SIGKILL: a producer runs transactions (alternately committed
// and aborted) while klite is killed at an arbitrary point; after a restart a read_committed
// consumer must see every acknowledged committed transaction completely, no record of an
// aborted one, no duplicate, and the transaction in flight at the kill either completely or
// not at all (it is completed or aborted by its timeout after the restart).

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestSIGKILLMidTransactions(t *testing.T) {
	dir := t.TempDir()
	p := startKlite(t, dir)
	const perTxn = 5
	adm, err := kgo.NewClient(kgo.SeedBrokers(p.addr))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(adm).CreateTopic(context.Background(), 3, 1, nil, "txk"); err != nil {
		t.Fatal(err)
	}
	adm.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.TransactionalID("txk-1"), kgo.TransactionTimeout(3*time.Second),
		kgo.DefaultProduceTopic("txk"), kgo.RecordRetries(2), kgo.RecordDeliveryTimeout(4*time.Second), kgo.RequestTimeoutOverhead(2*time.Second), kgo.RetryTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// The producer runs in its own goroutine: once the broker is dead a transactional kgo
	// client may block past its timeouts, so the test waits for it only a bounded time and
	// leaves it behind.
	var mu sync.Mutex
	committed, aborted := map[int]bool{}, map[int]bool{}
	inFlight := -1
	stop := make(chan struct{})
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			inFlight = i
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := cl.BeginTransaction()
			for j := 0; err == nil && j < perTxn; j++ {
				err = cl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(j)), Value: []byte(fmt.Sprintf("t%03d-%d", i, j))}).FirstErr()
			}
			commit := i%3 != 1
			if err == nil {
				err = cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
			}
			cancel()
			if err != nil {
				return // the broker died somewhere in this transaction
			}
			mu.Lock()
			if commit {
				committed[i] = true
			} else {
				aborted[i] = true
			}
			inFlight = -1
			mu.Unlock()
		}
	}()
	time.Sleep(700 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	close(stop)
	select {
	case <-loopDone:
	case <-time.After(10 * time.Second):
	}
	go cl.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(committed) == 0 || len(aborted) == 0 {
		t.Fatalf("too few transactions before the kill: %d committed, %d aborted", len(committed), len(aborted))
	}

	p2 := startKlite(t, dir)
	cons, err := kgo.NewClient(kgo.SeedBrokers(p2.addr), kgo.ConsumeTopics("txk"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	// Wait until nothing is left open (the in-flight transaction times out after 3 s), so
	// read_committed sees the final outcome of every transaction.
	ac := kadm.NewClient(cons)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		lt, err := ac.ListTransactions(ctx, nil, []string{"Ongoing", "PrepareCommit", "PrepareAbort"})
		cancel()
		if err == nil && len(lt) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transactions still open after restart: %v %v", lt, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen := map[string]int{}
	perTx := map[int]int{}
	want := len(committed) * perTxn
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cons.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			seen[string(r.Value)]++
			var i, j int
			fmt.Sscanf(string(r.Value), "t%03d-%d", &i, &j)
			perTx[i]++
		})
		if len(seen) >= want+perTxn {
			break
		}
	}
	for v, n := range seen {
		if n > 1 {
			t.Fatalf("record %s seen %d times", v, n)
		}
	}
	for i := range committed {
		if perTx[i] != perTxn {
			t.Fatalf("committed transaction %d: %d of %d records visible", i, perTx[i], perTxn)
		}
	}
	for i := range aborted {
		if perTx[i] != 0 {
			t.Fatalf("aborted transaction %d: %d records visible", i, perTx[i])
		}
	}
	if inFlight >= 0 && perTx[inFlight] != 0 && perTx[inFlight] != perTxn {
		t.Fatalf("transaction %d in flight at the kill is partly visible: %d of %d", inFlight, perTx[inFlight], perTxn)
	}
	for i := range perTx {
		if !committed[i] && i != inFlight {
			t.Fatalf("records of transaction %d visible, which was neither committed nor in flight", i)
		}
	}
	t.Logf("killed during transaction %d after %d committed and %d aborted; in-flight visible: %v", inFlight, len(committed), len(aborted), perTx[inFlight] == perTxn)
}
