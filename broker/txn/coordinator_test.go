package txn

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// fakeFX records markers and offsets; markers complete at once unless held.
type fakeFX struct {
	mu      sync.Mutex
	nextPID int64
	markers []string // "pid/epoch commit|abort topic-partition"
	offsets map[string]map[TP]Offset
	fail    error
	held    []func(error)
	hold    bool
}

func (f *fakeFX) AllocateProducerID() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextPID++
	return f.nextPID - 1, nil
}

func (f *fakeFX) WriteMarkers(pid int64, epoch int16, commit bool, parts []TP, done func(error)) {
	f.mu.Lock()
	kind := "abort"
	if commit {
		kind = "commit"
	}
	for _, tp := range parts {
		f.markers = append(f.markers, fmt.Sprintf("%d/%d %s %s-%d", pid, epoch, kind, tp.Topic, tp.Partition))
	}
	err, hold := f.fail, f.hold
	if hold {
		f.held = append(f.held, done)
	}
	f.mu.Unlock()
	if !hold {
		done(err)
	}
}

func (f *fakeFX) CommitOffsets(group string, offsets map[TP]Offset, done func(error)) {
	f.mu.Lock()
	if f.offsets == nil {
		f.offsets = map[string]map[TP]Offset{}
	}
	if f.offsets[group] == nil {
		f.offsets[group] = map[TP]Offset{}
	}
	for tp, o := range offsets {
		f.offsets[group][tp] = o
	}
	f.mu.Unlock()
	done(nil)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t   *testing.T
	fx  *fakeFX
	clk *clock
	log *sliceLog
	c   *Coordinator
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, fx: &fakeFX{nextPID: 100}, clk: &clock{now: time.Unix(1_700_000_000, 0)}, log: &sliceLog{}}
	h.open()
	return h
}

// open (re)creates the coordinator over the same log contents, as a restart would.
func (h *harness) open() {
	h.t.Helper()
	c, err := New(Config{Log: h.log, Effects: h.fx, Now: h.clk.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	h.c = c
}

// sliceLog is a MetaLog whose records survive "restarts" (a new Coordinator on it).
type sliceLog struct {
	mu   sync.Mutex
	recs [][]byte
	fail error // appends fail with it (a full disk)
}

func (l *sliceLog) Append(rec []byte) error { return l.AppendBatch([][]byte{rec}) }
func (l *sliceLog) AppendBatch(recs [][]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return l.fail
	}
	for _, r := range recs {
		l.recs = append(l.recs, append([]byte(nil), r...))
	}
	return nil
}
func (l *sliceLog) Replay(fn func([]byte) error) error {
	l.mu.Lock()
	recs := append([][]byte(nil), l.recs...)
	l.mu.Unlock()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}
func (l *sliceLog) Compact(snap [][]byte) error {
	l.mu.Lock()
	l.recs = nil
	l.mu.Unlock()
	return l.AppendBatch(snap)
}
func (l *sliceLog) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, r := range l.recs {
		n += int64(len(r)) + 8
	}
	return n
}
func (l *sliceLog) Close() error { return nil }

func (h *harness) init(id string, pid int64, epoch int16) (int64, int16, *kerr.Error) {
	h.t.Helper()
	var gp int64
	var ge int16
	var gerr *kerr.Error
	done := false
	h.c.InitProducerID(id, time.Minute, pid, epoch, func(p int64, e int16, err *kerr.Error) { gp, ge, gerr, done = p, e, err, true })
	if !done {
		h.t.Fatal("InitProducerID did not answer")
	}
	return gp, ge, gerr
}

func (h *harness) end(id string, pid int64, epoch int16, commit bool) *kerr.Error {
	h.t.Helper()
	_, err := h.end2(id, pid, epoch, commit, false)
	return err
}

// end2 ends a transaction with TV1 or TV2 semantics and returns the epoch to use next.
func (h *harness) end2(id string, pid int64, epoch int16, commit, tv2 bool) (int16, *kerr.Error) {
	h.t.Helper()
	var got *kerr.Error
	var next int16
	done := false
	h.c.EndTxn(id, pid, epoch, commit, tv2, func(_ int64, e int16, err *kerr.Error) { next, got, done = e, err, true })
	if !done {
		h.t.Fatal("EndTxn did not answer")
	}
	return next, got
}

func wantErr(t *testing.T, what string, got, want *kerr.Error) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func (h *harness) state(id string) State {
	h.t.Helper()
	in, ok := h.c.Describe(id)
	if !ok {
		h.t.Fatalf("%s unknown", id)
	}
	return in.State
}

func TestCommitWritesMarkersAndOffsets(t *testing.T) {
	h := newHarness(t)
	pid, epoch, err := h.init("a", -1, -1)
	wantErr(t, "init", err, nil)
	if pid != 100 || epoch != 0 {
		t.Fatalf("init gave %d/%d, want 100/0", pid, epoch)
	}
	wantErr(t, "produce before add", h.c.ProduceCheck(pid, epoch, TP{"t", 0}), kerr.InvalidTxnState)
	wantErr(t, "add", h.c.AddPartitions("a", pid, epoch, []TP{{"t", 0}, {"t", 1}}), nil)
	wantErr(t, "produce after add", h.c.ProduceCheck(pid, epoch, TP{"t", 0}), nil)
	wantErr(t, "produce other partition", h.c.ProduceCheck(pid, epoch, TP{"t", 2}), kerr.InvalidTxnState)
	wantErr(t, "offsets before AddOffsets", h.c.StageOffsets("a", pid, epoch, "g", map[TP]Offset{{"in", 0}: {Offset: 5}}), kerr.InvalidTxnState)
	wantErr(t, "add group", h.c.AddGroup("a", pid, epoch, "g"), nil)
	wantErr(t, "stage", h.c.StageOffsets("a", pid, epoch, "g", map[TP]Offset{{"in", 0}: {Offset: 5, LeaderEpoch: -1}}), nil)
	if s := h.state("a"); s != Ongoing {
		t.Fatalf("state %v", s)
	}
	wantErr(t, "commit", h.end("a", pid, epoch, true), nil)
	if s := h.state("a"); s != CompleteCommit {
		t.Fatalf("state after commit %v", s)
	}
	if want := []string{"100/0 commit t-0", "100/0 commit t-1"}; !eq(h.fx.markers, want) {
		t.Fatalf("markers %v, want %v", h.fx.markers, want)
	}
	if o := h.fx.offsets["g"][TP{"in", 0}]; o.Offset != 5 {
		t.Fatalf("committed offsets %v", h.fx.offsets)
	}
	wantErr(t, "retried commit", h.end("a", pid, epoch, true), nil)
	wantErr(t, "abort after commit", h.end("a", pid, epoch, false), kerr.InvalidTxnState)
	wantErr(t, "produce after commit", h.c.ProduceCheck(pid, epoch, TP{"t", 0}), kerr.InvalidTxnState)
}

func TestAbortDropsOffsets(t *testing.T) {
	h := newHarness(t)
	pid, epoch, _ := h.init("a", -1, -1)
	wantErr(t, "add group", h.c.AddGroup("a", pid, epoch, "g"), nil)
	wantErr(t, "stage", h.c.StageOffsets("a", pid, epoch, "g", map[TP]Offset{{"in", 0}: {Offset: 5}}), nil)
	wantErr(t, "abort", h.end("a", pid, epoch, false), nil)
	if len(h.fx.offsets) != 0 || len(h.fx.markers) != 0 {
		t.Fatalf("abort applied offsets %v or wrote markers %v", h.fx.offsets, h.fx.markers)
	}
	if s := h.state("a"); s != CompleteAbort {
		t.Fatalf("state %v", s)
	}
	wantErr(t, "end with nothing open", h.end("a", pid, epoch, true), kerr.InvalidTxnState)
}

func TestFencingAbortsOpenTransaction(t *testing.T) {
	h := newHarness(t)
	pid, epoch, _ := h.init("a", -1, -1)
	wantErr(t, "add", h.c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), nil)
	pid2, epoch2, err := h.init("a", -1, -1)
	wantErr(t, "second init", err, nil)
	// Epoch 1 aborts the open transaction; the answer is epoch 2 (bumped again, as Kafka's
	// client retry does), so epoch 1 is not taken for a TV2 retry of the fenced producer.
	if pid2 != pid || epoch2 != 2 {
		t.Fatalf("second init %d/%d, want %d/2", pid2, epoch2, pid)
	}
	if want := []string{"100/1 abort t-0"}; !eq(h.fx.markers, want) {
		t.Fatalf("markers %v, want %v (abort with the bumped epoch)", h.fx.markers, want)
	}
	if s := h.state("a"); s != CompleteAbort {
		t.Fatalf("state %v", s)
	}
	wantErr(t, "old producer add", h.c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), kerr.ProducerFenced)
	wantErr(t, "old producer end", h.end("a", pid, epoch, true), kerr.ProducerFenced)
	wantErr(t, "old producer produce", h.c.ProduceCheck(pid, epoch, TP{"t", 0}), kerr.InvalidProducerEpoch)
	// KIP-360: the current producer may re-init with its ID and epoch; a stale one is fenced.
	_, e3, err := h.init("a", pid, epoch2)
	wantErr(t, "kip-360 bump", err, nil)
	if e3 != 3 {
		t.Fatalf("kip-360 epoch %d, want 3", e3)
	}
	_, e4, err := h.init("a", pid, epoch2) // retry of that same request
	wantErr(t, "kip-360 retry", err, nil)
	if e4 != 3 {
		t.Fatalf("kip-360 retry epoch %d, want 3", e4)
	}
	_, _, err = h.init("a", pid, 0)
	wantErr(t, "kip-360 stale", err, kerr.ProducerFenced)
	_, _, err = h.init("a", pid+7, 2)
	wantErr(t, "kip-360 wrong id", err, kerr.InvalidProducerIDMapping)
}

func TestTimeoutAbortsAndFences(t *testing.T) {
	h := newHarness(t)
	pid, epoch, _ := h.init("a", -1, -1)
	wantErr(t, "add", h.c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), nil)
	h.clk.advance(59 * time.Second)
	h.c.Tick()
	if s := h.state("a"); s != Ongoing {
		t.Fatalf("aborted before the timeout: %v", s)
	}
	h.clk.advance(2 * time.Second)
	h.c.Tick()
	if s := h.state("a"); s != CompleteAbort {
		t.Fatalf("state after timeout %v", s)
	}
	if want := []string{"100/1 abort t-0"}; !eq(h.fx.markers, want) {
		t.Fatalf("markers %v, want %v", h.fx.markers, want)
	}
	wantErr(t, "timed-out producer commits", h.end("a", pid, epoch, true), kerr.ProducerFenced)
}

func TestConcurrentAndInvalidRequests(t *testing.T) {
	h := newHarness(t)
	_, _, err := h.init("a", -1, -1)
	wantErr(t, "init", err, nil)
	h.c.InitProducerID("b", 16*time.Minute, -1, -1, func(_ int64, _ int16, e *kerr.Error) { err = e })
	wantErr(t, "timeout too large", err, kerr.InvalidTransactionTimeout)
	wantErr(t, "unknown id", h.c.AddPartitions("zz", 1, 0, []TP{{"t", 0}}), kerr.InvalidProducerIDMapping)
	wantErr(t, "wrong pid", h.c.AddPartitions("a", 5, 0, []TP{{"t", 0}}), kerr.InvalidProducerIDMapping)
	wantErr(t, "end empty", h.end("a", 100, 0, true), kerr.InvalidTxnState)

	// While markers are being written, the transaction is PrepareCommit.
	wantErr(t, "add", h.c.AddPartitions("a", 100, 0, []TP{{"t", 0}}), nil)
	h.fx.hold = true
	var endErr *kerr.Error
	ended := false
	h.c.EndTxn("a", 100, 0, true, false, func(_ int64, _ int16, e *kerr.Error) { endErr, ended = e, true })
	if ended || h.state("a") != PrepareCommit {
		t.Fatalf("EndTxn answered before markers (%v) or state %v", ended, h.state("a"))
	}
	wantErr(t, "add while preparing", h.c.AddPartitions("a", 100, 0, []TP{{"t", 1}}), kerr.ConcurrentTransactions)
	wantErr(t, "end again while preparing", h.end("a", 100, 0, true), kerr.ConcurrentTransactions)
	_, _, err = h.init("a", -1, -1)
	wantErr(t, "init while preparing", err, kerr.ConcurrentTransactions)
	h.fx.hold = false
	h.fx.held[0](nil)
	if !ended || endErr != nil || h.state("a") != CompleteCommit {
		t.Fatalf("after markers: ended %v err %v state %v", ended, endErr, h.state("a"))
	}
}

func TestRecoveryCompletesPreparedTransaction(t *testing.T) {
	h := newHarness(t)
	pid, epoch, _ := h.init("a", -1, -1)
	wantErr(t, "add", h.c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), nil)
	wantErr(t, "add group", h.c.AddGroup("a", pid, epoch, "g"), nil)
	wantErr(t, "stage", h.c.StageOffsets("a", pid, epoch, "g", map[TP]Offset{{"in", 3}: {Offset: 9}}), nil)
	pid2, _, _ := h.init("b", -1, -1)
	wantErr(t, "add b", h.c.AddPartitions("b", pid2, 0, []TP{{"t", 1}}), nil)
	// Crash with a's markers failing: a stays PrepareCommit in the log, b Ongoing.
	h.fx.fail = errors.New("disk gone")
	h.c.EndTxn("a", pid, epoch, true, false, func(int64, int16, *kerr.Error) { t.Error("EndTxn answered although markers failed") })
	h.fx.fail = nil
	h.fx.markers = nil

	h.open()
	if s := h.state("a"); s != PrepareCommit {
		t.Fatalf("a after restart %v", s)
	}
	if s := h.state("b"); s != Ongoing {
		t.Fatalf("b after restart %v", s)
	}
	h.c.Start()
	if s := h.state("a"); s != CompleteCommit {
		t.Fatalf("a after Start %v", s)
	}
	if want := []string{"100/0 commit t-0"}; !eq(h.fx.markers, want) {
		t.Fatalf("markers %v, want %v", h.fx.markers, want)
	}
	if o := h.fx.offsets["g"][TP{"in", 3}]; o.Offset != 9 {
		t.Fatalf("recovered offsets %v", h.fx.offsets)
	}
	// b keeps running after the restart and times out like any transaction.
	wantErr(t, "b produce after restart", h.c.ProduceCheck(pid2, 0, TP{"t", 1}), nil)
	h.clk.advance(2 * time.Minute)
	h.c.Tick()
	if s := h.state("b"); s != CompleteAbort {
		t.Fatalf("b after timeout %v", s)
	}
	// Producer IDs from the log stay reserved.
	if m := h.c.MaxProducerID(); m != pid2 {
		t.Fatalf("MaxProducerID %d, want %d", m, pid2)
	}
}

func TestCompactionKeepsState(t *testing.T) {
	h := newHarness(t)
	h.c.cfg.CompactBytes = 2048
	pid, epoch, _ := h.init("a", -1, -1)
	for i := 0; i < 50; i++ {
		wantErr(t, "add", h.c.AddPartitions("a", pid, epoch, []TP{{"t", int32(i)}}), nil)
		wantErr(t, "commit", h.end("a", pid, epoch, true), nil)
	}
	if size := h.log.Size(); size > 4096 {
		t.Fatalf("log not compacted: %d bytes", size)
	}
	h.open()
	in, _ := h.c.Describe("a")
	if in.State != CompleteCommit || in.PID != pid || in.Epoch != epoch {
		t.Fatalf("after compaction and restart: %+v", in)
	}
}

func eq(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTV2EpochBumpPerTransaction(t *testing.T) {
	h := newHarness(t)
	pid, epoch, _ := h.init("a", -1, -1)
	wantErr(t, "implicit add", h.c.ImplicitAdd(pid, epoch, TP{"t", 0}), nil)
	wantErr(t, "implicit add group", h.c.ImplicitAddGroup("a", pid, epoch, "g"), nil)
	next, err := h.end2("a", pid, epoch, true, true)
	wantErr(t, "commit", err, nil)
	if next != epoch+1 {
		t.Fatalf("epoch after TV2 commit %d, want %d", next, epoch+1)
	}
	if want := []string{"100/1 commit t-0"}; !eq(h.fx.markers, want) {
		t.Fatalf("markers %v, want %v (written with the bumped epoch)", h.fx.markers, want)
	}
	// A retry with the old epoch gets the same answer; the other outcome is refused.
	again, err := h.end2("a", pid, epoch, true, true)
	wantErr(t, "retried commit", err, nil)
	if again != next {
		t.Fatalf("retry epoch %d, want %d", again, next)
	}
	_, err = h.end2("a", pid, epoch, false, true)
	wantErr(t, "abort with the old epoch", err, kerr.InvalidTxnState)
	// The old epoch cannot produce any more.
	wantErr(t, "old epoch add", h.c.ImplicitAdd(pid, epoch, TP{"t", 0}), kerr.ProducerFenced)
	// Aborting with nothing open bumps the epoch.
	n2, err := h.end2("a", pid, next, false, true)
	wantErr(t, "empty abort", err, nil)
	if n2 != next+1 {
		t.Fatalf("epoch after empty abort %d, want %d", n2, next+1)
	}
	_, err = h.end2("a", pid, n2, true, true)
	wantErr(t, "empty commit", err, kerr.InvalidTxnState)
}

func TestTV2TimeoutAbortIsAbortable(t *testing.T) {
	h := newHarness(t)
	pid, epoch, _ := h.init("a", -1, -1)
	wantErr(t, "implicit add", h.c.ImplicitAdd(pid, epoch, TP{"t", 0}), nil)
	h.clk.advance(2 * time.Minute)
	h.c.Tick()
	// Kafka 4.0 (TV2): committing a timed-out transaction is INVALID_TXN_STATE (TV1:
	// PRODUCER_FENCED); aborting it succeeds and gives the producer the new epoch.
	_, err := h.end2("a", pid, epoch, true, true)
	wantErr(t, "commit after timeout", err, kerr.InvalidTxnState)
	wantErr(t, "TV1 commit after timeout", h.end("a", pid, epoch, true), kerr.ProducerFenced)
	next, err := h.end2("a", pid, epoch, false, true)
	wantErr(t, "abort after timeout", err, nil)
	if next != epoch+1 {
		t.Fatalf("epoch %d, want %d", next, epoch+1)
	}
	wantErr(t, "new transaction", h.c.ImplicitAdd(pid, next, TP{"t", 0}), nil)
}

// A txns.log append that fails answers NOT_COORDINATOR, as Kafka's transaction state manager
// maps a storage error, so that clients look the coordinator up again and retry (finding 6 of
// issue 18; KAFKA_STORAGE_ERROR is fatal to a transactional producer).
func TestLogFailureAnswersNotCoordinator(t *testing.T) {
	h := newHarness(t)
	pid, epoch, err := h.init("a", -1, -1)
	wantErr(t, "init", err, nil)
	h.log.mu.Lock()
	h.log.fail = errors.New("disk full")
	h.log.mu.Unlock()
	_, _, err = h.init("b", -1, -1)
	wantErr(t, "init of a new id on a failing log", err, kerr.NotCoordinator)
	_, _, err = h.init("a", pid, epoch)
	wantErr(t, "init bump on a failing log", err, kerr.NotCoordinator)
}

func (h *harness) failLog(err error) {
	h.log.mu.Lock()
	h.log.fail = err
	h.log.mu.Unlock()
}

// A transition whose txns.log write fails leaves the coordinator as it was: the epoch is not
// bumped and the state not moved in memory only, so the producer goes on with the epoch it
// has, and memory agrees with what a restart replays (issue 18: the coordinator bumped
// first and never undid it).
func TestFailedLogWriteUndoesTransition(t *testing.T) {
	h := newHarness(t)
	tp := TP{Topic: "t", Partition: 0}
	pid, epoch, err := h.init("a", -1, -1)
	wantErr(t, "init", err, nil)
	wantErr(t, "add", h.c.AddPartitions("a", pid, epoch, []TP{tp}), nil)

	h.failLog(errors.New("disk full"))
	// InitProducerID fencing the ongoing transaction.
	_, _, err = h.init("a", pid, epoch)
	wantErr(t, "fencing init on a failing log", err, kerr.NotCoordinator)
	// EndTxn (TV2 bumps the epoch).
	_, err = h.end2("a", pid, epoch, true, true)
	wantErr(t, "end on a failing log", err, kerr.NotCoordinator)
	h.failLog(nil)
	if st := h.state("a"); st != Ongoing {
		t.Fatalf("state after failed writes %v, want Ongoing", st)
	}
	// The producer still owns its open transaction with its epoch.
	wantErr(t, "add after the failures", h.c.AddPartitions("a", pid, epoch, []TP{{Topic: "t", Partition: 1}}), nil)
	next, err := h.end2("a", pid, epoch, true, true)
	wantErr(t, "commit after the failures", err, nil)
	if next != epoch+1 {
		t.Fatalf("epoch after commit %d, want %d (one bump)", next, epoch+1)
	}

	// TV2 abort with nothing open, and a plain re-init: neither bumps on a failed write.
	h.failLog(errors.New("disk full"))
	_, err = h.end2("a", pid, next, false, true)
	wantErr(t, "empty abort on a failing log", err, kerr.NotCoordinator)
	_, _, err = h.init("a", pid, next)
	wantErr(t, "re-init on a failing log", err, kerr.NotCoordinator)
	h.failLog(nil)
	_, e2, err := h.init("a", pid, next)
	wantErr(t, "re-init", err, nil)
	if e2 != next+1 {
		t.Fatalf("epoch after re-init %d, want %d", e2, next+1)
	}
	// A restart replays the same state.
	h.open()
	_, e3, err := h.init("a", pid, e2)
	wantErr(t, "re-init after restart", err, nil)
	if e3 != e2+1 {
		t.Fatalf("epoch after restart and re-init %d, want %d", e3, e2+1)
	}
}

// DescribeTransactions' start time: set when a transaction begins, kept once it completes
// (Kafka's txnStartTimestamp stays with CompleteCommit), cleared by the next InitProducerID.
func TestStartTimeKeptAfterCompletion(t *testing.T) {
	h := newHarness(t)
	pid, epoch, err := h.init("a", -1, -1)
	wantErr(t, "init", err, nil)
	if in, _ := h.c.Describe("a"); !in.Start.IsZero() {
		t.Fatalf("start %v before any transaction", in.Start)
	}
	wantErr(t, "add", h.c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), nil)
	in, _ := h.c.Describe("a")
	began := in.Start
	if began.IsZero() {
		t.Fatal("no start time while ongoing")
	}
	wantErr(t, "commit", h.end("a", pid, epoch, true), nil)
	if in, _ := h.c.Describe("a"); in.State != CompleteCommit || !in.Start.Equal(began) {
		t.Fatalf("after commit: state %v start %v, want CompleteCommit %v", in.State, in.Start, began)
	}
	_, _, err = h.init("a", pid, epoch)
	wantErr(t, "re-init", err, nil)
	if in, _ := h.c.Describe("a"); in.State != Empty || !in.Start.IsZero() {
		t.Fatalf("after InitProducerID: state %v start %v", in.State, in.Start)
	}
}

// TestVerifyPartitionsAnswersAsKafka: the verify-only AddPartitionsToTxn (v4+) answers a
// partition outside the transaction with TRANSACTION_ABORTABLE (Kafka 4.0, KIP-890), one in
// it with no error, and the whole request with CONCURRENT_TRANSACTIONS while it completes.
func TestVerifyPartitionsAnswersAsKafka(t *testing.T) {
	h := newHarness(t)
	pid, epoch, e := h.init("a", -1, -1)
	wantErr(t, "init", e, nil)
	res, e := h.c.VerifyPartitions("a", pid, epoch, []TP{{"t", 0}})
	wantErr(t, "verify before any add", e, nil)
	wantErr(t, "t-0 before any add", res[TP{"t", 0}], kerr.TransactionAbortable)
	wantErr(t, "add", h.c.AddPartitions("a", pid, epoch, []TP{{"t", 0}}), nil)
	res, e = h.c.VerifyPartitions("a", pid, epoch, []TP{{"t", 0}, {"t", 1}})
	wantErr(t, "verify", e, nil)
	wantErr(t, "t-0 added", res[TP{"t", 0}], nil)
	wantErr(t, "t-1 not added", res[TP{"t", 1}], kerr.TransactionAbortable)
	if len(res) != 2 {
		t.Fatalf("verify answered %d partitions, want 2", len(res))
	}
	h.fx.hold = true
	h.c.EndTxn("a", pid, epoch, true, false, func(int64, int16, *kerr.Error) {})
	if s := h.state("a"); s != PrepareCommit {
		t.Fatalf("state %v while markers are held, want PrepareCommit", s)
	}
	_, e = h.c.VerifyPartitions("a", pid, epoch, []TP{{"t", 0}})
	wantErr(t, "verify while committing", e, kerr.ConcurrentTransactions)
}
