// ListConfigResources (key 74), version 0 (KIP-714's ListClientMetricsResources, renamed by
// KIP-1142): v0 lists the client-metrics configuration resources, and klite has none (it does
// not collect client telemetry), so the list is always empty. Needs DESCRIBE_CONFIGS on the
// cluster, as Kafka.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(74, 0, 0, handleListConfigResources) }

func handleListConfigResources(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.ListConfigResourcesRequest)
	resp := req.ResponseKind().(*kmsg.ListConfigResourcesResponse)
	if !b.allowedCluster(rc, kmsg.ACLOperationDescribeConfigs) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		respond(resp)
		return
	}
	resp.ConfigResources = []kmsg.ListConfigResourcesResponseConfigResource{}
	respond(resp)
}
