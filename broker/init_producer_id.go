// InitProducerID (key 22), versions 0-5.
//
// Idempotent producers (no transactional ID) get a fresh producer ID with epoch 0 on every
// call, as in Kafka (a KIP-360 epoch-bump request from an idempotent producer also gets a new
// ID). Producer IDs are reserved in blocks of 1000 in the metadata log, so an ID is never
// handed out twice across restarts. Transactional IDs go to the transaction coordinator
// (txn_init_producer_id.go).
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(22, 0, 5, handleInitProducerID) }

func handleInitProducerID(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	// ACLs, as Kafka: WRITE on the transactional ID; an idempotent producer needs
	// IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
	if req.TransactionalID != nil && !b.allowedTxnID(rc, kmsg.ACLOperationWrite, *req.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		respond(resp)
		return
	}
	if req.TransactionalID == nil && !b.allowedCluster(rc, kmsg.ACLOperationIdempotentWrite) && !b.allowedAny(rc, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		respond(resp)
		return
	}
	if (req.ProducerID == -1) != (req.ProducerEpoch == -1) { // as Kafka: both or neither (KIP-360)
		resp.ErrorCode = kerr.InvalidRequest.Code
		respond(resp)
		return
	}
	if req.TransactionalID != nil {
		handleTxnInitProducerID(b, rc, req, resp, respond) // txn_init_producer_id.go
		return
	}
	pid, err := b.allocateProducerID()
	if err != nil {
		// Kafka's producer ID manager answers COORDINATOR_LOAD_IN_PROGRESS while it has no
		// block (clients retry it; KAFKA_STORAGE_ERROR is fatal to some).
		b.log.Error("persisting producer ID block failed", "err", err)
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
		respond(resp)
		return
	}
	resp.ProducerID, resp.ProducerEpoch = pid, 0
	respond(resp)
}

// allocateProducerID hands out the next producer ID, reserving a new block in the metadata
// log when the current one is used up.
func (b *Broker) allocateProducerID() (int64, error) {
	b.pidMu.Lock()
	defer b.pidMu.Unlock()
	if b.nextPID >= b.pidBlockEnd {
		end := b.nextPID + pidBlockSize
		b.mu.Lock()
		err := b.appendMetaLocked(metaRecord{Type: "pid_block", End: end})
		if err == nil {
			b.pidBlockEnd = end // written under both locks: the snapshot reads it under b.mu
		}
		b.mu.Unlock()
		if err != nil {
			return -1, err
		}
	}
	pid := b.nextPID
	b.nextPID++
	return pid, nil
}
