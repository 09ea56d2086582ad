// FindCoordinator (key 10), versions 0-6.
//
// klite is one broker, so it is the coordinator of every group (key type 0) and every
// transactional ID (key type 1); other key types get INVALID_REQUEST. v0-v3 carry one key,
// v4+ a batch (KIP-699). As Kafka, the error message reads "NONE" on success in v1-v3 and is
// empty per key in v4+. The first request of a type creates its internal topic
// (__consumer_offsets, __transaction_state: internal_topics.go), as Kafka's does.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(10, 0, 6, handleFindCoordinator) }

func handleFindCoordinator(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	code := int16(0)
	if req.CoordinatorType != 0 && req.CoordinatorType != 1 {
		code = kerr.InvalidRequest.Code
	}
	// ACLs: DESCRIBE on the group or transactional ID, as Kafka.
	fill := func(key string, nodeID *int32, host *string, port *int32, errCode *int16) {
		*errCode = code
		if code == 0 && req.CoordinatorType == 0 && !b.allowedGroup(rc, kmsg.ACLOperationDescribe, key) {
			*errCode = kerr.GroupAuthorizationFailed.Code
		}
		if code == 0 && req.CoordinatorType == 1 && !b.allowedTxnID(rc, kmsg.ACLOperationDescribe, key) {
			*errCode = kerr.TransactionalIDAuthorizationFailed.Code
		}
		if *errCode != 0 {
			*nodeID, *host, *port = -1, "", -1
			return
		}
		b.ensureInternalTopic(req.CoordinatorType)
		*nodeID, *host, *port = b.nodeID, b.advHost, b.advPort
	}
	if req.Version < 4 {
		fill(req.CoordinatorKey, &resp.NodeID, &resp.Host, &resp.Port, &resp.ErrorCode)
		if req.Version >= 1 {
			msg := "NONE"
			if resp.ErrorCode != 0 {
				msg = ""
			}
			resp.ErrorMessage = &msg
		}
		respond(resp)
		return
	}
	for _, key := range req.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		fill(key, &c.NodeID, &c.Host, &c.Port, &c.ErrorCode)
		msg := ""
		c.ErrorMessage = &msg
		resp.Coordinators = append(resp.Coordinators, c)
	}
	respond(resp)
}
