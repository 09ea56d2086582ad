package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A broker started with another node ID reports it everywhere a node ID appears.
func TestNodeIDReported(t *testing.T) {
	tb := startBroker(t, t.TempDir(), func(c *Config) { c.NodeID = 7 })
	adm := tb.admin(t)
	createTopic(t, adm, "nid", 2, nil)
	ctx := ctxT(t, 10*time.Second)

	md, err := adm.Metadata(ctx, "nid")
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].NodeID != 7 || md.Controller != 7 {
		t.Fatalf("metadata brokers %+v controller %d", md.Brokers, md.Controller)
	}
	for _, p := range md.Topics["nid"].Partitions {
		if p.Leader != 7 || len(p.Replicas) != 1 || p.Replicas[0] != 7 {
			t.Fatalf("partition %+v", p)
		}
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys = []string{"g"}
	fr, err := fc.RequestWith(ctx, tb.client(t))
	if err != nil || len(fr.Coordinators) != 1 || fr.Coordinators[0].NodeID != 7 {
		t.Fatalf("find coordinator %+v %v", fr, err)
	}
	bc, err := adm.DescribeBrokerConfigs(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := bc.On("7", nil); err != nil || c.Err != nil {
		t.Fatalf("broker 7 configs: %v %+v", err, c)
	}
}
