package broker

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testBroker is a broker serving on 127.0.0.1:0 over a data directory.
type testBroker struct {
	*Broker
	addr string
	dir  string
	l    net.Listener
	// abandoned brokers are left running without Close, like a crashed process.
	abandoned bool
}

// abandon stops accepting connections but neither closes the broker nor flushes anything,
// as if the process had been killed.
func (tb *testBroker) abandon() {
	tb.abandoned = true
	tb.l.Close()
	tb.stopJobs() // a killed process trims nothing more
}

func startBroker(t *testing.T, dir string, mod ...func(*Config)) *testBroker {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: dir, AdvertisedAddr: l.Addr().String(), AutoCreateTopics: true, DefaultPartitions: 1}
	for _, m := range mod {
		m(&cfg)
	}
	b, err := Open(cfg)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	go b.Serve(l)
	tb := &testBroker{Broker: b, addr: l.Addr().String(), dir: dir, l: l}
	t.Cleanup(func() {
		if !tb.abandoned {
			b.Close()
		}
	})
	return tb
}

func (tb *testBroker) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tb.addr), kgo.RetryTimeout(10 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (tb *testBroker) admin(t *testing.T) *kadm.Client {
	return kadm.NewClient(tb.client(t))
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t *testing.T, adm *kadm.Client, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := adm.CreateTopic(ctxT(t, 10*time.Second), partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

// consumeN reads n records from the start of topic, failing after a deadline.
func consumeN(t *testing.T, tb *testBroker, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := tb.client(t, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	ctx := ctxT(t, 15*time.Second)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(out), n)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}
