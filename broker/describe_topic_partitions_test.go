package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDescribeTopicPartitionsPages(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	createTopic(t, adm, "dtp-b", 3, nil)
	createTopic(t, adm, "dtp-a", 2, nil)
	cl := tb.client(t)

	ask := func(limit int32, cursor *kmsg.DescribeTopicPartitionsRequestCursor, names ...string) *kmsg.DescribeTopicPartitionsResponse {
		t.Helper()
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		for _, n := range names {
			rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
			rt.Topic = n
			req.Topics = append(req.Topics, rt)
		}
		req.ResponsePartitionLimit, req.Cursor = limit, cursor
		resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	type got struct {
		topic string
		parts []int32
		code  int16
	}
	flat := func(r *kmsg.DescribeTopicPartitionsResponse) []got {
		var out []got
		for _, tr := range r.Topics {
			g := got{topic: *tr.Topic, code: tr.ErrorCode}
			for _, p := range tr.Partitions {
				g.parts = append(g.parts, p.Partition)
			}
			out = append(out, g)
		}
		return out
	}

	// Name order, one page.
	r := ask(2000, nil, "dtp-b", "dtp-a", "dtp-missing")
	if g := flat(r); len(g) != 3 || g[0].topic != "dtp-a" || len(g[0].parts) != 2 || g[1].topic != "dtp-b" ||
		len(g[1].parts) != 3 || g[2].code != kerr.UnknownTopicOrPartition.Code || r.NextCursor != nil {
		t.Fatalf("one page: %+v cursor %+v", g, r.NextCursor)
	}
	// Limit 3: a's two partitions and b's first, then the cursor at b/1.
	r = ask(3, nil, "dtp-a", "dtp-b")
	if g := flat(r); len(g) != 2 || len(g[1].parts) != 1 || r.NextCursor == nil || r.NextCursor.Topic != "dtp-b" || r.NextCursor.Partition != 1 {
		t.Fatalf("limit 3: %+v cursor %+v", g, r.NextCursor)
	}
	// Resume from the cursor.
	c := kmsg.NewDescribeTopicPartitionsRequestCursor()
	c.Topic, c.Partition = "dtp-b", 1
	r = ask(3, &c, "dtp-a", "dtp-b")
	if g := flat(r); len(g) != 1 || g[0].topic != "dtp-b" || len(g[0].parts) != 2 || g[0].parts[0] != 1 || r.NextCursor != nil {
		t.Fatalf("resumed: %+v cursor %+v", g, r.NextCursor)
	}
	// A cursor naming a topic not asked for is an invalid request; a limit below 1 still
	// returns one partition, as Kafka 4.0.
	c.Topic = "dtp-other"
	if g := flat(ask(3, &c, "dtp-a")); len(g) != 1 || g[0].code != kerr.InvalidRequest.Code {
		t.Fatalf("foreign cursor: %+v", g)
	}
	if r = ask(0, nil, "dtp-a"); len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 || r.NextCursor == nil || r.NextCursor.Partition != 1 {
		t.Fatalf("limit 0: %+v", flat(r))
	}
}
