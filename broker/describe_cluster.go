// DescribeCluster (key 60), versions 0-2.
//
// Reports this one broker (never fenced), the cluster ID, and itself as the controller.
// EndpointType (v1+) 1 is the broker endpoint; asking for controllers (2) is
// MISMATCHED_ENDPOINT_TYPE, as a Kafka broker answers; any other type
// UNSUPPORTED_ENDPOINT_TYPE. ClusterAuthorizedOperations, when
// requested, lists every cluster operation (klite has no authorizer), as Kafka does without one.
package broker

import (
	"strconv"

	"github.com/klite/klite/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(60, 0, 2, handleDescribeCluster) }

func handleDescribeCluster(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = 1
	if req.Version >= 1 && req.EndpointType != 1 && req.EndpointType != 2 { // as Kafka
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr("Unsupported endpoint type " + strconv.Itoa(int(req.EndpointType)))
		respond(resp)
		return
	}
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.MismatchedEndpointType.Code
		resp.ErrorMessage = kmsg.StringPtr("The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER")
		respond(resp)
		return
	}
	resp.ClusterID = b.clusterID
	resp.ControllerID = b.nodeID
	br := kmsg.NewDescribeClusterResponseBroker()
	br.NodeID, br.Host, br.Port = b.nodeID, b.advHost, b.advPort
	resp.Brokers = append(resp.Brokers, br)
	resp.ClusterAuthorizedOperations = -2147483648
	if req.IncludeClusterAuthorizedOperations { // as Kafka: 0 without DESCRIBE on the cluster
		resp.ClusterAuthorizedOperations = 0
		if b.allowedCluster(rc, kmsg.ACLOperationDescribe) {
			resp.ClusterAuthorizedOperations = b.authorizedOps(rc, kmsg.ACLResourceTypeCluster, acl.ClusterName)
		}
	}
	respond(resp)
}
