package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Settings Kafka users tune (flags in cmd/klite) take effect and DescribeConfigs reports them
// under Kafka's names as static broker configs.
func TestTunedBrokerSettings(t *testing.T) {
	tb := startBroker(t, t.TempDir(), func(c *Config) {
		c.Groups.MinSessionTimeout = 2 * time.Second
		c.Groups.MaxSessionTimeout = 90 * time.Second
		c.Groups.OffsetsRetention = 3 * time.Hour
		c.TransactionMaxTimeout = 20 * time.Second
	})
	ctx := ctxT(t, 10*time.Second)
	rc, err := tb.admin(t).DescribeBrokerConfigs(ctx, tb.nodeID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	src := map[string]kmsg.ConfigSource{}
	for _, r := range rc {
		for _, c := range r.Configs {
			if c.Value != nil {
				got[c.Key], src[c.Key] = *c.Value, c.Source
			}
		}
	}
	for k, v := range map[string]string{"group.min.session.timeout.ms": "2000", "group.max.session.timeout.ms": "90000",
		"offsets.retention.minutes": "180", "transaction.max.timeout.ms": "20000"} {
		if got[k] != v || src[k] != kmsg.ConfigSourceStaticBrokerConfig {
			t.Errorf("%s = %q (source %v), want %q static", k, got[k], src[k], v)
		}
	}

	// A transaction timeout above the maximum is refused, as Kafka.
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = kmsg.StringPtr("tuned")
	req.TransactionTimeoutMillis = 30000
	resp, err := req.RequestWith(ctx, tb.client(t))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("InitProducerID with a 30 s timeout over a 20 s maximum: code %d", resp.ErrorCode)
	}
}
