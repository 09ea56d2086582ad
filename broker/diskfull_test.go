package broker

import (
	"syscall"
	"testing"
	"time"

	"github.com/klite/klite/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// produceUntil sends a one-record batch until it is acknowledged (the WAL reports a cleared
// fault on its next group), at most 100 times over 10 s; it returns the base offset.
func produceUntil(t *testing.T, cl *kgo.Client, topic string) int64 {
	t.Helper()
	var last int16
	for i := 0; i < 100; i++ {
		r := rawProduce(t, cl, topic, rawBatch(-1, -1, -1, 1, time.Now().UnixMilli(), 0))
		if r.ErrorCode == 0 {
			return r.BaseOffset
		}
		last = r.ErrorCode
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("produce never acknowledged after the fault cleared: last error %d", last)
	return -1
}

func offsetCommitRaw(t *testing.T, cl *kgo.Client, group, topic string, off int64) int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, off
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].ErrorCode
}

func endTxnRaw(t *testing.T, cl *kgo.Client, id string, pid int64, epoch int16, commit bool) int16 {
	t.Helper()
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.ErrorCode
}

// Disk full (ENOSPC injected below the files of the WAL, meta.log, groups.log and txns.log),
// then an fsync error (EIO): every write answers its Kafka error (Produce
// KAFKA_STORAGE_ERROR, CreateTopics KAFKA_STORAGE_ERROR, OffsetCommit and EndTxn
// NOT_COORDINATOR, InitProducerID COORDINATOR_LOAD_IN_PROGRESS: the retriable codes Kafka's
// coordinators give), reads keep being served, nothing acknowledged is lost, nothing refused
// is stored, and once space returns every write works again without a restart. A restart
// then finds exactly what was acknowledged.
func TestDiskFullAnswersAndRecovers(t *testing.T) {
	dir := t.TempDir()
	faults := &storage.Faults{}
	tb := startBroker(t, dir, func(c *Config) { c.StorageFaults = faults })
	createTopic(t, tb.admin(t), "df", 1, nil)
	v := kversion.Stable()
	v.SetMaxKeyVersion(int16(kmsg.Produce), 11) // TV1: the partition is added explicitly
	v.SetMaxKeyVersion(int16(kmsg.EndTxn), 4)
	cl := tb.client(t, kgo.MaxVersions(v))
	ctx := ctxT(t, 20*time.Second)
	for i := 0; i < 3; i++ {
		if base := produceUntil(t, cl, "df"); base != int64(i) {
			t.Fatalf("record %d at offset %d", i, base)
		}
	}
	// A transaction opened before the disk fills, with one record (offset 3).
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("df-tx"), 60000
	ir, err := init.RequestWith(ctx, cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("init: %v %+v", err, ir)
	}
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = "df-tx", ir.ProducerID, ir.ProducerEpoch
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = "df", []int32{0}
	add.Topics = append(add.Topics, at)
	if r, err := add.RequestWith(ctx, cl); err != nil || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("AddPartitionsToTxn: %v %+v", err, r)
	}
	if r := rawProduceTxn(t, cl, "df-tx", "df", txnRawBatch(ir.ProducerID, ir.ProducerEpoch, 0)); r.ErrorCode != 0 || r.BaseOffset != 3 {
		t.Fatalf("transactional produce: error %d at %d", r.ErrorCode, r.BaseOffset)
	}

	// kgo retries NOT_COORDINATOR and storage errors on its own; this client shows the answers.
	once := tb.client(t, kgo.MaxVersions(v), kgo.RequestRetries(0), kgo.RetryTimeout(time.Millisecond))
	faults.SetWriteErr(syscall.ENOSPC)
	if r := rawProduce(t, cl, "df", rawBatch(-1, -1, -1, 1, time.Now().UnixMilli(), 0)); r.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("produce on a full disk: error %d, want KAFKA_STORAGE_ERROR", r.ErrorCode)
	}
	if r := createTopicsRaw(t, once, creatable("df-new", 1)); r.Topics[0].ErrorCode != kerr.KafkaStorageError.Code || tb.topic("df-new") != nil {
		t.Fatalf("CreateTopics on a full disk: error %d", r.Topics[0].ErrorCode)
	}
	if code := offsetCommitRaw(t, once, "df-g", "df", 2); code != kerr.NotCoordinator.Code {
		t.Fatalf("OffsetCommit on a full disk: error %d, want NOT_COORDINATOR", code)
	}
	if code := endTxnRaw(t, once, "df-tx", ir.ProducerID, ir.ProducerEpoch, true); code != kerr.NotCoordinator.Code {
		t.Fatalf("EndTxn on a full disk: error %d, want NOT_COORDINATOR", code)
	}
	idem := kmsg.NewPtrInitProducerIDRequest()
	// Enough idempotent producers to need a new producer ID block on meta.log.
	var code int16
	for i := 0; i < pidBlockSize+1 && code == 0; i++ {
		r, err := idem.RequestWith(ctx, once)
		if err != nil {
			t.Fatal(err)
		}
		code = r.ErrorCode
	}
	if code != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("InitProducerID needing a new block on a full disk: error %d, want COORDINATOR_LOAD_IN_PROGRESS", code)
	}
	// Reads are served meanwhile: everything acknowledged (read_uncommitted sees the open
	// transaction's record too).
	if got := readAll(t, tb, "df", false, 4); len(got) != 4 {
		t.Fatalf("read %d records on a full disk, want 4", len(got))
	}
	if w, _ := faults.Injected(); w == 0 {
		t.Fatal("no write was refused by the injected fault")
	}

	// Space returns: every write works again, without a restart.
	faults.SetWriteErr(nil)
	if base := produceUntil(t, cl, "df"); base != 4 {
		t.Fatalf("first record after the disk full at %d, want 4 (nothing refused was stored)", base)
	}
	if r := createTopicsRaw(t, cl, creatable("df-new", 1)); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("CreateTopics after: error %d", r.Topics[0].ErrorCode)
	}
	if code := offsetCommitRaw(t, cl, "df-g", "df", 2); code != 0 {
		t.Fatalf("OffsetCommit after: error %d", code)
	}
	if code := endTxnRaw(t, cl, "df-tx", ir.ProducerID, ir.ProducerEpoch, true); code != 0 {
		t.Fatalf("EndTxn after: error %d", code)
	}

	// An fsync error (EIO) on the WAL: refused, not acknowledged, and writes resume after.
	faults.SetSyncErr(syscall.EIO)
	if r := rawProduce(t, cl, "df", rawBatch(-1, -1, -1, 1, time.Now().UnixMilli(), 0)); r.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("produce with failing fsync: error %d, want KAFKA_STORAGE_ERROR", r.ErrorCode)
	}
	faults.SetSyncErr(nil)
	// 4 plain records, the transactional record and its commit marker (offsets 0-5).
	if base := produceUntil(t, cl, "df"); base != 6 {
		t.Fatalf("record after the fsync error at %d, want 6", base)
	}
	cl.Close()
	tb.Close()

	// A restart finds exactly what was acknowledged: 5 plain records and the committed one.
	tb = startBroker(t, dir)
	if _, hwm := tb.partitionOffsets(t, "df", 0); hwm != 7 {
		t.Fatalf("high watermark after restart %d, want 7", hwm)
	}
	if got := readAll(t, tb, "df", true, 6); len(got) != 6 {
		t.Fatalf("read_committed after restart: %d records, want 6", len(got))
	}
	if tb.topic("df-new") == nil {
		t.Fatal("topic created after the disk full is gone after restart")
	}
}

// An fsync error (EIO) on the metadata logs: the write is refused with its Kafka error (the
// kernel may have dropped the unsynced pages, so it is never acknowledged), the log cuts what
// that fsync covered, and once fsyncs work again metadata writes work again without a
// restart; after a restart everything acknowledged is there and nothing refused is.
func TestMetadataFsyncErrorRecovers(t *testing.T) {
	dir := t.TempDir()
	faults := &storage.Faults{}
	tb := startBroker(t, dir, func(c *Config) { c.StorageFaults = faults })
	createTopic(t, tb.admin(t), "fe", 1, nil)
	cl := tb.client(t, kgo.RequestRetries(0), kgo.RetryTimeout(time.Millisecond))
	if base := produceUntil(t, cl, "fe"); base != 0 {
		t.Fatalf("first record at %d", base)
	}
	if code := offsetCommitRaw(t, cl, "fe-g", "fe", 1); code != 0 {
		t.Fatalf("OffsetCommit: error %d", code)
	}
	faults.SetSyncErr(syscall.EIO)
	if r := createTopicsRaw(t, cl, creatable("fe-new", 1)); r.Topics[0].ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("CreateTopics with failing fsync: error %d, want KAFKA_STORAGE_ERROR", r.Topics[0].ErrorCode)
	}
	if code := offsetCommitRaw(t, cl, "fe-g", "fe", 5); code != kerr.NotCoordinator.Code {
		t.Fatalf("OffsetCommit with failing fsync: error %d, want NOT_COORDINATOR", code)
	}
	if got := fetchCommitted(t, cl, "fe-g", "fe"); got != 1 {
		t.Fatalf("committed offset after a refused commit %d, want 1", got)
	}
	faults.SetSyncErr(nil)
	// Every log takes writes again, without a restart.
	if r := createTopicsRaw(t, cl, creatable("fe-new", 1)); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("CreateTopics after the fsync error cleared: error %d", r.Topics[0].ErrorCode)
	}
	if code := offsetCommitRaw(t, cl, "fe-g", "fe", 3); code != 0 {
		t.Fatalf("OffsetCommit after the fsync error cleared: error %d", code)
	}
	if base := produceUntil(t, cl, "fe"); base != 1 {
		t.Fatalf("record after the metadata fsync error at %d, want 1", base)
	}
	cl.Close()
	tb.Close()

	tb = startBroker(t, dir)
	cl = tb.client(t)
	if _, hwm := tb.partitionOffsets(t, "fe", 0); hwm != 2 {
		t.Fatalf("high watermark after restart %d, want 2", hwm)
	}
	if got := fetchCommitted(t, cl, "fe-g", "fe"); got != 3 {
		t.Fatalf("committed offset after restart %d, want 3", got)
	}
	if tp := tb.topic("fe-new"); tp == nil || len(tp.partitions()) != 1 {
		t.Fatalf("topic created after the fsync error cleared: %v", tp)
	}
	if code := offsetCommitRaw(t, cl, "fe-g", "fe", 4); code != 0 {
		t.Fatalf("OffsetCommit after restart: error %d", code)
	}
}

func fetchCommitted(t *testing.T, cl *kgo.Client, group, topic string) int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("OffsetFetch: %v %+v", err, resp)
	}
	return resp.Topics[0].Partitions[0].Offset
}
