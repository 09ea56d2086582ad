package logstore

import (
	"testing"
	"time"
)

// The background prefetches run in the order they were queued, never more than
// readAheadStreams at once, and a full queue refuses a job (an empty one takes any).
func TestReadAheadQueueOrderAndStreams(t *testing.T) {
	var q bgQueue
	const jobs = 6
	started := make(chan int, jobs)
	release := make(chan struct{})
	for i := range jobs {
		if !q.push(1, func() {
			started <- i
			<-release
		}) {
			t.Fatalf("job %d refused by a queue holding %d bytes", i, i)
		}
	}
	next := 0
	expect := func(n int) {
		t.Helper()
		for range n {
			select {
			case i := <-started:
				if i != next {
					t.Fatalf("job %d started where job %d was next", i, next)
				}
				next++
			case <-time.After(10 * time.Second):
				t.Fatalf("job %d did not start", next)
			}
		}
		select {
		case i := <-started:
			t.Fatalf("job %d started while %d ran (at most %d at once)", i, readAheadStreams, readAheadStreams)
		case <-time.After(50 * time.Millisecond):
		}
	}
	expect(readAheadStreams)
	// Each finished job lets exactly the next one in.
	for next < jobs {
		release <- struct{}{}
		expect(1)
	}
	for range readAheadStreams {
		release <- struct{}{}
	}
	// Once the workers are gone (their goroutines end with the queue), new jobs run again.
	done := make(chan struct{})
	waitQueue(t, &q, "the queue's workers did not finish", func() bool {
		return q.running == 0 && len(q.jobs) == 0 && q.queued == 0
	})
	if !q.push(4*readAheadQueueBytes, func() { close(done) }) {
		t.Fatal("an empty queue refused a job larger than its byte bound")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a job pushed on an idle queue did not run")
	}
}

func TestReadAheadQueueBytesBound(t *testing.T) {
	var q bgQueue
	block := make(chan struct{})
	defer close(block)
	// Occupy the workers, so that further jobs wait in the queue.
	for range readAheadStreams {
		if !q.push(1, func() { <-block }) {
			t.Fatal("refused a job on an idle queue")
		}
	}
	waitQueue(t, &q, "the workers did not take the first jobs", func() bool { return len(q.jobs) == 0 })
	half := int64(readAheadQueueBytes / 2)
	if !q.push(half, func() { <-block }) || !q.push(half, func() { <-block }) {
		t.Fatal("refused jobs within the byte bound")
	}
	if q.push(1, func() { t.Error("a refused job ran") }) {
		t.Fatal("took a job past the byte bound")
	}
}

// waitQueue waits (at most 10 s) until cond, called with q.mu held, holds.
func waitQueue(t *testing.T, q *bgQueue, failure string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.mu.Lock()
		ok := cond()
		q.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(failure)
		}
		time.Sleep(time.Millisecond)
	}
}
