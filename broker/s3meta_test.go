package broker

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/broker/storage"
	"github.com/klite/klite/internal/motoserver"
)

func testS3MetaSnapshot() *s3MetaSnapshot {
	ps := &producerSnapshot{nextPID: 7, parts: []snapPartition{{partition: 1, next: 5,
		producers: []snapProducer{{pid: 3, epoch: 1, batches: []seqBatch{{firstSeq: 0, lastSeq: 4, base: 0, last: 4, logAppendTime: -1}}}}}}}
	return &s3MetaSnapshot{capturedMs: 1234,
		meta:   [][]byte{[]byte(`{"type":"cluster","cluster_id":"x"}`), []byte(`{"type":"pid_block","end":1000}`)},
		groups: [][]byte{[]byte(`{"g":1}`)}, txns: nil, producers: ps.encode()}
}

// The snapshot round-trips; any flipped byte, a cut, a newer version or trailing bytes
// are refused with errS3Meta.
func TestS3MetaSnapshotFormat(t *testing.T) {
	s := testS3MetaSnapshot()
	raw := s.encode()
	got, err := decodeS3MetaSnapshot(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.capturedMs != 1234 || len(got.meta) != 2 || !bytes.Equal(got.meta[1], s.meta[1]) || len(got.groups) != 1 ||
		len(got.txns) != 0 || !bytes.Equal(got.producers, s.producers) {
		t.Fatalf("round trip: %+v", got)
	}
	if s3MetaDigest(got) != s3MetaDigest(s) {
		t.Error("digest differs after a round trip")
	}
	swapped := *s
	swapped.meta = [][]byte{s.meta[1], s.meta[0]}
	if s3MetaDigest(&swapped) != s3MetaDigest(s) {
		t.Error("digest depends on record order")
	}
	changed := *s
	changed.groups = [][]byte{[]byte(`{"g":2}`)}
	if s3MetaDigest(&changed) == s3MetaDigest(s) {
		t.Error("digest misses a changed record")
	}
	for i := 12; i < len(raw); i += 7 {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x40
		if _, err := decodeS3MetaSnapshot(bad); !errors.Is(err, errS3Meta) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
	if _, err := decodeS3MetaSnapshot(raw[:len(raw)-1]); !errors.Is(err, errS3Meta) {
		t.Errorf("cut: %v", err)
	}
	newer := bytes.Clone(raw)
	newer[4] = 2
	if _, err := decodeS3MetaSnapshot(newer); !errors.Is(err, errS3Meta) {
		t.Errorf("version 2: %v", err)
	}
}

func FuzzS3MetaSnapshot(f *testing.F) {
	f.Add(testS3MetaSnapshot().encode())
	f.Add((&s3MetaSnapshot{}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeS3MetaSnapshot(b)
		if err != nil {
			if !errors.Is(err, errS3Meta) {
				t.Fatalf("error %v does not wrap errS3Meta", err)
			}
			return
		}
		again, err := decodeS3MetaSnapshot(s.encode())
		if err != nil || s3MetaDigest(again) != s3MetaDigest(s) {
			t.Fatalf("re-encoded snapshot: %v", err)
		}
	})
}

// crashS3 leaves tb running as a killed process would leave S3: no more metadata
// snapshots, the lease neither renewed nor released.
func crashS3(t *testing.T, tb *testBroker) {
	t.Helper()
	tb.abandon()
	if m := tb.s3meta; m != nil {
		close(m.stop)
		<-m.done
	}
	if s := tb.s3; s.flushStop != nil { // the data path stops too, without a final round
		close(s.flushStop)
		s.flushWG.Wait()
	}
	close(tb.s3.stop)
	tb.s3.wg.Wait()
}

// waitS3Meta waits until the S3 metadata snapshot satisfies ok.
func waitS3Meta(t *testing.T, cfg S3Config, ok func(*s3MetaSnapshot) bool) {
	t.Helper()
	st, err := logstore.NewS3Store(t.Context(), cfg.StoreOptions("meta"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		raw, err := st.Get(s3MetaObject, 0, -1)
		if err == nil {
			s, err := decodeS3MetaSnapshot(raw)
			if err != nil {
				t.Fatal(err)
			}
			if ok(s) {
				return
			}
		} else if !errors.Is(err, logstore.ErrNotFound) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) || i > 400 {
			t.Fatal("the S3 metadata snapshot did not reach the expected state")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func containsRecord(recs [][]byte, sub string) bool {
	for _, r := range recs {
		if bytes.Contains(r, []byte(sub)) {
			return true
		}
	}
	return false
}

// Disaster recovery of the metadata: a broker killed (its S3 lease left behind) after the
// periodic snapshot; a new broker on an EMPTY data directory with the same bucket and
// prefix and no cluster ID waits out the lease and has the cluster ID, the topic and its
// config, the SCRAM credential, the ACL, the client quota, the committed offset and the
// committed transaction back. Then a graceful Close writes a final snapshot: a topic created
// just before it survives the next loss of the disk.
func TestS3DisasterRecoveryMetadata(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	s3cfg := motoS3Config(t, srv, "dr")
	s3cfg.FlushInterval = 200 * time.Millisecond
	s3cfg.LeaseTTL = 3 * time.Second
	a := startBroker(t, t.TempDir(), func(c *Config) {
		c.S3 = s3cfg
		c.ACL = ACLConfig{Enabled: true, SuperUsers: []string{"User:ANONYMOUS"}}
	})
	adm := a.admin(t)
	ctx := ctxT(t, 30*time.Second)
	ret := "123456"
	createTopic(t, adm, "dr-t", 2, map[string]*string{"retention.ms": &ret})
	if _, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "pw"}}); err != nil {
		t.Fatal(err)
	}
	acls := kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("dr-t").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	if res, err := adm.CreateACLs(ctx, acls); err != nil || res[0].Err != nil {
		t.Fatalf("CreateACLs: %v %v", err, res)
	}
	user := "bob"
	if _, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}},
		Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 4096}}}}); err != nil {
		t.Fatal(err)
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "dr-t", Partition: 1, At: 42, LeaderEpoch: -1})
	if res, err := adm.CommitOffsets(ctx, "g-dr", os); err != nil || res.Error() != nil {
		t.Fatalf("CommitOffsets: %v %v", err, res.Error())
	}
	txp := a.client(t, kgo.TransactionalID("tx-dr"), kgo.DefaultProduceTopic("dr-t"))
	if err := txp.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := txp.ProduceSync(ctx, &kgo.Record{Value: []byte("in txn")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := txp.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	clusterID := a.ClusterID()
	waitS3Meta(t, s3cfg, func(s *s3MetaSnapshot) bool {
		return containsRecord(s.meta, `"dr-t"`) && containsRecord(s.meta, `"alice"`) && containsRecord(s.meta, `"User:alice"`) &&
			containsRecord(s.meta, `producer_byte_rate`) && containsRecord(s.groups, `g-dr`) && containsRecord(s.txns, `"CompleteCommit"`)
	})
	crashS3(t, a)

	start := time.Now()
	b := startBroker(t, t.TempDir(), func(c *Config) {
		c.S3 = s3cfg
		c.ACL = ACLConfig{Enabled: true, SuperUsers: []string{"User:ANONYMOUS"}}
	})
	t.Logf("restored and open after %v (lease TTL %v)", time.Since(start), s3cfg.LeaseTTL)
	if !b.restoredFromS3 || b.ClusterID() != clusterID {
		t.Fatalf("restored %v, cluster ID %q, want %q", b.restoredFromS3, b.ClusterID(), clusterID)
	}
	checkRestoredMetadata(t, b, "g-dr", 42)
	// The record of the committed transaction, from S3 (the snapshot waited for it).
	if recs := consumeN(t, b, "dr-t", 1, kgo.FetchIsolationLevel(kgo.ReadCommitted())); string(recs[0].Value) != "in txn" {
		t.Fatalf("restored record %q", recs[0].Value)
	}

	late := b.admin(t)
	createTopic(t, late, "late-t", 1, nil)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	c := startBroker(t, t.TempDir(), func(c *Config) {
		c.S3 = s3cfg
		c.ACL = ACLConfig{Enabled: true, SuperUsers: []string{"User:ANONYMOUS"}}
	})
	if c.ClusterID() != clusterID {
		t.Fatalf("cluster ID %q after the second restore", c.ClusterID())
	}
	if td, err := c.admin(t).ListTopics(ctxT(t, 10*time.Second), "late-t"); err != nil || td["late-t"].Err != nil {
		t.Fatalf("topic created before a graceful Close is not restored: %v %v", err, td["late-t"].Err)
	}
	checkRestoredMetadata(t, c, "g-dr", 42)
}

func checkRestoredMetadata(t *testing.T, tb *testBroker, group string, offset int64) {
	t.Helper()
	adm := tb.admin(t)
	ctx := ctxT(t, 20*time.Second)
	td, err := adm.ListTopics(ctx, "dr-t")
	if err != nil || td["dr-t"].Err != nil || len(td["dr-t"].Partitions) != 2 {
		t.Fatalf("topic dr-t: %v %+v", err, td["dr-t"])
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "dr-t")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rc.On("dr-t", nil); err != nil || !hasConfig(v, "retention.ms", "123456") {
		t.Errorf("retention.ms of dr-t not restored: %v", err)
	}
	sc, err := adm.DescribeUserSCRAMs(ctx, "alice")
	if err != nil || sc["alice"].Err != nil || len(sc["alice"].CredInfos) != 1 {
		t.Errorf("SCRAM credential of alice: %v %+v", err, sc["alice"])
	}
	da, err := adm.DescribeACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("dr-t").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil || len(da) != 1 || da[0].Err != nil || len(da[0].Described) != 1 {
		t.Errorf("ACL not restored: %v %+v", err, da)
	}
	user := "bob"
	q, err := adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: &user}})
	if err != nil || len(q) != 1 || len(q[0].Values) != 1 || q[0].Values[0].Value != 4096 {
		t.Errorf("client quota not restored: %v %+v", err, q)
	}
	of, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := of.Lookup("dr-t", 1); !ok || o.At != offset {
		t.Errorf("committed offset of %s: %+v %v, want %d", group, o, ok, offset)
	}
	dt, err := adm.DescribeTransactions(ctx, "tx-dr")
	if err != nil || dt["tx-dr"].Err != nil || dt["tx-dr"].State != "CompleteCommit" {
		t.Errorf("transaction tx-dr: %v %+v", err, dt["tx-dr"])
	}
}

func hasConfig(rc kadm.ResourceConfig, key, val string) bool {
	for _, c := range rc.Configs {
		if c.Key == key && c.Value != nil && *c.Value == val {
			return true
		}
	}
	return false
}

// A data directory with anything in it is never restored over: with a snapshot in S3, a
// broker on a directory holding only an unrelated file starts a new cluster, as without S3
// (the restore is for an EMPTY directory). A damaged snapshot refuses the start, naming
// the object, rather than starting a new cluster over an existing one's prefix.
func TestS3RestoreOnlyEmptyDirAndRefusesDamage(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	s3cfg := motoS3Config(t, srv, "keep")
	a := startBroker(t, t.TempDir(), func(c *Config) { c.S3 = s3cfg })
	createTopic(t, a.admin(t), "kept", 1, nil)
	oldID := a.ClusterID()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not empty"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, dir, func(c *Config) { c.S3 = s3cfg })
	if b.restoredFromS3 || b.ClusterID() == oldID || b.topic("kept") != nil {
		t.Fatalf("a non-empty data directory was restored over: restored %v, cluster %q (old %q)", b.restoredFromS3, b.ClusterID(), oldID)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	st, err := logstore.NewS3Store(t.Context(), s3cfg.StoreOptions("meta"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	raw, err := st.Get(s3MetaObject, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	if err := st.Put(s3MetaObject, raw); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Config{DataDir: t.TempDir(), AdvertisedAddr: "127.0.0.1:1", S3: s3cfg})
	if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "s3://klite/keep/meta/state.snap") {
		t.Fatalf("Open over a damaged snapshot: %v, want a corruption error naming the object", err)
	}
}

// The snapshot is written only once the data path confirms the offsets it describes, and
// not again while nothing changes.
func TestS3MetaWaitsForConfirmedDataAndSkipsUnchanged(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	s3cfg := motoS3Config(t, srv, "wait")
	s3cfg.FlushInterval = 100 * time.Millisecond
	var confirmed atomic.Int64
	a := startBroker(t, t.TempDir(), func(c *Config) { c.S3 = s3cfg })
	a.s3meta.mu.Lock() // the writer reads the hook under it
	a.s3Confirmed = func() func(*partition) int64 { return func(*partition) int64 { return confirmed.Load() } }
	a.s3meta.mu.Unlock()
	createTopic(t, a.admin(t), "w", 1, nil)
	cl := a.client(t, kgo.DefaultProduceTopic("w"))
	for i := 0; i < 5; i++ {
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	puts := func() int64 { return a.s3meta.puts.Load() }
	// Wait a few intervals: the capture names offsets of w-0, which S3 does not confirm.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; a.s3meta.pendingNeed() == 0; i++ {
		if time.Now().After(deadline) || i > 1000 {
			t.Fatal("no capture waits for its data")
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := puts()
	time.Sleep(5 * s3cfg.FlushInterval)
	if p := puts(); p != before || a.s3meta.pendingNeed() == 0 {
		t.Fatalf("snapshot written (%d -> %d puts) before its data was confirmed (pending need %d)", before, p, a.s3meta.pendingNeed())
	}
	confirmed.Store(5)
	waitS3Meta(t, s3cfg, func(s *s3MetaSnapshot) bool {
		ps, err := decodeProducerSnapshot(s.producers)
		return err == nil && len(ps.parts) == 1 && ps.parts[0].next == 5
	})
	// The object is visible in S3 as soon as its PUT returns, a moment before the writer
	// counts it: wait for the count, then for no more.
	for i := 0; puts() == before; i++ {
		if i > 500 {
			t.Fatal("the snapshot in S3 was never counted as written")
		}
		time.Sleep(10 * time.Millisecond)
	}
	settled := puts()
	time.Sleep(5 * s3cfg.FlushInterval)
	if p := puts(); p != settled {
		t.Errorf("an unchanged state was written again: %d -> %d puts", settled, p)
	}
}
