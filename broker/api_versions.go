// ApiVersions (key 18), versions 0-4.
//
// The key list is generated from the handler registry, so it advertises exactly what klite
// implements. A request at an unsupported version is answered in v0 with UNSUPPORTED_VERSION
// and, as Kafka does (KIP-511), only the ApiVersions entry in the key list, so the client can
// retry with a version both sides speak.
// Feature levels (v3+) come from features.go. From v3 the client software name and version
// must match Kafka's pattern (KIP-511: letters and digits, with '-' and '.' inside); otherwise
// the answer is INVALID_REQUEST with no keys, as Kafka's.
package broker

import (
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(18, 0, 4, handleApiVersions) }

func handleApiVersions(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response)) {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = rc.Version
	if spec := handlers[18]; rc.Version < spec.min || rc.Version > spec.max {
		// Kafka (ApiVersionsRequest.getErrorResponse) lists only ApiVersions itself here; a
		// client that took the full list from this answer would pick versions (e.g. of the
		// transaction APIs) before the real negotiation.
		resp.Version = 0
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = 18, spec.min, spec.max
		resp.ApiKeys = append(resp.ApiKeys, k)
		respond(resp)
		return
	}
	if r := req.(*kmsg.ApiVersionsRequest); rc.Version >= 3 &&
		(!softwareNameVersion.MatchString(r.ClientSoftwareName) || !softwareNameVersion.MatchString(r.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		resp.FinalizedFeaturesEpoch = -1
		respond(resp)
		return
	}
	for _, h := range supportedAPIs() {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = h.key, h.min, h.max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	addFeatures(resp) // features.go
	respond(resp)
}

// softwareNameVersion is Kafka's ApiVersionsRequest.SOFTWARE_NAME_VERSION_PATTERN.
var softwareNameVersion = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)
