// AddOffsetsToTxn (key 25), versions 0-4.
//
// Adds a consumer group to the producer's transaction (starting it), so TxnOffsetCommit may
// stage offsets for it. Kafka adds the group's __consumer_offsets partition; klite records
// the group itself. Errors as in Kafka: INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED
// (INVALID_PRODUCER_EPOCH before v2), CONCURRENT_TRANSACTIONS while the previous transaction
// completes, INVALID_REQUEST for the empty transactional ID.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(25, 0, 4, handleAddOffsetsToTxn) }

func handleAddOffsetsToTxn(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch { // ACLs, as Kafka
	case !b.allowedTxnID(rc, kmsg.ACLOperationWrite, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
	case !b.allowedGroup(rc, kmsg.ACLOperationRead, req.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
	}
	if resp.ErrorCode != 0 {
		respond(resp)
		return
	}
	if req.TransactionalID == "" { // as Kafka's transaction coordinator
		resp.ErrorCode = kerr.InvalidRequest.Code
		respond(resp)
		return
	}
	if e := b.txns.AddGroup(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group); e != nil {
		resp.ErrorCode = fencedCode(e, req.Version, 2)
	}
	respond(resp)
}
