package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestApiVersionsClientSoftwareName: from v3 the client software name and version must match
// Kafka's pattern, else INVALID_REQUEST with no keys and no features (as Kafka 4.0).
func TestApiVersionsClientSoftwareName(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	cl := tb.client(t)
	ctx := ctxT(t, 10*time.Second)
	for _, c := range []struct {
		name, version string
		ok            bool
	}{{"kgo", "1.2.3-rc.1", true}, {"", "1", false}, {"a", "__consumer_offsets", false},
		{"name-", "1", false}, {"x", "1.0 beta", false}, {"A9", "0", true}} {
		av := kmsg.NewPtrApiVersionsRequest()
		av.Version = 3
		av.ClientSoftwareName, av.ClientSoftwareVersion = c.name, c.version
		r, err := av.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if c.ok != (r.ErrorCode == 0) || !c.ok && (r.ErrorCode != kerr.InvalidRequest.Code || len(r.ApiKeys) != 0 || r.FinalizedFeaturesEpoch != -1) {
			t.Errorf("%q / %q: error %d, %d keys, epoch %d (valid %v)", c.name, c.version, r.ErrorCode, len(r.ApiKeys), r.FinalizedFeaturesEpoch, c.ok)
		}
	}
}

func TestFeatureLevels(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	cl := tb.client(t)
	ctx := ctxT(t, 10*time.Second)

	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 4
	av.ClientSoftwareName, av.ClientSoftwareVersion = "klite-test", "1.0"
	avr, err := av.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	fin := map[string]int16{}
	for _, f := range avr.FinalizedFeatures {
		fin[f.Name] = f.MaxVersionLevel
	}
	if len(fin) != 3 || fin["metadata.version"] != 25 || fin["transaction.version"] != 2 || fin["group.version"] != 1 {
		t.Fatalf("finalized features %v, want Kafka 4.0's metadata.version 25, transaction.version 2, group.version 1", fin)
	}
	if len(avr.SupportedFeatures) != 5 {
		t.Fatalf("v4 supported features %+v, want 5", avr.SupportedFeatures)
	}

	update := func(v int16, feature string, level int16) *kmsg.UpdateFeaturesResponse {
		t.Helper()
		req := kmsg.NewPtrUpdateFeaturesRequest()
		req.Version = v
		u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		u.Feature, u.MaxVersionLevel, u.UpgradeType = feature, level, 1
		req.FeatureUpdates = append(req.FeatureUpdates, u)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := update(2, "transaction.version", 2); r.ErrorCode != 0 {
		t.Fatalf("keeping a level: %+v", r)
	}
	if r := update(2, "transaction.version", 1); r.ErrorCode != kerr.InvalidUpdateVersion.Code {
		t.Fatalf("changing a level, v2: %+v", r)
	}
	// (v0-v1 answer per feature: the wire differential compares them with Kafka.)
	if r := update(2, "no.such", 1); r.ErrorCode != kerr.InvalidUpdateVersion.Code {
		t.Fatalf("unknown feature: %+v", r)
	}
}
