// Feature levels (KIP-584) in ApiVersions v3+, and UpdateFeatures (key 57), versions 0-2.
//
// klite runs at fixed levels of Kafka 4.0's features: metadata.version 25 (4.0-IV3, the
// protocol it speaks), transaction.version 2 (KIP-890 part 2: clients that support it, franz-go
// and the Java client, use implicit partition adds on Produce v12+, TxnOffsetCommit v5 and
// EndTxn v5 with an epoch bump per transaction; older clients keep TV1, both are served),
// group.version 1 (KIP-848 consumer groups), and kraft.version and eligible.leader.replicas.version at 0 (no quorum, no
// replicas). It reports as supported exactly the levels it can run at, so an UpdateFeatures
// that keeps a feature at its level succeeds and any other level is INVALID_UPDATE_VERSION,
// answered for the whole request (no per-feature results, at every version, as Kafka 4.0).
// As Kafka: finalized features at level 0 are left out, and v3 answers leave out supported
// features whose minimum is 0 (KIP-1022: older clients reject a 0 minimum).
// Difference from Kafka: Kafka supports metadata.version 7-25 and the upper levels of
// kraft.version and eligible.leader.replicas.version; klite does not pretend to.
package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type feature struct {
	name     string
	min, max int16 // supported levels
	level    int16 // finalized level
}

// features is sorted by name (Kafka's order in ApiVersions).
var features = []feature{
	{"eligible.leader.replicas.version", 0, 0, 0},
	{"group.version", 0, 1, 1},
	{"kraft.version", 0, 0, 0},
	{"metadata.version", 25, 25, 25},
	{"transaction.version", 0, 2, 2},
}

// featuresEpoch is the finalized features' epoch: they never change.
const featuresEpoch = 1

func init() { register(57, 0, 2, handleUpdateFeatures) }

func addFeatures(resp *kmsg.ApiVersionsResponse) {
	if resp.Version < 3 || resp.ErrorCode != 0 {
		return
	}
	for _, f := range features {
		if resp.Version > 3 || f.min > 0 {
			sf := kmsg.NewApiVersionsResponseSupportedFeature()
			sf.Name, sf.MinVersion, sf.MaxVersion = f.name, f.min, f.max
			resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
		}
		if f.level > 0 {
			ff := kmsg.NewApiVersionsResponseFinalizedFeature()
			ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = f.name, f.level, f.level
			resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
		}
	}
	resp.FinalizedFeaturesEpoch = featuresEpoch
}

func handleUpdateFeatures(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.UpdateFeaturesRequest)
	resp := req.ResponseKind().(*kmsg.UpdateFeaturesResponse)
	fail := func(e *kerr.Error, msg string) {
		resp.ErrorCode = e.Code
		resp.ErrorMessage = kmsg.StringPtr(msg)
		respond(resp)
	}
	if !b.allowedCluster(rc, kmsg.ACLOperationAlter) {
		fail(kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Message)
		return
	}
	if len(req.FeatureUpdates) == 0 { // Kafka 4.0's controller applies the empty set: success
		respond(resp)
		return
	}
	for _, u := range req.FeatureUpdates {
		if e, msg := featureUpdate(u); e != nil {
			// Kafka 4.0's controller stops at the first failed update and answers its error
			// for the whole request, without per-feature results, at every version.
			fail(e, msg)
			return
		}
	}
	if req.Version < 2 { // v0-v1 list each feature on success (KIP-1022 dropped that in v2)
		for _, u := range req.FeatureUpdates {
			r := kmsg.NewUpdateFeaturesResponseResult()
			r.Feature = u.Feature
			resp.Results = append(resp.Results, r)
		}
	}
	respond(resp)
}

// featureUpdate checks one update against klite's fixed levels.
func featureUpdate(u kmsg.UpdateFeaturesRequestFeatureUpdate) (*kerr.Error, string) {
	for _, f := range features {
		if f.name != u.Feature {
			continue
		}
		if u.MaxVersionLevel == f.level {
			return nil, ""
		}
		return kerr.InvalidUpdateVersion, fmt.Sprintf("klite runs %s at level %d only; it cannot change to %d.", f.name, f.level, u.MaxVersionLevel)
	}
	return kerr.InvalidUpdateVersion, fmt.Sprintf("Feature %s is not supported.", u.Feature)
}
