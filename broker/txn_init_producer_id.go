package broker

// InitProducerID for transactional producers (the handler and version range are in
// init_producer_id.go): the transaction coordinator hands out the producer ID and bumps the
// epoch, fencing older producers with the same transactional ID and aborting their open
// transaction before answering (Kafka answers CONCURRENT_TRANSACTIONS and lets the client
// retry; klite waits for the abort instead). KIP-360 requests (producer ID/epoch given) must
// name the current producer: another ID gets INVALID_PRODUCER_ID_MAPPING, an old epoch
// PRODUCER_FENCED (INVALID_PRODUCER_EPOCH before v4), a retry of the last bump its result.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleTxnInitProducerID(b *Broker, rc *ReqCtx, req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse, respond func(kmsg.Response)) {
	if *req.TransactionalID == "" {
		resp.ErrorCode = kerr.InvalidRequest.Code
		respond(resp)
		return
	}
	reqPID, reqEpoch := int64(-1), int16(-1)
	if req.Version >= 3 {
		reqPID, reqEpoch = req.ProducerID, req.ProducerEpoch
	}
	timeout := time.Duration(req.TransactionTimeoutMillis) * time.Millisecond
	b.txns.InitProducerID(*req.TransactionalID, timeout, reqPID, reqEpoch, func(pid int64, epoch int16, e *kerr.Error) {
		if e != nil {
			resp.ErrorCode = fencedCode(e, req.Version, 4)
		} else {
			resp.ProducerID, resp.ProducerEpoch = pid, epoch
		}
		respond(resp)
	})
}

// fencedCode maps PRODUCER_FENCED to INVALID_PRODUCER_EPOCH for request versions before the
// one that introduced it (KIP-588), as Kafka does.
func fencedCode(e *kerr.Error, version, since int16) int16 {
	if e == kerr.ProducerFenced && version < since {
		return kerr.InvalidProducerEpoch.Code
	}
	return e.Code
}
