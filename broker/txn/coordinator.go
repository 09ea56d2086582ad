// Package txn is klite's transaction coordinator, modelled on Kafka 4.0's TransactionCoordinator
// for transaction protocol version 1 (KIP-890 part 2, "TV2", is not implemented: the broker
// advertises no transaction.version feature, so clients add partitions explicitly and keep
// their epoch across transactions).
//
// Per transactional ID it keeps the producer ID and epoch, the state (Empty, Ongoing,
// PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, Dead), the partitions and groups
// in the open transaction, offsets staged by TxnOffsetCommit, and the timeout.
//
// Concurrency: one mutex guards all state; nothing blocks under it except the fsync of the
// coordinator's own MetaLog. Ending a transaction is asynchronous: the state goes to Prepare*
// (durably), the Effects write markers to every partition and apply staged offsets, and the
// completion callback moves the state to Complete* (durably) and answers the waiters. A
// transaction found in Prepare* at start-up (crash between the two records) is driven to
// completion again; markers are idempotent for the partitions.
//
// Time comes from Config.Now; Tick (called periodically by the broker, directly by tests)
// aborts transactions older than their timeout and retries completions that failed.
package txn

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/klite/klite/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// State is a transaction's state, named as Kafka names it in DescribeTransactions.
type State int8

const (
	Empty State = iota
	Ongoing
	PrepareCommit
	PrepareAbort
	CompleteCommit
	CompleteAbort
	Dead
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead"}

func (s State) String() string { return stateNames[s] }

// ParseState parses a state name (as ListTransactions filters give them).
func ParseState(s string) (State, bool) {
	for i, n := range stateNames {
		if n == s {
			return State(i), true
		}
	}
	return 0, false
}

// TP names a partition.
type TP struct {
	Topic     string
	Partition int32
}

// Offset is one offset committed in a transaction.
type Offset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// Effects are what the coordinator asks of the broker. Callbacks may run on any goroutine.
type Effects interface {
	// AllocateProducerID returns a producer ID never handed out before.
	AllocateProducerID() (int64, error)
	// WriteMarkers durably appends a commit or abort marker of producer pid/epoch to every
	// partition in parts (deleted partitions are skipped), then calls done.
	WriteMarkers(pid int64, epoch int16, commit bool, parts []TP, done func(error))
	// CommitOffsets durably makes offsets the group's committed offsets, then calls done.
	CommitOffsets(group string, offsets map[TP]Offset, done func(error))
}

// Config configures a Coordinator.
type Config struct {
	// Log is the coordinator's MetaLog (closed by Close). If nil, Path is opened; if Path is
	// empty too, an in-memory log is used.
	Log     storage.MetaLog
	Path    string
	Effects Effects
	Now     func() time.Time
	Logger  *slog.Logger
	// MaxTimeout is transaction.max.timeout.ms (default 15 minutes).
	MaxTimeout time.Duration
	// CompactBytes: the log is rewritten as a snapshot above this size (default 4 MiB).
	CompactBytes int64
}

// ErrClosed answers requests after Close.
var ErrClosed = errors.New("txn: coordinator closed")

// Coordinator is the transaction coordinator of one broker.
type Coordinator struct {
	cfg Config
	log *slog.Logger
	fx  Effects

	mu       sync.Mutex
	closed   bool
	txns     map[string]*txnState
	pids     map[int64]*txnState // current producer ID -> transactional ID
	lastSnap int64
}

// txnState is one transactional ID. Fields are guarded by Coordinator.mu.
type txnState struct {
	id        string
	pid       int64
	epoch     int16
	lastEpoch int16 // epoch before the last bump (-1 if none): a retried InitProducerID
	timeout   time.Duration
	state     State
	start     time.Time // when the open transaction began
	updated   time.Time
	parts     map[TP]bool
	groups    map[string]bool
	offsets   map[string]map[TP]Offset

	driving bool                // a completion is in flight
	waiters []func(*kerr.Error) // answered when the transaction completes
}

// New replays the log. Call Start once the broker can write markers (after WAL replay).
func New(cfg Config) (*Coordinator, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 15 * time.Minute
	}
	if cfg.CompactBytes <= 0 {
		cfg.CompactBytes = 4 << 20
	}
	if cfg.Log == nil {
		if cfg.Path == "" {
			cfg.Log = storage.NewMemMetaLog()
		} else {
			if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o755); err != nil {
				return nil, fmt.Errorf("txn log dir: %w", err)
			}
			l, err := storage.OpenMetaLog(cfg.Path)
			if err != nil {
				return nil, fmt.Errorf("opening txn log: %w", err)
			}
			cfg.Log = l
		}
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger, fx: cfg.Effects, txns: map[string]*txnState{}, pids: map[int64]*txnState{}}
	if err := c.load(); err != nil {
		cfg.Log.Close()
		return nil, err
	}
	return c, nil
}

// Start drives transactions left in PrepareCommit/PrepareAbort by a crash to completion.
func (c *Coordinator) Start() {
	c.mu.Lock()
	var todo []*txnState
	for _, t := range c.txns {
		if t.state == PrepareCommit || t.state == PrepareAbort {
			todo = append(todo, t)
		}
	}
	c.mu.Unlock()
	for _, t := range todo {
		c.log.Info("completing transaction left prepared at start", "transactional_id", t.id, "state", t.state)
		c.drive(t)
	}
}

// Close stops answering and closes the log. Completions in flight finish without effect.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	var waiters []func(*kerr.Error)
	for _, t := range c.txns {
		waiters = append(waiters, t.waiters...)
		t.waiters = nil
	}
	err := c.cfg.Log.Close()
	c.mu.Unlock()
	for _, w := range waiters {
		w(kerr.CoordinatorNotAvailable)
	}
	return err
}

// InitProducerID answers InitProducerID for a transactional ID: a new ID gets a producer ID
// with epoch 0; an existing one has its epoch bumped (fencing older producers), and an open
// transaction is aborted first. reqPID/reqEpoch are the KIP-360 fields (-1 when absent).
func (c *Coordinator) InitProducerID(id string, timeout time.Duration, reqPID int64, reqEpoch int16, respond func(pid int64, epoch int16, err *kerr.Error)) {
	fail := func(e *kerr.Error) { respond(-1, -1, e) }
	if timeout <= 0 || timeout > c.cfg.MaxTimeout {
		fail(kerr.InvalidTransactionTimeout)
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		fail(kerr.CoordinatorNotAvailable)
		return
	}
	t := c.txns[id]
	if t == nil {
		pid, err := c.fx.AllocateProducerID()
		if err != nil {
			// As Kafka's producer ID manager without a block: retriable.
			c.mu.Unlock()
			fail(kerr.CoordinatorLoadInProgress)
			return
		}
		t = &txnState{id: id, pid: pid, epoch: 0, lastEpoch: -1, timeout: timeout, state: Empty, updated: c.cfg.Now()}
		if err := c.persistLocked(t); err != nil {
			c.mu.Unlock()
			fail(errLogWrite)
			return
		}
		c.txns[id] = t
		c.pids[pid] = t
		c.mu.Unlock()
		respond(t.pid, t.epoch, nil)
		return
	}
	if reqPID >= 0 {
		switch {
		case reqPID != t.pid:
			c.mu.Unlock()
			fail(kerr.InvalidProducerIDMapping)
			return
		case reqEpoch == t.lastEpoch && (t.state == Empty || t.state == CompleteAbort || t.state == CompleteCommit):
			// A retry of the InitProducerID that made the current epoch.
			pid, epoch := t.pid, t.epoch
			c.mu.Unlock()
			respond(pid, epoch, nil)
			return
		case reqEpoch != t.epoch:
			c.mu.Unlock()
			fail(kerr.ProducerFenced)
			return
		}
	}
	switch t.state {
	case PrepareCommit, PrepareAbort:
		c.mu.Unlock()
		fail(kerr.ConcurrentTransactions)
		return
	case Ongoing:
		// Fence the old producer: bump the epoch, abort with the new epoch (so the
		// partitions fence it too), and answer once the abort is complete.
		if err := c.changeLocked(t, func() {
			c.bumpLocked(t)
			t.timeout = timeout
			t.state = PrepareAbort
			t.updated = c.cfg.Now()
		}); err != nil {
			c.mu.Unlock()
			fail(errLogWrite)
			return
		}
		t.waiters = append(t.waiters, func(e *kerr.Error) {
			if e != nil {
				fail(e)
				return
			}
			// Bump once more, as Kafka does when the client retries: the fenced producer's
			// epoch is then neither current nor "previous" (a TV2 EndTxn retry).
			c.mu.Lock()
			err := c.changeLocked(t, func() {
				c.bumpLocked(t)
				t.updated = c.cfg.Now()
			})
			pid, epoch := t.pid, t.epoch
			c.mu.Unlock()
			if err != nil {
				fail(errLogWrite)
				return
			}
			respond(pid, epoch, nil)
		})
		c.mu.Unlock()
		c.drive(t)
		return
	}
	if err := c.changeLocked(t, func() {
		c.bumpLocked(t)
		t.timeout = timeout
		t.state = Empty
		t.start = time.Time{} // Kafka: txnStartTimestamp -1 until the next transaction
		t.updated = c.cfg.Now()
	}); err != nil {
		c.mu.Unlock()
		fail(errLogWrite)
		return
	}
	pid, epoch := t.pid, t.epoch
	c.mu.Unlock()
	respond(pid, epoch, nil)
}

// changeLocked applies change to t and persists t. If the write fails, t's fields (and the
// producer ID index, which an epoch bump past exhaustion changes) are put back as they were:
// memory never runs ahead of txns.log, so a client told the write failed finds the state it
// had (issue 18: an epoch bumped in memory only fenced a producer that a restart unfenced).
// change must replace t's maps, not modify them in place.
func (c *Coordinator) changeLocked(t *txnState, change func()) error {
	prev := *t
	change()
	err := c.persistLocked(t)
	if err == nil {
		return nil
	}
	if t.pid != prev.pid {
		delete(c.pids, t.pid)
		c.pids[prev.pid] = t
	}
	t.pid, t.epoch, t.lastEpoch, t.timeout, t.state = prev.pid, prev.epoch, prev.lastEpoch, prev.timeout, prev.state
	t.start, t.updated, t.parts, t.groups, t.offsets = prev.start, prev.updated, prev.parts, prev.groups, prev.offsets
	return err
}

// bumpLocked increments the epoch, moving to a new producer ID when it would overflow.
func (c *Coordinator) bumpLocked(t *txnState) {
	if t.epoch >= math.MaxInt16-1 {
		pid, err := c.fx.AllocateProducerID()
		if err == nil {
			delete(c.pids, t.pid)
			t.pid, t.epoch, t.lastEpoch = pid, 0, -1
			c.pids[pid] = t
			return
		}
		c.log.Error("allocating a producer ID on epoch exhaustion failed", "transactional_id", t.id, "err", err)
	}
	t.lastEpoch = t.epoch
	t.epoch++
}

// checkLocked validates the producer of a request against the transactional ID.
func (c *Coordinator) checkLocked(id string, pid int64, epoch int16) (*txnState, *kerr.Error) {
	if c.closed {
		return nil, kerr.CoordinatorNotAvailable
	}
	t := c.txns[id]
	if t == nil || t.pid != pid {
		return nil, kerr.InvalidProducerIDMapping
	}
	if epoch != t.epoch {
		return nil, kerr.ProducerFenced
	}
	if t.state == PrepareCommit || t.state == PrepareAbort {
		return nil, kerr.ConcurrentTransactions
	}
	if t.state == Dead {
		return nil, kerr.InvalidTxnState
	}
	return t, nil
}

// beginLocked makes t Ongoing if it is not yet.
func (c *Coordinator) beginLocked(t *txnState) {
	if t.state != Ongoing {
		t.state = Ongoing
		t.start = c.cfg.Now()
		t.parts = map[TP]bool{}
		t.groups = map[string]bool{}
		t.offsets = nil
	}
	t.updated = c.cfg.Now()
}

// AddPartitions adds partitions to the transaction (AddPartitionsToTxn), starting it if needed.
func (c *Coordinator) AddPartitions(id string, pid int64, epoch int16, parts []TP) *kerr.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, e := c.checkLocked(id, pid, epoch)
	if e != nil {
		return e
	}
	if t.state == Ongoing {
		all := true
		for _, tp := range parts {
			all = all && t.parts[tp]
		}
		if all {
			return nil // nothing new: no write
		}
	}
	prev := *t
	prevParts := t.parts
	c.beginLocked(t)
	newParts := make(map[TP]bool, len(t.parts)+len(parts))
	for tp := range t.parts {
		newParts[tp] = true
	}
	for _, tp := range parts {
		newParts[tp] = true
	}
	t.parts = newParts
	if err := c.persistLocked(t); err != nil {
		t.state, t.start, t.parts, t.groups, t.offsets = prev.state, prev.start, prevParts, prev.groups, prev.offsets
		return errLogWrite
	}
	return nil
}

// VerifyPartitions reports, per partition, whether it is in the ongoing transaction of the
// producer (AddPartitionsToTxn v4+ VerifyOnly, KIP-890 part 1): nil or the error to answer.
func (c *Coordinator) VerifyPartitions(id string, pid int64, epoch int16, parts []TP) (map[TP]*kerr.Error, *kerr.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, e := c.checkLocked(id, pid, epoch)
	if e != nil {
		return nil, e
	}
	if t.state == PrepareCommit || t.state == PrepareAbort {
		return nil, kerr.ConcurrentTransactions
	}
	// A partition the transaction does not hold is TRANSACTION_ABORTABLE, as Kafka 4.0
	// answers it (KIP-890: the producer can abort and go on).
	out := make(map[TP]*kerr.Error, len(parts))
	for _, tp := range parts {
		if t.state != Ongoing || !t.parts[tp] {
			out[tp] = kerr.TransactionAbortable
		} else {
			out[tp] = nil
		}
	}
	return out, nil
}

// AddGroup adds a consumer group to the transaction (AddOffsetsToTxn).
func (c *Coordinator) AddGroup(id string, pid int64, epoch int16, group string) *kerr.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, e := c.checkLocked(id, pid, epoch)
	if e != nil {
		return e
	}
	if t.state == Ongoing && t.groups[group] {
		return nil
	}
	prev := *t
	c.beginLocked(t)
	groups := make(map[string]bool, len(t.groups)+1)
	for g := range t.groups {
		groups[g] = true
	}
	groups[group] = true
	t.groups = groups
	if err := c.persistLocked(t); err != nil {
		t.state, t.start, t.parts, t.groups, t.offsets = prev.state, prev.start, prev.parts, prev.groups, prev.offsets
		return errLogWrite
	}
	return nil
}

// StageOffsets records offsets committed in the transaction (TxnOffsetCommit); they are
// applied to the group when the transaction commits and dropped when it aborts. They become
// durable with the PrepareCommit record (an open transaction is never committed after a
// crash, so nothing is lost by not writing them earlier).
func (c *Coordinator) StageOffsets(id string, pid int64, epoch int16, group string, offsets map[TP]Offset) *kerr.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, e := c.checkLocked(id, pid, epoch)
	if e != nil {
		return e
	}
	if t.state != Ongoing || !t.groups[group] {
		return kerr.InvalidTxnState
	}
	if t.offsets == nil {
		t.offsets = map[string]map[TP]Offset{}
	}
	g := t.offsets[group]
	if g == nil {
		g = map[TP]Offset{}
		t.offsets[group] = g
	}
	for tp, o := range offsets {
		g[tp] = o
	}
	t.updated = c.cfg.Now()
	return nil
}

// errLogWrite is the answer when txns.log cannot be written. Kafka's transaction state
// manager maps a failed append's KAFKA_STORAGE_ERROR to NOT_COORDINATOR (and timeouts or
// missing replicas to COORDINATOR_NOT_AVAILABLE): clients then look the coordinator up
// again and retry, where KAFKA_STORAGE_ERROR would be fatal to a transactional producer.
var errLogWrite = kerr.NotCoordinator
