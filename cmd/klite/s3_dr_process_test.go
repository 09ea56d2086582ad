//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/internal/motoserver"
)

// Disaster recovery, the scenario on the real binary: produce (plain, idempotent,
// a committed transaction), commit group offsets, create a SCRAM credential, an ACL and a
// topic config; wait until the metadata snapshot in S3 holds it all (written only once the
// data it describes is confirmed in S3); SIGKILL; delete the data directory; start a new
// klite on it with the same bucket and prefix and no --cluster-id. Every record, the
// topic, its config, the offsets, the credential, the ACL and the cluster ID are back, and
// a retry of the idempotent producer's batch is deduplicated (answered with its first
// offset, nothing appended). The DR time (start to serving, the lease's TTL included) is
// logged.
func TestProcessS3DisasterRecovery(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	t.Setenv("AWS_ACCESS_KEY_ID", motoserver.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", motoserver.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	flags := []string{"--s3-bucket", "klite", "--s3-endpoint", srv.Endpoint, "--s3-region", motoserver.Region, "--s3-prefix", "dr",
		"--s3-flush-interval", "1s", "--s3-lease-ttl", "3s", "--acl-enabled", "--super-users", "User:ANONYMOUS"}
	dir := t.TempDir() + "/data"
	p := startKlite(t, dir, flags...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.DisableIdempotentWrite(), kgo.DefaultProduceTopic("dr-t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ret := "86400000"
	if r, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": &ret}, "dr-t"); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	want := map[string]bool{}
	for i := 0; i < 100; i++ { // plain
		v := fmt.Sprintf("plain-%d", i)
		want[v] = true
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v), Partition: int32(i % 2)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	pid, epoch := drInitPID(t, ctx, cl)
	idem := drBatch(pid, epoch, 0, "idem", 3)
	for i := 0; i < 3; i++ {
		want[fmt.Sprintf("idem-%d", i)] = true
	}
	first := drProduce(t, ctx, cl, idem)
	if first.ErrorCode != 0 {
		t.Fatalf("idempotent produce: error %d", first.ErrorCode)
	}
	txp, err := kgo.NewClient(kgo.SeedBrokers(p.addr), kgo.TransactionalID("tx-dr"), kgo.DefaultProduceTopic("dr-t"))
	if err != nil {
		t.Fatal(err)
	}
	defer txp.Close()
	if err := txp.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		v := fmt.Sprintf("txn-%d", i)
		want[v] = true
		if err := txp.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := txp.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "pw"}}); err != nil {
		t.Fatal(err)
	}
	acl := func() *kadm.ACLBuilder {
		return kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("dr-t").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	}
	if r, err := adm.CreateACLs(ctx, acl()); err != nil || r[0].Err != nil {
		t.Fatalf("CreateACLs: %v %v", err, r)
	}
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: "dr-t", Partition: 0, At: 7, LeaderEpoch: -1, Metadata: "m0"})
	offs.Add(kadm.Offset{Topic: "dr-t", Partition: 1, At: 9, LeaderEpoch: -1, Metadata: "m1"})
	if r, err := adm.CommitOffsets(ctx, "g-dr", offs); err != nil || r.Error() != nil {
		t.Fatalf("CommitOffsets: %v %v", err, r.Error())
	}
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	endsBefore, err := adm.ListEndOffsets(ctx, "dr-t")
	if err != nil {
		t.Fatal(err)
	}

	// The snapshot names the last commit: everything before it is in S3.
	waitS3Object(t, srv, "dr/meta/state.snap", "m1", `"CompleteCommit"`, `"CompleteCommit"`, `"alice"`, `"User:alice"`, `"86400000"`)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	p2 := startKlite(t, dir, flags...)
	drTime := time.Since(start)
	t.Logf("DR time (start of the new process to serving, lease TTL 3s included): %v", drTime)
	if !bytes.Contains(p2.logs.Bytes(), []byte("DISASTER RECOVERY")) || !bytes.Contains(p2.logs.Bytes(), []byte("WAITING for the writer lease")) {
		t.Errorf("the restoring broker's log lacks the recovery or lease-wait line:\n%s", p2.logs)
	}
	cl2, err := kgo.NewClient(kgo.SeedBrokers(p2.addr), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	adm2 := kadm.NewClient(cl2)
	md2, err := adm2.BrokerMetadata(ctx)
	if err != nil || md2.Cluster != md.Cluster {
		t.Fatalf("cluster ID %q after recovery, want %q (%v)", md2.Cluster, md.Cluster, err)
	}
	rc, err := adm2.DescribeTopicConfigs(ctx, "dr-t")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := rc.On("dr-t", nil); err != nil || !drHasConfig(c, "retention.ms", ret) {
		t.Errorf("retention.ms of dr-t not restored: %v %+v", err, c)
	}
	if sc, err := adm2.DescribeUserSCRAMs(ctx, "alice"); err != nil || sc["alice"].Err != nil || len(sc["alice"].CredInfos) != 1 {
		t.Errorf("SCRAM credential: %v %+v", err, sc)
	}
	if da, err := adm2.DescribeACLs(ctx, acl()); err != nil || len(da) != 1 || len(da[0].Described) != 1 {
		t.Errorf("ACL: %v %+v", err, da)
	}
	got, err := adm2.FetchOffsets(ctx, "g-dr")
	if err != nil {
		t.Fatal(err)
	}
	offs.Each(func(o kadm.Offset) {
		if r, ok := got.Lookup(o.Topic, o.Partition); !ok || r.At != o.At || r.Metadata != o.Metadata {
			t.Errorf("committed offset %s/%d: %+v %v, want %d %q", o.Topic, o.Partition, r, ok, o.At, o.Metadata)
		}
	})
	ends, err := adm2.ListEndOffsets(ctx, "dr-t")
	if err != nil {
		t.Fatal(err)
	}
	endsBefore.Each(func(o kadm.ListedOffset) {
		if e, ok := ends.Lookup(o.Topic, o.Partition); !ok || e.Offset != o.Offset {
			t.Errorf("end offset of %s/%d: %d after recovery, %d before", o.Topic, o.Partition, e.Offset, o.Offset)
		}
	})

	// Every record, read committed.
	cons, err := kgo.NewClient(kgo.SeedBrokers(p2.addr), kgo.ConsumeTopics("dr-t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	defer pcancel()
	for len(seen) < len(want) && pctx.Err() == nil {
		fs := cons.PollFetches(pctx)
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	for v := range want {
		if !seen[v] {
			t.Errorf("record %q lost in the disaster recovery (%d of %d back)", v, len(seen), len(want))
			break
		}
	}

	// The idempotent producer's retry after the recovery: deduplicated.
	retry := drProduce(t, ctx, cl2, idem)
	if retry.ErrorCode != 0 || retry.BaseOffset != first.BaseOffset {
		t.Errorf("retry of the idempotent batch: error %d base %d, want the first answer's base %d (a duplicate)", retry.ErrorCode, retry.BaseOffset, first.BaseOffset)
	}
	after, err := adm2.ListEndOffsets(ctx, "dr-t")
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := after.Lookup("dr-t", 1); a.Offset != func() int64 { e, _ := ends.Lookup("dr-t", 1); return e.Offset }() {
		t.Errorf("the retried batch was appended again: end offset %d", a.Offset)
	}
	stopKlite(t, p2)
}

// waitS3Object waits until s3://klite/key exists and contains every marker.
func waitS3Object(t *testing.T, srv *motoserver.Server, key string, markers ...string) {
	t.Helper()
	st, err := logstore.NewS3Store(context.Background(), logstore.S3Options{Bucket: "klite", Endpoint: srv.Endpoint,
		Region: motoserver.Region, Credentials: motoserver.Credentials()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		raw, err := st.Get(key, 0, -1)
		if err != nil && !errors.Is(err, logstore.ErrNotFound) {
			t.Fatal(err)
		}
		missing := ""
		for _, m := range markers {
			if !bytes.Contains(raw, []byte(m)) {
				missing = m
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) || i > 600 {
			t.Fatalf("s3://klite/%s does not contain %s after 30 s", key, missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func drHasConfig(rc kadm.ResourceConfig, key, val string) bool {
	for _, c := range rc.Configs {
		if c.Key == key && c.Value != nil && *c.Value == val {
			return true
		}
	}
	return false
}

func drInitPID(t *testing.T, ctx context.Context, cl *kgo.Client) (int64, int16) {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionTimeoutMillis = 60000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v %+v", err, resp)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

// drBatch is an uncompressed idempotent RecordBatch v2 of n records prefix-0..n-1.
func drBatch(pid int64, epoch int16, seq int32, prefix string, n int) []byte {
	const hdr = 61
	var recs []byte
	now := time.Now().UnixMilli()
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1)
		recs = r.AppendTo(recs)
	}
	b := make([]byte, hdr, hdr+len(recs))
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(hdr-12+len(recs)))
	be.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	be.PutUint32(b[23:], uint32(n-1))
	be.PutUint64(b[27:], uint64(now))
	be.PutUint64(b[35:], uint64(now))
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], uint16(epoch))
	be.PutUint32(b[53:], uint32(seq))
	be.PutUint32(b[57:], uint32(n))
	b = append(b, recs...)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// drProduce sends batch to dr-t partition 1 with acks=all.
func drProduce(t *testing.T, ctx context.Context, cl *kgo.Client, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "dr-t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 1
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}
