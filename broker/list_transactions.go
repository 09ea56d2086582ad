// ListTransactions (key 66), versions 0-1.
//
// Lists transactional IDs with their producer ID and state, filtered by state names, producer
// IDs and (v1, KIP-994) by open transactions running longer than DurationFilterMillis.
// Unknown state names are returned once each in UnknownStateFilters and match nothing, as in
// Kafka. The duration filter keeps transactions open strictly longer than it, and (as Kafka,
// whose never-started transactions have start time -1) every transaction not yet begun.
// v2 (transactional ID pattern) is not advertised, as Kafka 4.0 does not have it.
package broker

import (
	"slices"

	"github.com/klite/klite/broker/txn"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(66, 0, 1, handleListTransactions) }

func handleListTransactions(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := map[txn.State]bool{}
	for _, s := range req.StateFilters {
		if st, ok := txn.ParseState(s); ok {
			states[st] = true
		} else if !slices.Contains(resp.UnknownStateFilters, s) { // Kafka reads the filters as a set
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
		}
	}
	if len(req.StateFilters) > 0 && len(states) == 0 {
		respond(resp) // only unknown states: nothing matches
		return
	}
	pids := map[int64]bool{}
	for _, p := range req.ProducerIDFilters {
		pids[p] = true
	}
	now := b.now()
	for _, info := range b.txns.List() {
		if len(states) > 0 && !states[info.State] {
			continue
		}
		if len(pids) > 0 && !pids[info.PID] {
			continue
		}
		if !b.allowedTxnID(rc, kmsg.ACLOperationDescribe, info.ID) { // ACLs: hidden, as Kafka
			continue
		}
		// Kafka keeps a transaction running longer than the filter (strictly); one that never
		// started has start time -1, so it passes any filter (KIP-994 as Kafka 4.0 has it).
		if req.Version >= 1 && req.DurationFilterMillis >= 0 {
			start := int64(-1)
			if !info.Start.IsZero() {
				start = info.Start.UnixMilli()
			}
			if now.UnixMilli()-start <= req.DurationFilterMillis {
				continue
			}
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = info.ID, info.PID, info.State.String()
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	respond(resp)
}
