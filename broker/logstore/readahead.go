package logstore

// The background prefetch of catch-up reads. After a fetch answered from a sealed segment
// the broker reads what the consumer will ask for next (ReadSpan, prefetchAfter): not by
// asking the kernel for every range at once (POSIX_FADV_WILLNEED, which submits all of the
// reads before it returns), but by reading the ranges itself, into the page cache
// (readAhead: sendfile to /dev/null), in the order the reads asked for them and at most
// readAheadStreams at a time. On this project's virtual disk a few sequential streams are
// served far faster than the interleaved ranges of several files at once: catching up from
// disk (nine rounds alternated with the WILLNEED prefetch, klite alone, 16 MiB per
// partition), a reader without record decoding read 903-1,267 MB/s against 521-1,060, the
// broker's CPU per GB of a franz-go consumer's catch-up fell from 0.42-0.60 s to 0.28-0.43 s,
// and the franz-go consumer itself read 592-887 MB/s against 519-992 (means 736 against
// 799: within the noise of those rounds). One goroutine per read, each taking a lock to
// read (the order then the scheduler's), had cost that consumer a fifth.

import "sync"

const (
	// readAheadStreams: background prefetches running at once (one or three: no better).
	readAheadStreams = 2
	// readAheadQueueBytes: the bytes the waiting prefetches may ask for at most; past it a
	// read asks for none (the disk is behind the readers already).
	readAheadQueueBytes = 256 << 20
)

// readAheads is the broker-wide queue of background prefetches.
var readAheads bgQueue

// bgQueue runs jobs in the order they were pushed, at most readAheadStreams at a time, on
// goroutines that exist only while there are jobs.
type bgQueue struct {
	mu      sync.Mutex
	jobs    []bgJob
	queued  int64 // the waiting jobs' bytes
	running int
}

type bgJob struct {
	run   func()
	bytes int64
}

// push queues job, which reads n bytes; false when the queue is full (job is not run). An
// empty queue takes any job.
func (q *bgQueue) push(n int64, job func()) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.jobs) > 0 && q.queued+n > readAheadQueueBytes {
		return false
	}
	q.jobs = append(q.jobs, bgJob{job, n})
	q.queued += n
	if q.running < readAheadStreams {
		q.running++
		go q.run()
	}
	return true
}

// run runs queued jobs until there are none.
func (q *bgQueue) run() {
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 {
			q.running--
			q.mu.Unlock()
			return
		}
		job := q.jobs[0]
		q.jobs[0] = bgJob{}
		q.jobs = q.jobs[1:]
		q.queued -= job.bytes
		q.mu.Unlock()
		job.run()
	}
}
