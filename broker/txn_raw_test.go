package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func txnOffsetCommit(t *testing.T, cl *kgo.Client, id string, pid int64, epoch int16, group string, gen int32, member string, topic string, off int64) int16 {
	t.Helper()
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = id, group, pid, epoch
	req.Generation, req.MemberID = gen, member
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = 0, off, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

// fetchStable fetches partition 0's committed offset with RequireStable and returns its error.
func fetchStable(t *testing.T, cl *kgo.Client, group, topic string) int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.RequireStable = true
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	rg.Topics = append(rg.Topics, rt)
	req.Groups = append(req.Groups, rg)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Groups[0].Topics[0].Partitions[0].ErrorCode
}

func TestTxnOffsetCommitRaw(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	createTopic(t, adm, "raw", 1, nil)
	// TxnOffsetCommit v4 (TV1): the group must be added with AddOffsetsToTxn first.
	v := kversion.Stable()
	v.SetMaxKeyVersion(int16(kmsg.TxnOffsetCommit), 4)
	cl := tb.client(t, kgo.MaxVersions(v))
	ctx := ctxT(t, 10*time.Second)

	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID = kmsg.StringPtr("raw-1")
	init.TransactionTimeoutMillis = 60000
	ir, err := init.RequestWith(ctx, cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("init: %v %v", err, ir)
	}
	pid, epoch := ir.ProducerID, ir.ProducerEpoch

	if code := txnOffsetCommit(t, cl, "raw-1", pid, epoch, "rg", -1, "", "raw", 3); code != kerr.InvalidTxnState.Code {
		t.Fatalf("before AddOffsetsToTxn: %v", kerr.ErrorForCode(code))
	}
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "raw-1", pid, epoch, "rg"
	if r, err := ao.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v %v", err, r)
	}
	if code := txnOffsetCommit(t, cl, "raw-1", pid, epoch, "rg", 5, "m", "raw", 3); code != kerr.IllegalGeneration.Code {
		t.Fatalf("unknown group with a generation: %v", kerr.ErrorForCode(code))
	}
	// Kafka's transaction verification answers any other epoch INVALID_PRODUCER_EPOCH.
	if code := txnOffsetCommit(t, cl, "raw-1", pid, epoch+1, "rg", -1, "", "raw", 3); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("wrong epoch: %v", kerr.ErrorForCode(code))
	}
	if code := txnOffsetCommit(t, cl, "raw-1", pid, epoch, "rg", -1, "", "nope", 3); code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %v", kerr.ErrorForCode(code))
	}
	if code := txnOffsetCommit(t, cl, "raw-1", pid, epoch, "rg", -1, "", "raw", 3); code != 0 {
		t.Fatalf("simple txn commit: %v", kerr.ErrorForCode(code))
	}
	// Not visible before the transaction commits; a stable fetch is told to wait.
	offs, err := adm.FetchOffsets(ctx, "rg")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("raw", 0); ok && o.At >= 0 {
		t.Fatalf("staged offset visible before commit: %+v", o)
	}
	if code := fetchStable(t, cl, "rg", "raw"); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("stable fetch with a pending offset: %v", kerr.ErrorForCode(code))
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "raw-1", pid, epoch, true
	er, err := end.RequestWith(ctx, cl)
	if err != nil || er.ErrorCode != 0 {
		t.Fatalf("EndTxn: %v %v", err, er)
	}
	if er.Version >= 5 { // TV2: the epoch is bumped at every EndTxn
		if er.ProducerID != pid || er.ProducerEpoch != epoch+1 {
			t.Fatalf("EndTxn v5 answered %d/%d, want %d/%d", er.ProducerID, er.ProducerEpoch, pid, epoch+1)
		}
		epoch = er.ProducerEpoch
	}
	offs, err = adm.FetchOffsets(ctx, "rg")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("raw", 0); o.At != 3 {
		t.Fatalf("offset after commit %+v, want 3", o)
	}
	if code := fetchStable(t, cl, "rg", "raw"); code != 0 {
		t.Fatalf("stable fetch after commit: %v", kerr.ErrorForCode(code))
	}

	// AddPartitionsToTxn v3 with an unknown topic: that one UNKNOWN_TOPIC_OR_PARTITION, an
	// internal topic TOPIC_AUTHORIZATION_FAILED (Kafka never authorizes them here), the rest
	// OPERATION_NOT_ATTEMPTED, and nothing added.
	ap := kmsg.NewPtrAddPartitionsToTxnRequest()
	ap.TransactionalID, ap.ProducerID, ap.ProducerEpoch = "raw-1", pid, epoch
	for _, tn := range []string{"raw", "nope", "__consumer_offsets"} {
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = tn, []int32{0}
		ap.Topics = append(ap.Topics, rt)
	}
	apr, err := ap.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int16{}
	for _, rt := range apr.Topics {
		codes[rt.Topic] = rt.Partitions[0].ErrorCode
	}
	if codes["raw"] != kerr.OperationNotAttempted.Code || codes["nope"] != kerr.UnknownTopicOrPartition.Code ||
		codes["__consumer_offsets"] != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("AddPartitionsToTxn codes %v", codes)
	}
	if info, _ := tb.txns.Describe("raw-1"); info.State.String() != "CompleteCommit" {
		t.Fatalf("state %v after a rejected add", info.State)
	}

	// TxnOffsetCommit v5 (TV2) adds the group itself and starts the transaction.
	cl5 := tb.client(t)
	if code := txnOffsetCommit(t, cl5, "raw-1", pid, epoch, "rg2", -1, "", "raw", 1); code != 0 {
		t.Fatalf("v5 txn commit without AddOffsetsToTxn: %v", kerr.ErrorForCode(code))
	}
	if info, _ := tb.txns.Describe("raw-1"); info.State.String() != "Ongoing" || len(info.Groups) != 1 || info.Groups[0] != "rg2" {
		t.Fatalf("after v5 commit: %+v", info)
	}
}

func TestTxnListOffsetsReadCommitted(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "lo", 1, nil)
	cl := txnProducer(t, tb, "lo-1")
	produceTxn(t, cl, "lo", true, "a")
	ctx := ctxT(t, 10*time.Second)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "lo", Value: []byte("open"), Timestamp: time.Now().Add(time.Hour)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	list := func(iso int8, ts int64) int64 {
		req := kmsg.NewPtrListOffsetsRequest()
		req.IsolationLevel = iso
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "lo"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = 0, ts
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, tb.client(t))
		if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("list offsets: %v %v", err, resp)
		}
		return resp.Topics[0].Partitions[0].Offset
	}
	// a at 0, commit marker at 1, open at 2.
	if got := list(1, -1); got != 2 {
		t.Fatalf("read_committed latest %d, want 2", got)
	}
	if got := list(0, -1); got != 3 {
		t.Fatalf("read_uncommitted latest %d, want 3", got)
	}
	future := time.Now().Add(30 * time.Minute).UnixMilli()
	if got := list(0, future); got != 2 {
		t.Fatalf("read_uncommitted by timestamp %d, want 2", got)
	}
	if got := list(1, future); got != -1 {
		t.Fatalf("read_committed by timestamp found the open record at %d, want -1", got)
	}
	if got := list(1, -3); got != -1 {
		t.Fatalf("read_committed max timestamp found the open record at %d, want -1", got)
	}
}
