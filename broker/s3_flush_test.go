package broker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/internal/motoserver"
)

// s3DataConfig is an S3 tier with small objects and budgets, flushing fast.
func s3DataConfig(t *testing.T, srv *motoserver.Server, prefix string, budget int64) func(*Config) {
	return func(c *Config) {
		c.S3 = motoS3Config(t, srv, prefix)
		c.S3.FlushInterval = 100 * time.Millisecond
		c.S3.TargetObjectBytes = 256 << 10
		c.S3.CacheBytes = 1 << 20
		c.S3.LocalBudgetBytes = budget
		c.S3.LeaseTTL = 6 * time.Second
		c.S3.RequestTimeout = 3 * time.Second
	}
}

// produceValues produces n records of size bytes to topic partition 0 with acks=all,
// value i and timestamp base+i ms, and fails on any error.
func produceS3Values(t *testing.T, cl *kgo.Client, topic string, from, n, size int, base time.Time) {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	for i := from; i < from+n; i++ {
		r := &kgo.Record{Topic: topic, Value: recValue(i, size), Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %d: %v", i, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// recValue is record i's value: incompressible (clients compress), and its number first.
func recValue(i, size int) []byte {
	v := make([]byte, size)
	rand.New(rand.NewSource(int64(i))).Read(v)
	copy(v, fmt.Sprintf("%08d", i))
	return v
}

// checkAll consumes n records of topic from offset 0 and checks each value.
func checkAll(t *testing.T, tb *testBroker, topic string, n, size int) {
	t.Helper()
	recs := consumeN(t, tb, topic, n, kgo.FetchMaxBytes(4<<20))
	if len(recs) != n {
		t.Fatalf("consumed %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		if r.Offset != int64(i) || !bytes.Equal(r.Value, recValue(i, size)) {
			t.Fatalf("record %d: offset %d value %.12q", i, r.Offset, r.Value)
		}
	}
}

func s3Objects(t *testing.T, srv *motoserver.Server, prefix string) []logstore.Object {
	t.Helper()
	st, err := logstore.NewS3Store(t.Context(), motoS3Config(t, srv, prefix).StoreOptions("logs"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := st.List("")
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func localSegmentBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(filepath.Join(dir, segmentsDir), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(p, ".seg") {
			n += info.Size()
		}
		return nil
	})
	return n
}

// History larger than local disk (issue 11): with a 1 MiB local budget, 8 MiB produced
// with acks=all is flushed to S3 and evicted locally, and everything reads back from
// offset 0 and by timestamp, from S3 through the block cache; also after a restart.
func TestS3HistoryLargerThanLocalDisk(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	dir := t.TempDir()
	const budget, n, size = 1 << 20, 2000, 4 << 10
	tb := startBroker(t, dir, s3DataConfig(t, srv, "hist", budget))
	createTopic(t, tb.admin(t), "hist", 1, nil)
	base := time.UnixMilli(1_700_000_000_000)
	produceS3Values(t, tb.client(t, kgo.ProducerLinger(0)), "hist", 0, n, size, base)

	waitFor(t, "the flush lag to reach zero", func() bool {
		b, _ := tb.S3FlushLag()
		return b == 0
	})
	waitFor(t, "local segments within the budget", func() bool { return tb.S3TierStats().LocalBytes <= budget })
	if got := localSegmentBytes(t, dir); got > budget {
		t.Fatalf("%d bytes of local segment files, budget %d", got, budget)
	}
	var inS3 int64
	for _, o := range s3Objects(t, srv, "hist") {
		inS3 += o.Size
	}
	if inS3 < n*size {
		t.Fatalf("%d bytes in S3, want at least the %d produced", inS3, n*size)
	}
	checkAll(t, tb, "hist", n, size)
	if st := tb.S3TierStats(); st.Cache.Misses == 0 {
		t.Fatalf("no block was read from S3: %+v", st)
	}

	// By timestamp: the first offset at or after a record's timestamp, for records held
	// only in S3 now.
	adm := tb.admin(t)
	for _, i := range []int{0, 7, 333, 1500, n - 1} {
		lo, err := adm.ListOffsetsAfterMilli(ctxT(t, 10*time.Second), base.Add(time.Duration(i)*time.Millisecond).UnixMilli(), "hist")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup("hist", 0)
		if o.Err != nil || o.Offset != int64(i) {
			t.Fatalf("offset for timestamp of record %d: %d, %v", i, o.Offset, o.Err)
		}
	}
	reqs := tb.S3Requests()
	t.Logf("S3 requests: %v; tier %+v", reqs, tb.S3TierStats())

	// A restart lists S3 for what is no longer local and reads on.
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	tb2 := startBroker(t, dir, s3DataConfig(t, srv, "hist", budget))
	checkAll(t, tb2, "hist", n, size)
	produceS3Values(t, tb2.client(t), "hist", n, 10, size, base)
	checkAll(t, tb2, "hist", n+10, size)

}

// rawValueBatch is a batch of n records with values of size bytes (no producer ID).
func rawValueBatch(n, size int, ts int64) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		r := kmsg.Record{OffsetDelta: int32(i), Value: recValue(i, size)}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1)
		recs = r.AppendTo(recs)
	}
	b := make([]byte, batchHeaderLen, batchHeaderLen+len(recs))
	binary.BigEndian.PutUint32(b[8:], uint32(batchHeaderLen-12+len(recs)))
	binary.BigEndian.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	binary.BigEndian.PutUint32(b[23:], uint32(n-1))
	binary.BigEndian.PutUint64(b[27:], uint64(ts))
	binary.BigEndian.PutUint64(b[35:], uint64(ts))
	binary.BigEndian.PutUint64(b[43:], ^uint64(0))
	binary.BigEndian.PutUint16(b[51:], 0xffff)
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)
	binary.BigEndian.PutUint32(b[57:], uint32(n))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32c))
	return b
}

// waitLong polls cond every 20 ms for at most d.
func waitLong(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Outage (issue 11): with S3 unreachable (moto stopped with SIGSTOP: requests hang),
// acks=all produce keeps succeeding from local disk; once the data not yet in S3 reaches
// the local budget Produce answers KAFKA_STORAGE_ERROR (nothing acknowledged is dropped);
// when S3 answers again the backlog drains, produce resumes, and every acknowledged record
// reads back, also from S3 after the local copies were evicted.
func TestS3OutageKeepsProducingThenStorageError(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	dir := t.TempDir()
	const budget, size = 2 << 20, 4 << 10
	tb := startBroker(t, dir, func(c *Config) {
		s3DataConfig(t, srv, "outage", budget)(c)
		c.S3.RequestTimeout = time.Second
	})
	createTopic(t, tb.admin(t), "out", 1, nil)
	cl := tb.client(t, kgo.ProducerLinger(0))
	base := time.UnixMilli(1_700_000_000_000)
	produceS3Values(t, cl, "out", 0, 100, size, base)
	waitFor(t, "the first records in S3", func() bool { b, _ := tb.S3FlushLag(); return b == 0 })

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	// Within the budget: acks=all succeeds with S3 unreachable.
	produceS3Values(t, cl, "out", 100, 150, size, base)
	if b, _ := tb.S3FlushLag(); b < 150*size {
		t.Fatalf("flush lag %d bytes with S3 paused, want at least the %d produced since", b, 150*size)
	}
	// A topic created meanwhile takes records at once: its partitions are new, so nothing
	// of theirs can be in S3 and creating them does not list it.
	createTopic(t, tb.admin(t), "during", 2, nil)
	produceS3Values(t, cl, "during", 0, 20, 100, base)

	// The lease cannot be renewed either: uploads stop (the flusher backs off), produce
	// goes on (the lease was not lost to another broker, only not renewed).
	waitLong(t, "the unrenewed lease to lapse", 20*time.Second, func() bool { return !tb.s3.lease.Valid() })

	// Past the budget: KAFKA_STORAGE_ERROR, and what was acknowledged before stays.
	raw := tb.client(t)
	acked := 0
	var code int16
	for i := 0; i < 4*budget/(16*size); i++ {
		r := rawProduce(t, raw, "out", rawValueBatch(16, size, base.UnixMilli()))
		if code = r.ErrorCode; code != 0 {
			break
		}
		acked += 16
	}
	if code != kerr.KafkaStorageError.Code {
		t.Fatalf("after %d records acknowledged past the budget: error %d, want KAFKA_STORAGE_ERROR", acked, code)
	}
	if st := tb.S3TierStats(); st.LocalBytes < budget/2 {
		t.Fatalf("local segments %+v: the backlog should be on local disk", st)
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	waitLong(t, "produce to resume", 90*time.Second, func() bool {
		r := rawProduce(t, raw, "out", rawValueBatch(16, size, base.UnixMilli()))
		if r.ErrorCode == 0 {
			acked += 16
			return true
		}
		if r.ErrorCode != kerr.KafkaStorageError.Code {
			t.Fatalf("produce after S3 returned: error %d", r.ErrorCode)
		}
		return false
	})
	waitLong(t, "the backlog to drain", 90*time.Second, func() bool { b, _ := tb.S3FlushLag(); return b == 0 })
	total := 250 + acked
	recs := consumeN(t, tb, "out", total, kgo.FetchMaxBytes(4<<20))
	if len(recs) != total {
		t.Fatalf("read %d records, want %d", len(recs), total)
	}
	for i, r := range recs {
		if r.Offset != int64(i) {
			t.Fatalf("record %d has offset %d", i, r.Offset)
		}
		if i < 250 && !bytes.Equal(r.Value, recValue(i, size)) {
			t.Fatalf("record %d: value %.12q", i, r.Value)
		}
	}
	t.Logf("acknowledged past the first 250: %d; S3 requests %v; tier %+v", acked, tb.S3Requests(), tb.S3TierStats())
}

// readOnly is a Store that never deletes: a Log opened on S3 beside the running broker
// must not remove what it takes for leftovers.
type readOnly struct{ logstore.Store }

func (readOnly) Delete(string) error { return nil }

// s3Log opens a partition's log from S3 alone (what a broker on an empty disk would see).
func s3Log(t *testing.T, srv *motoserver.Server, prefix, key string) *logstore.Log {
	t.Helper()
	st, err := logstore.NewS3Store(t.Context(), motoS3Config(t, srv, prefix).StoreOptions("logs"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := logstore.Open(readOnly{st}, key, logstore.DefaultConfig(), logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// remoteNames lists the names under key in S3 (only segments when segsOnly).
func remoteNames(t *testing.T, srv *motoserver.Server, prefix, key string, segsOnly bool) []string {
	t.Helper()
	var out []string
	for _, o := range s3Objects(t, srv, prefix) {
		if strings.HasPrefix(o.Name, key) && (!segsOnly || strings.HasSuffix(o.Name, ".seg")) {
			out = append(out, strings.TrimPrefix(o.Name, key))
		}
	}
	return out
}

// DeleteRecords, retention, compaction and DeleteTopics act on partition data that lives
// only in S3 (evicted locally past a 1 MiB budget): S3 no longer holds what they removed,
// and a log opened from S3 alone starts where the broker's does.
func TestS3DeletesActOnS3ResidentData(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	const budget, size = 1 << 20, 4 << 10
	tb := startBroker(t, t.TempDir(), s3DataConfig(t, srv, "del", budget), fastJobs)
	adm := tb.admin(t)
	s := func(v string) *string { return &v }
	cl := tb.client(t, kgo.ProducerLinger(0))
	now := time.Now()
	flushed := func() bool {
		b, _ := tb.S3FlushLag()
		return b == 0 && tb.S3TierStats().LocalBytes <= budget
	}

	createTopic(t, adm, "dr", 1, nil)
	createTopic(t, adm, "rt", 1, map[string]*string{"retention.ms": s("-1")})
	createTopic(t, adm, "cmp", 1, map[string]*string{"cleanup.policy": s("compact"), "min.cleanable.dirty.ratio": s("0.01")})
	produceS3Values(t, cl, "dr", 0, 600, size, now)
	produceS3Values(t, cl, "rt", 0, 600, size, now)
	for i := 0; i < 600; i++ {
		r := &kgo.Record{Topic: "cmp", Key: []byte(fmt.Sprintf("k%d", i%5)), Value: recValue(i, size)}
		cl.Produce(ctxT(t, 30*time.Second), r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "everything in S3 and evicted locally", 60*time.Second, flushed)
	key := func(topic string) string { p, _ := tb.partition(topic, 0); return p.key() }

	t.Run("DeleteRecords", func(t *testing.T) {
		before := remoteNames(t, srv, "del", key("dr"), true)
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: "dr", Partition: 0, At: 400})
		if r, err := adm.DeleteRecords(ctxT(t, 10*time.Second), os); err != nil || r.Error() != nil {
			t.Fatalf("DeleteRecords: %v %v", err, r.Error())
		}
		waitFor(t, "S3's checkpoint to say log start 400", func() bool {
			return s3Log(t, srv, "del", key("dr")).LogStartOffset() == 400
		})
		l := s3Log(t, srv, "del", key("dr"))
		if segs := l.Segments(); len(segs) == 0 || segs[0].Base > 400 || segs[0].Next <= 400 {
			t.Fatalf("S3 segments after DeleteRecords 400: %+v", segs)
		}
		if after := remoteNames(t, srv, "del", key("dr"), true); len(after) >= len(before) {
			t.Fatalf("S3 objects before %v, after %v", before, after)
		}
	})

	t.Run("retention", func(t *testing.T) {
		if len(remoteNames(t, srv, "del", key("rt"), true)) < 3 {
			t.Fatal("too few segments in S3 to test retention")
		}
		if _, err := adm.AlterTopicConfigs(ctxT(t, 10*time.Second), []kadm.AlterConfig{{Name: "retention.ms", Value: s("1")}}, "rt"); err != nil {
			t.Fatal(err)
		}
		waitLong(t, "retention to empty S3 of the topic's segments", 30*time.Second, func() bool {
			return len(remoteNames(t, srv, "del", key("rt"), true)) == 0 && s3Log(t, srv, "del", key("rt")).LogStartOffset() == 600
		})
	})

	t.Run("compaction", func(t *testing.T) {
		p, _ := tb.partition("cmp", 0)
		waitLong(t, "the cleaner to compact and S3 to take the result", 30*time.Second, func() bool {
			cleaned := false
			for _, sg := range p.log().Segments() {
				cleaned = cleaned || sg.Cleaned
			}
			b, _ := tb.S3FlushLag()
			return cleaned && b == 0
		})
		l := s3Log(t, srv, "del", key("cmp"))
		local := p.log().Segments()
		remote := l.Segments()
		if len(remote) != len(local) {
			t.Fatalf("S3 holds %d segments, the broker %d", len(remote), len(local))
		}
		for i := range local {
			if remote[i].Name != local[i].Name {
				t.Fatalf("segment %d: S3 %s, broker %s", i, remote[i].Name, local[i].Name)
			}
		}
		// Read everything back (older segments from S3): the newest value per key.
		cc := tb.client(t, kgo.ConsumeTopics("cmp"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		ctx := ctxT(t, 20*time.Second)
		latest, n := map[string][]byte{}, 0
		for done := false; !done; {
			fs := cc.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("read %d records of the compacted topic before the deadline", n)
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
			for _, r := range fs.Records() {
				latest[string(r.Key)] = r.Value
				n++
				done = done || r.Offset == 599
			}
		}
		if n >= 600 {
			t.Fatalf("%d records read after compaction of 600", n)
		}
		for k := 0; k < 5; k++ {
			if !bytes.Equal(latest[fmt.Sprintf("k%d", k)], recValue(595+k, size)) {
				t.Fatalf("key k%d: not the newest value", k)
			}
		}
	})

	t.Run("DeleteTopics", func(t *testing.T) {
		k := key("dr")
		if r, err := adm.DeleteTopics(ctxT(t, 10*time.Second), "dr"); err != nil || r["dr"].Err != nil {
			t.Fatalf("DeleteTopics: %v %v", err, r["dr"].Err)
		}
		waitFor(t, "S3 to hold nothing of the deleted topic", func() bool { return len(remoteNames(t, srv, "del", k, false)) == 0 })
	})
}

// A lease taken over by another broker stops uploads and fails produce with
// KAFKA_STORAGE_ERROR.
func TestS3LeaseLostFailsProduce(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	tb := startBroker(t, t.TempDir(), func(c *Config) {
		s3DataConfig(t, srv, "lost", 64<<20)(c)
		c.S3.LeaseTTL = 3 * time.Second // renewed every second
	})
	createTopic(t, tb.admin(t), "l", 1, nil)
	raw := tb.client(t)
	if r := rawProduce(t, raw, "l", rawValueBatch(4, 100, time.Now().UnixMilli())); r.ErrorCode != 0 {
		t.Fatalf("produce: %d", r.ErrorCode)
	}
	waitFor(t, "the first batch in S3", func() bool { b, _ := tb.S3FlushLag(); return b == 0 })
	segsBefore := len(s3Objects(t, srv, "lost"))

	// Another broker's record replaces ours (as after a takeover of an expired lease).
	st, err := logstore.NewS3Store(t.Context(), motoS3Config(t, srv, "lost").StoreOptions(""))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put("lease", []byte(`{"owner":"someone-else","host":"h","pid":1,"renewed_ms":1,"ttl_ms":30000}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the broker to notice the lost lease", func() bool { return tb.s3.lost.Load() })
	r := rawProduce(t, raw, "l", rawValueBatch(4, 100, time.Now().UnixMilli()))
	if r.ErrorCode != kerr.KafkaStorageError.Code || r.ErrorMessage == nil || !strings.Contains(*r.ErrorMessage, "took over") {
		t.Fatalf("produce after the lease was lost: error %d %v, want KAFKA_STORAGE_ERROR", r.ErrorCode, r.ErrorMessage)
	}
	if err := tb.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	if n := len(s3Objects(t, srv, "lost")); n != segsBefore {
		t.Fatalf("%d objects in S3 after the lease was lost, %d before: the broker went on writing", n, segsBefore)
	}
}

// Graceful shutdown seals every tail and uploads it: with a flush interval far away,
// nothing is in S3 before Close and everything is after it.
func TestS3CloseFlushesEverything(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	const size = 1000
	tb := startBroker(t, t.TempDir(), func(c *Config) {
		s3DataConfig(t, srv, "close", 64<<20)(c)
		c.S3.FlushInterval = time.Hour
		c.S3.TargetObjectBytes = 64 << 20
	})
	createTopic(t, tb.admin(t), "c", 1, nil)
	produceS3Values(t, tb.client(t), "c", 0, 300, size, time.Now())
	p, _ := tb.partition("c", 0)
	key := p.key()
	if names := remoteNames(t, srv, "close", key, true); len(names) != 0 {
		t.Fatalf("segments in S3 before Close: %v", names)
	}
	if b, _ := tb.S3FlushLag(); b < 300*size {
		t.Fatalf("flush lag %d before Close, want the %d bytes produced", b, 300*size)
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	l := s3Log(t, srv, "close", key)
	if l.NextOffset() != 300 {
		t.Fatalf("S3 holds offsets up to %d after Close, want 300", l.NextOffset())
	}
	data, err := l.Read(0, 1<<30)
	if err != nil || len(data) < 300*size {
		t.Fatalf("reading back from S3: %d bytes, %v", len(data), err)
	}
}

// read_committed fetches of S3-resident data get the aborted transactions from the
// segments' aborted index read from S3: aborted records are filtered out.
func TestS3ReadCommittedFromS3(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	const budget, size = 1 << 20, 4 << 10
	tb := startBroker(t, t.TempDir(), s3DataConfig(t, srv, "txn", budget))
	createTopic(t, tb.admin(t), "tx", 1, nil)
	txn := tb.client(t, kgo.TransactionalID("s3-txn"), kgo.ProducerLinger(0))
	ctx := ctxT(t, 60*time.Second)
	for round := 0; round < 6; round++ {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 50; i++ {
			v := recValue(round*50+i, size)
			if round%2 == 1 {
				copy(v, "ABORTED!")
			}
			if err := txn.ProduceSync(ctx, &kgo.Record{Topic: "tx", Value: v}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		commit := kgo.TryCommit
		if round%2 == 1 {
			commit = kgo.TryAbort
		}
		if err := txn.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	// More than the budget afterwards: the transactions' segments leave the local disk.
	produceS3Values(t, tb.client(t, kgo.ProducerLinger(0)), "tx", 0, 600, size, time.Now())
	waitLong(t, "everything in S3 and evicted", 60*time.Second, func() bool {
		b, _ := tb.S3FlushLag()
		return b == 0 && tb.S3TierStats().LocalBytes <= budget
	})
	missesBefore := tb.S3TierStats().Cache.Misses
	cc := tb.client(t, kgo.ConsumeTopics("tx"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxBytes(4<<20))
	committed := 0
	for committed+0 < 150+600 {
		fs := cc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d committed records before the deadline", committed)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		for _, r := range fs.Records() {
			if bytes.HasPrefix(r.Value, []byte("ABORTED!")) {
				t.Fatalf("aborted record at offset %d read with read_committed", r.Offset)
			}
			committed++
		}
	}
	if committed != 750 {
		t.Fatalf("%d committed records, want 750", committed)
	}
	if tb.S3TierStats().Cache.Misses == missesBefore {
		t.Fatal("nothing was read from S3")
	}
}

// DeleteTopics while S3 is unreachable: the topic is gone at once, and its S3 objects are
// deleted by the flusher once S3 answers again.
func TestS3DeleteTopicDuringOutagePurgesLater(t *testing.T) {
	srv := motoserver.Start(t)
	srv.CreateBucket(t, "klite")
	tb := startBroker(t, t.TempDir(), func(c *Config) {
		s3DataConfig(t, srv, "purge", 64<<20)(c)
		c.S3.RequestTimeout = time.Second
	})
	adm := tb.admin(t)
	createTopic(t, adm, "gone", 2, nil)
	produceS3Values(t, tb.client(t), "gone", 0, 200, 1000, time.Now())
	waitFor(t, "the topic in S3", func() bool { b, _ := tb.S3FlushLag(); return b == 0 })
	p, _ := tb.partition("gone", 0)
	prefix := strings.Split(p.key(), "/")[0] + "/"
	if len(remoteNames(t, srv, "purge", prefix, true)) == 0 {
		t.Fatal("no segment of the topic in S3")
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	r, err := adm.DeleteTopics(ctxT(t, 60*time.Second), "gone")
	srv.Resume()
	if err != nil || r["gone"].Err != nil {
		t.Fatalf("DeleteTopics: %v %v", err, r["gone"].Err)
	}
	waitLong(t, "the deleted topic's S3 objects to go", 60*time.Second, func() bool {
		return len(remoteNames(t, srv, "purge", prefix, false)) == 0
	})
	waitFor(t, "the deleted topic's local segments to go", func() bool { return localSegmentBytes(t, tb.dir) == 0 })
	if b, _ := tb.S3FlushLag(); b != 0 {
		t.Fatalf("flush lag %d after the purge", b)
	}
	// Nothing of it is uploaded again.
	if err := tb.s3Round(tb.s3); err != nil {
		t.Fatal(err)
	}
	if names := remoteNames(t, srv, "purge", prefix, false); len(names) != 0 {
		t.Fatalf("deleted topic back in S3: %v", names)
	}
}
