// EndTxn (key 26), versions 0-4.
//
// Commits or aborts the transaction: the coordinator durably moves it to PrepareCommit or
// PrepareAbort, writes a control record (marker) to every partition in it through the WAL,
// applies offsets staged by TxnOffsetCommit on commit, records CompleteCommit/CompleteAbort,
// and only then answers (Kafka answers after the prepare record and writes markers in the
// background; a client cannot tell except by latency). A retried EndTxn of a completed
// transaction succeeds; one arriving while it completes gets CONCURRENT_TRANSACTIONS.
// Version 5 (KIP-890 part 2: epoch bump per transaction, "transaction.version" 2) is not
// implemented, so it is not advertised and klite reports no transaction.version feature.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(26, 0, 4, handleEndTxn) }

func handleEndTxn(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.EndTxnRequest)
	b.txns.EndTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, func(e *kerr.Error) {
		resp := req.ResponseKind().(*kmsg.EndTxnResponse)
		if e != nil {
			resp.ErrorCode = fencedCode(e, req.Version, 2)
		}
		respond(resp)
	})
}
