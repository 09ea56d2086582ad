package broker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// txnProducer returns a transactional kgo client.
func txnProducer(t *testing.T, tb *testBroker, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return tb.client(t, append([]kgo.Opt{kgo.TransactionalID(id), kgo.TransactionTimeout(10 * time.Second)}, opts...)...)
}

// produceTxn produces values to topic in one transaction and commits or aborts it.
func produceTxn(t *testing.T, cl *kgo.Client, topic string, commit bool, values ...string) {
	t.Helper()
	ctx := ctxT(t, 15*time.Second)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatalf("begin: %v", err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end (commit=%v): %v", commit, err)
	}
}

// readAll consumes topic from the start until it has read up to the end given by ListOffsets
// for the isolation level, and returns the values.
func readAll(t *testing.T, tb *testBroker, topic string, committed bool, want int) []string {
	t.Helper()
	opts := []kgo.Opt{}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	} else {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	}
	recs := consumeN(t, tb, topic, want, opts...)
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	return out
}

func eqStrings(a, b []string) bool {
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

func TestTxnCommitAbortCommit(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "tx", 1, nil)
	cl := txnProducer(t, tb, "tx-1")
	produceTxn(t, cl, "tx", true, "a1", "a2")
	produceTxn(t, cl, "tx", false, "b1", "b2", "b3")
	produceTxn(t, cl, "tx", true, "c1")

	got := readAll(t, tb, "tx", true, 3)
	if want := []string{"a1", "a2", "c1"}; !eqStrings(got, want) {
		t.Fatalf("read_committed got %v, want %v", got, want)
	}
	got = readAll(t, tb, "tx", false, 6)
	if want := []string{"a1", "a2", "b1", "b2", "b3", "c1"}; !eqStrings(got, want) {
		t.Fatalf("read_uncommitted got %v, want %v", got, want)
	}
	// 6 records + 3 markers: the high watermark and LSO are 9.
	p, _ := tb.partition("tx", 0)
	if lso, hwm := p.lso(), p.hwm; lso != 9 || hwm != 9 {
		t.Fatalf("lso %d hwm %d, want 9 9", lso, hwm)
	}
}

func TestTxnOpenTransactionHoldsLSO(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	createTopic(t, adm, "open", 1, nil)
	cl := txnProducer(t, tb, "open-1")
	produceTxn(t, cl, "open", true, "x")
	ctx := ctxT(t, 15*time.Second)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "open", Value: []byte("pending")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Committed offsets: x at 0, marker at 1, pending at 2 (open): LSO 2, HWM 3.
	committed, err := adm.ListEndOffsets(ctx, "open")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := committed.Lookup("open", 0); o.Offset != 3 {
		t.Fatalf("read_uncommitted end offset %d, want 3", o.Offset)
	}
	p, _ := tb.partition("open", 0)
	if lso := p.lso(); lso != 2 {
		t.Fatalf("lso %d, want 2", lso)
	}
	// A read_committed consumer sees only x, even after waiting.
	rc := tb.client(t, kgo.ConsumeTopics("open"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	var seen []string
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		fs := rc.PollFetches(pctx)
		cancel()
		for _, r := range fs.Records() {
			seen = append(seen, string(r.Value))
		}
	}
	if !eqStrings(seen, []string{"x"}) {
		t.Fatalf("read_committed saw %v while a transaction is open, want [x]", seen)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if lso := p.lso(); lso != 4 {
		t.Fatalf("lso after commit %d, want 4", lso)
	}
}

func TestTxnFencing(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "fence", 1, nil)
	old := txnProducer(t, tb, "fence-1")
	ctx := ctxT(t, 20*time.Second)
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(ctx, &kgo.Record{Topic: "fence", Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A second producer with the same ID fences the first and aborts its transaction.
	nw := txnProducer(t, tb, "fence-1")
	produceTxn(t, nw, "fence", true, "fresh")

	err := old.ProduceSync(ctx, &kgo.Record{Topic: "fence", Value: []byte("zombie2")}).FirstErr()
	if err == nil {
		err = old.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("old producer: got %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	if got := readAll(t, tb, "fence", true, 1); !eqStrings(got, []string{"fresh"}) {
		t.Fatalf("read_committed got %v, want [fresh]", got)
	}
	info, ok := tb.txns.Describe("fence-1")
	// The epoch depends on the protocol the client picked (TV2 bumps it per transaction);
	// fencing bumped it at least once.
	if !ok || info.Epoch < 1 || info.State.String() != "CompleteCommit" {
		t.Fatalf("describe: %+v %v, want a bumped epoch and CompleteCommit", info, ok)
	}
}

func TestTxnCrashMidTransaction(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	createTopic(t, tb.admin(t), "crash", 2, nil)
	cl := txnProducer(t, tb, "crash-1", kgo.TransactionTimeout(2*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceTxn(t, cl, "crash", true, "ok1", "ok2")
	ctx := ctxT(t, 20*time.Second)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		r := &kgo.Record{Topic: "crash", Value: []byte(fmt.Sprintf("lost%d", i)), Partition: int32(i % 2)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	crash(tb)

	tb2 := startBroker(t, dir)
	// The open transaction survives the restart (as on Kafka) and is aborted by its timeout.
	info, ok := tb2.txns.Describe("crash-1")
	if !ok || info.State.String() != "Ongoing" || len(info.Parts) != 2 {
		t.Fatalf("after restart: %+v %v, want Ongoing with 2 partitions", info, ok)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, _ = tb2.txns.Describe("crash-1")
		if info.State.String() == "CompleteAbort" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("transaction not aborted by timeout: %+v", info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := readAll(t, tb2, "crash", true, 2)
	sort.Strings(got)
	if !eqStrings(got, []string{"ok1", "ok2"}) {
		t.Fatalf("read_committed after crash got %v", got)
	}
	for i := int32(0); i < 2; i++ {
		p, _ := tb2.partition("crash", i)
		if lso, hwm := p.lso(), p.hwm; lso != hwm {
			t.Fatalf("partition %d: lso %d != hwm %d after abort", i, lso, hwm)
		}
	}
}

// crash abandons tb like a killed process. Its transaction coordinator is closed first only
// so that its timeout timer cannot write into the directory the next instance uses (a killed
// process has no timers); everything it acknowledged is already durable.
func crash(tb *testBroker) {
	tb.txns.Close()
	tb.abandon()
}

func TestTxnCrashThenFenceAndCommit(t *testing.T) {
	dir := t.TempDir()
	tb := startBroker(t, dir)
	createTopic(t, tb.admin(t), "cf", 1, nil)
	ctx := ctxT(t, 30*time.Second)
	cl := txnProducer(t, tb, "cf-1")
	produceTxn(t, cl, "cf", true, "c1", "c2")
	produceTxn(t, cl, "cf", false, "a1")
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "cf", Value: []byte("open1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	crash(tb)

	tb2 := startBroker(t, dir)
	p, _ := tb2.partition("cf", 0)
	// c1 c2 commit a1 abort open1: LSO at open1 (offset 5), HWM 6.
	if lso, hwm := p.lso(), p.hwm; lso != 5 || hwm != 6 {
		t.Fatalf("after restart lso %d hwm %d, want 5 6", lso, hwm)
	}
	// A new producer with the same transactional ID aborts the open transaction.
	cl2 := txnProducer(t, tb2, "cf-1")
	produceTxn(t, cl2, "cf", true, "c3")
	got := readAll(t, tb2, "cf", true, 3)
	if want := []string{"c1", "c2", "c3"}; !eqStrings(got, want) {
		t.Fatalf("read_committed got %v, want %v", got, want)
	}
	cl2.Close()

	// Restart once more after everything completed: same view, LSO = HWM.
	crash(tb2)
	tb3 := startBroker(t, dir)
	p3, _ := tb3.partition("cf", 0)
	if lso, hwm := p3.lso(), p3.hwm; lso != hwm || hwm != 9 {
		t.Fatalf("second restart lso %d hwm %d, want 9 9", lso, hwm)
	}
	got = readAll(t, tb3, "cf", true, 3)
	if want := []string{"c1", "c2", "c3"}; !eqStrings(got, want) {
		t.Fatalf("read_committed after second restart got %v, want %v", got, want)
	}
	if info, _ := tb3.txns.Describe("cf-1"); info.State.String() != "CompleteCommit" || info.Epoch < 1 {
		t.Fatalf("state after restarts %+v", info)
	}
}

func TestTxnConsumeTransformProduce(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	createTopic(t, adm, "ctp-in", 1, nil)
	createTopic(t, adm, "ctp-out", 1, nil)
	in := tb.client(t)
	ctx := ctxT(t, 30*time.Second)
	const n = 20
	for i := 0; i < n; i++ {
		if err := in.ProduceSync(ctx, &kgo.Record{Topic: "ctp-in", Value: []byte(fmt.Sprintf("v%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(tb.addr),
		kgo.TransactionalID("ctp-1"),
		kgo.TransactionTimeout(10*time.Second),
		kgo.ConsumerGroup("ctp-g"),
		kgo.ConsumeTopics("ctp-in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	moved := 0
	aborted := false
	for moved < n {
		if ctx.Err() != nil {
			t.Fatalf("moved %d of %d before the deadline", moved, n)
		}
		fs := sess.PollFetches(ctx)
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			sess.Produce(ctx, &kgo.Record{Topic: "ctp-out", Value: append([]byte("out-"), r.Value...)}, nil)
		}
		// The first batch is aborted once: its records must be re-consumed and re-produced.
		commit := kgo.TryCommit
		if !aborted {
			commit, aborted = kgo.TryAbort, true
		}
		committed, err := sess.End(ctx, commit)
		if err != nil {
			t.Fatalf("end: %v", err)
		}
		if committed {
			moved += len(recs)
		}
	}
	got := readAll(t, tb, "ctp-out", true, n)
	for i, v := range got {
		if want := fmt.Sprintf("out-v%d", i); v != want {
			t.Fatalf("output %d is %q, want %q (all %v)", i, v, want, got)
		}
	}
	offs, err := adm.FetchOffsets(ctx, "ctp-g")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("ctp-in", 0); o.At != n {
		t.Fatalf("group committed offset %d, want %d", o.At, n)
	}
}
