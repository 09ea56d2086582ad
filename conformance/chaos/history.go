// Package chaos is a Jepsen-style checker for klite: workloads record what producers had
// acknowledged and what consumers saw (a History), faults (SIGKILL, SIGSTOP) are applied to a
// real broker process meanwhile, and Check reports every broken promise.
//
// A value is written once (values are unique), so any value read twice at two offsets, any
// offset read with two values, and any acknowledged value never read is a broker bug (or,
// for duplicates, an allowed effect of a non-idempotent producer's retries).
package chaos

import (
	"sync"
	"time"
)

// TxnOutcome is what the producer knows of the transaction a write belonged to.
type TxnOutcome int

const (
	// NoTxn marks a write outside any transaction.
	NoTxn TxnOutcome = iota
	// Committed: EndTransaction(commit) succeeded.
	Committed
	// Aborted: the producer aborted (EndTransaction(abort) was called), whatever its answer.
	Aborted
	// Unknown: commit was attempted but its answer was lost; both outcomes are allowed.
	Unknown
)

// Write is one produce attempt.
type Write struct {
	Value     string
	Partition int32
	Acked     bool  // the broker acknowledged it (acks=all)
	Offset    int64 // the acknowledged offset
	Txn       int   // transaction id (0: none)
}

// Txn is one transaction of a transactional producer.
type Txn struct {
	ID      int
	Outcome TxnOutcome
	// CommitAt is when EndTransaction(commit) was called: a read_committed read of the
	// transaction's data returned before it is a read of uncommitted data.
	CommitAt time.Time
}

// Read is one record a consumer returned.
type Read struct {
	Partition int32
	Offset    int64
	Value     string
}

// Poll is one poll's records for one consumer session. A session is one consumer reading
// forward from where it started (a new client, or a re-assignment, starts a new session).
type Poll struct {
	Session       int
	ReadCommitted bool
	At            time.Time // when the poll returned
	Reads         []Read
	// Final marks the reads from the start after the last fault: when a history has them,
	// an acknowledged value they miss is lost even if a live consumer saw it before a fault.
	Final bool
}

// OffsetCommit is a consumer group offset, acknowledged by a commit or read back by a fetch.
type OffsetCommit struct {
	Group     string
	Partition int32
	Offset    int64
	Fetched   bool // read back (OffsetFetch) rather than acknowledged by OffsetCommit
	// At is when the commit was acknowledged (AddCommit sets it when zero).
	At time.Time
	// SentAt, for a fetch, is when it was sent: only commits acknowledged before it bind
	// it (one acknowledged while the fetch was in flight may be missed legitimately). Zero:
	// every commit recorded before it binds it.
	SentAt time.Time
}

// History is everything a workload recorded; safe for concurrent use while recording.
type History struct {
	mu      sync.Mutex
	Writes  []Write
	Txns    map[int]*Txn
	Polls   []Poll
	Commits []OffsetCommit
	Ops     int // operations attempted (produce, poll, commit, transaction end)
}

// NewHistory returns an empty history.
func NewHistory() *History { return &History{Txns: map[int]*Txn{}} }

// AddWrite records a produce attempt's result.
func (h *History) AddWrite(w Write) {
	h.mu.Lock()
	h.Writes = append(h.Writes, w)
	h.Ops++
	h.mu.Unlock()
}

// SetTxn records (or updates) a transaction's outcome.
func (h *History) SetTxn(t Txn) {
	h.mu.Lock()
	if old, ok := h.Txns[t.ID]; ok && t.CommitAt.IsZero() {
		t.CommitAt = old.CommitAt
	}
	h.Txns[t.ID] = &t
	h.Ops++
	h.mu.Unlock()
}

// AddPoll records one poll (polls with no record are counted as operations only, except
// final ones: that final reads happened, even empty, is what makes a missing value lost).
func (h *History) AddPoll(p Poll) {
	h.mu.Lock()
	if len(p.Reads) > 0 || p.Final {
		h.Polls = append(h.Polls, p)
	}
	h.Ops++
	h.mu.Unlock()
}

// AddCommit records an acknowledged or fetched group offset.
func (h *History) AddCommit(c OffsetCommit) {
	h.mu.Lock()
	if c.At.IsZero() {
		c.At = time.Now()
	}
	h.Commits = append(h.Commits, c)
	h.Ops++
	h.mu.Unlock()
}
