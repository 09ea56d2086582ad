// DescribeTransactions (key 65), version 0.
//
// Describes transactional IDs from the transaction coordinator: state, producer ID and epoch,
// timeout, start time of the open transaction (-1 if none) and its partitions. Unknown IDs
// get TRANSACTIONAL_ID_NOT_FOUND with producer ID, epoch and start time 0, as in Kafka.
package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(65, 0, 0, handleDescribeTransactions) }

func handleDescribeTransactions(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		// Kafka 4.0 leaves the schema's zero defaults on error rows (the wire differential
		// case describe-transactions compares them).
		st.StartTimestamp, st.ProducerID, st.ProducerEpoch = 0, 0, 0
		if !b.allowedTxnID(rc, kmsg.ACLOperationDescribe, id) { // ACLs, as Kafka
			st.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		if id == "" { // as Kafka's transaction coordinator
			st.ErrorCode = kerr.InvalidRequest.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		info, ok := b.txns.Describe(id)
		if !ok {
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		st.StartTimestamp = -1
		st.State = info.State.String()
		st.TimeoutMillis = int32(info.Timeout.Milliseconds())
		if !info.Start.IsZero() {
			st.StartTimestamp = info.Start.UnixMilli()
		}
		st.ProducerID, st.ProducerEpoch = info.PID, info.Epoch
		byTopic := map[string][]int32{}
		for _, tp := range info.Parts {
			byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
		}
		topics := make([]string, 0, len(byTopic))
		for t := range byTopic {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		for _, t := range topics {
			tt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
			tt.Topic, tt.Partitions = t, byTopic[t]
			st.Topics = append(st.Topics, tt)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	respond(resp)
}
