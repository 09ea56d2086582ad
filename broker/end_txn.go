// EndTxn (key 26), versions 0-5.
//
// Commits or aborts the transaction: the coordinator durably moves it to PrepareCommit or
// PrepareAbort, writes a control record (marker) to every partition in it through the WAL,
// applies offsets staged by TxnOffsetCommit on commit, records CompleteCommit/CompleteAbort,
// and only then answers (Kafka answers after the prepare record and writes markers in the
// background; a client cannot tell except by latency). A retried EndTxn of a completed
// transaction succeeds; one arriving while it completes gets CONCURRENT_TRANSACTIONS.
// v5 is KIP-890 part 2 (transaction.version 2, advertised in ApiVersions as Kafka 4.0 does):
// the epoch is bumped at every EndTxn and returned with the producer ID; see txn.EndTxn.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(26, 0, 5, handleEndTxn) }

func handleEndTxn(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.EndTxnRequest)
	tv2 := req.Version >= 5
	if !b.allowedTxnID(rc, kmsg.ACLOperationWrite, req.TransactionalID) { // ACLs, as Kafka
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		respond(resp)
		return
	}
	if req.TransactionalID == "" { // as Kafka's transaction coordinator
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		resp.ErrorCode = kerr.InvalidRequest.Code
		respond(resp)
		return
	}
	b.txns.EndTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, tv2, func(pid int64, epoch int16, e *kerr.Error) {
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		if e != nil {
			resp.ErrorCode = fencedCode(e, req.Version, 2)
		} else if tv2 {
			resp.ProducerID, resp.ProducerEpoch = pid, epoch
		}
		respond(resp)
	})
}
