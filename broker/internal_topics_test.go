package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestInternalTopics: __consumer_offsets and __transaction_state appear, internal and with
// the configured partitions and Kafka's configs, at the first FindCoordinator of their kind;
// they survive a restart; producing to them is refused; DeleteTopics removes them (as Kafka
// 4.0.2) and the next FindCoordinator creates them again.
func TestInternalTopics(t *testing.T) {
	dir := t.TempDir()
	parts := func(c *Config) { c.OffsetsTopicPartitions, c.TransactionStateLogPartitions = 3, 2 }
	tb := startBroker(t, dir, parts)
	cl := tb.client(t)
	ctx := ctxT(t, 30*time.Second)

	metadata := func(cl *kgo.Client) map[string]kmsg.MetadataResponseTopic {
		t.Helper()
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]kmsg.MetadataResponseTopic{}
		for _, mt := range resp.Topics {
			out[*mt.Topic] = mt
		}
		return out
	}
	findCoordinator := func(cl *kgo.Client, typ int8, key string) {
		t.Helper()
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType, req.CoordinatorKeys = typ, []string{key}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != 0 {
			t.Fatalf("FindCoordinator: %v %+v", err, resp)
		}
	}

	createTopic(t, tb.admin(t), "plain", 1, nil)
	if m := metadata(cl); len(m) != 1 || m["plain"].IsInternal {
		t.Fatalf("before any coordinator: %+v", m)
	}
	findCoordinator(cl, 0, "g1")
	m := metadata(cl)
	if o, ok := m[offsetsTopic]; !ok || !o.IsInternal || len(o.Partitions) != 3 || m["plain"].IsInternal {
		t.Fatalf("after a group coordinator: %+v", m)
	}
	if _, ok := m[txnStateTopic]; ok {
		t.Fatal("__transaction_state before any transaction coordinator")
	}
	findCoordinator(cl, 1, "tx1")
	if ts, ok := metadata(cl)[txnStateTopic]; !ok || !ts.IsInternal || len(ts.Partitions) != 2 {
		t.Fatalf("after a transaction coordinator: %+v", ts)
	}
	if v, _ := tb.topic(txnStateTopic).config("cleanup.policy"); v != "compact" {
		t.Fatalf("__transaction_state cleanup.policy %q", v)
	}

	// Producing is refused as Kafka's ReplicaManager does; a missing partition is unknown.
	preq := kmsg.NewPtrProduceRequest()
	preq.Acks, preq.TimeoutMillis = -1, 10000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = offsetsTopic
	for _, idx := range []int32{0, 9} {
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition, pp.Records = idx, rawBatchKeys(t, [][]byte{[]byte("k")})
		pt.Partitions = append(pt.Partitions, pp)
	}
	preq.Topics = append(preq.Topics, pt)
	presp, err := preq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if got := presp.Topics[0].Partitions; got[0].ErrorCode != kerr.InvalidTopicException.Code || got[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("produce to __consumer_offsets: %+v", got)
	}

	// A restart keeps them (they are topics of the metadata log).
	tb.Close()
	tb = startBroker(t, dir, parts)
	cl = tb.client(t)
	m = metadata(cl)
	if !m[offsetsTopic].IsInternal || !m[txnStateTopic].IsInternal || len(m[offsetsTopic].Partitions) != 3 {
		t.Fatalf("after restart: %+v", m)
	}

	// Kafka 4.0.2 deletes them on request; the next FindCoordinator creates them again.
	if _, err := tb.admin(t).DeleteTopics(ctx, offsetsTopic); err != nil {
		t.Fatal(err)
	}
	if _, ok := metadata(cl)[offsetsTopic]; ok {
		t.Fatal("__consumer_offsets not deleted")
	}
	findCoordinator(cl, 0, "g2")
	if o := metadata(cl)[offsetsTopic]; !o.IsInternal || len(o.Partitions) != 3 {
		t.Fatalf("recreated: %+v", o)
	}
}
