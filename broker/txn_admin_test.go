package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestTxnAdminDescribeAndList(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	createTopic(t, adm, "adm", 1, nil)
	done := txnProducer(t, tb, "adm-done")
	produceTxn(t, done, "adm", true, "d")
	open := txnProducer(t, tb, "adm-open")
	ctx := ctxT(t, 15*time.Second)
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, &kgo.Record{Topic: "adm", Value: []byte("o")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	dt, err := adm.DescribeTransactions(ctx, "adm-open", "adm-done", "nope")
	if err != nil {
		t.Fatal(err)
	}
	o := dt["adm-open"]
	if o.Err != nil || o.State != "Ongoing" || o.TimeoutMillis != 10000 || o.StartTimestamp <= 0 || len(o.Topics["adm"]) != 1 {
		t.Fatalf("adm-open: %+v", o)
	}
	// A finished transaction keeps its start time, as Kafka (issue 13: it used to be -1).
	if d := dt["adm-done"]; d.Err != nil || d.State != "CompleteCommit" || len(d.Topics) != 0 || d.StartTimestamp <= 0 {
		t.Fatalf("adm-done: %+v", d)
	}
	if n := dt["nope"]; n.Err != kerr.TransactionalIDNotFound || n.ProducerID != 0 || n.ProducerEpoch != 0 || n.StartTimestamp != 0 {
		t.Fatalf("nope: %+v", n)
	}

	lt, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := lt.TransactionalIDs(); len(ids) != 1 || ids[0] != "adm-open" {
		t.Fatalf("ongoing transactions %v, want [adm-open]", ids)
	}
	lt, err = adm.ListTransactions(ctx, []int64{o.ProducerID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ids := lt.TransactionalIDs(); len(ids) != 1 || ids[0] != "adm-open" {
		t.Fatalf("by producer ID %v, want [adm-open]", ids)
	}

	dp, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"adm": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	ps := dp["adm"].Partitions[0]
	if ps.Err != nil || len(ps.ActiveProducers) != 2 {
		t.Fatalf("describe producers: %+v", ps)
	}
	for _, p := range ps.ActiveProducers {
		// The committed producer used transaction version 2: its commit marker carries the
		// bumped epoch, which resets the sequence (Kafka 4.0 answers -1 too).
		want, wantSeq := int64(-1), int32(-1)
		if p.ProducerID == o.ProducerID {
			want, wantSeq = 2, 0 // d at 0, commit marker at 1, o at 2
		}
		if p.CurrentTxnStartOffset != want || p.LastSequence != wantSeq {
			t.Fatalf("producer %d: txn start %d last seq %d, want %d and %d", p.ProducerID, p.CurrentTxnStartOffset, p.LastSequence, want, wantSeq)
		}
	}
}

// TestListTransactionsFiltersAsKafka: a transactional ID initialized but never begun passes any
// duration filter (Kafka's start time for it is -1), an open transaction younger than the filter
// does not, and a repeated unknown state is reported once (Kafka reads the filters as a set).
func TestListTransactionsFiltersAsKafka(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	cl := tb.client(t)
	ctx := ctxT(t, 15*time.Second)
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID = kmsg.StringPtr("lt-empty")
	init.TransactionTimeoutMillis = 60000
	ir, err := init.RequestWith(ctx, cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("init: %v %+v", err, ir)
	}
	createTopic(t, tb.admin(t), "lt", 1, nil)
	open := txnProducer(t, tb, "lt-open")
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, &kgo.Record{Topic: "lt", Value: []byte("o")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	list := func(duration int64, states ...string) *kmsg.ListTransactionsResponse {
		req := kmsg.NewPtrListTransactionsRequest()
		req.Version = 1
		req.DurationFilterMillis = duration
		req.StateFilters = states
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	ids := func(r *kmsg.ListTransactionsResponse) map[string]bool {
		m := map[string]bool{}
		for _, s := range r.TransactionStates {
			m[s.TransactionalID] = true
		}
		return m
	}
	if got := ids(list(0)); !got["lt-empty"] || !got["lt-open"] {
		t.Fatalf("duration 0: %v, want lt-empty and lt-open", got)
	}
	if got := ids(list(3600_000)); !got["lt-empty"] || got["lt-open"] {
		t.Fatalf("duration 1h: %v, want lt-empty only", got)
	}
	if r := list(-1, "Nope", "Nope"); len(r.UnknownStateFilters) != 1 || len(r.TransactionStates) != 0 {
		t.Fatalf("unknown states twice: %+v", r)
	}
}
