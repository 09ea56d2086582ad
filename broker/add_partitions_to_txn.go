// AddPartitionsToTxn (key 24), versions 0-5.
//
// v0-v3 (clients) add partitions to the producer's transaction, starting it. v4+ carry a
// batch of transactions and VerifyOnly (KIP-890 part 1), which Kafka reserves for brokers
// (CLUSTER_ACTION); klite answers them too, since it is its own coordinator: VerifyOnly
// reports TRANSACTION_ABORTABLE for partitions not in the ongoing transaction (as Kafka 4.0). v5 only adds
// error codes klite does not produce. Unknown partitions get UNKNOWN_TOPIC_OR_PARTITION and
// the others in the request OPERATION_NOT_ATTEMPTED, as in Kafka. Produce checks the same
// membership in-process before appending a transactional batch. A topic named twice is one
// topic in the answer, and a partition named twice one partition (Kafka keeps them in a map).
package broker

import (
	"slices"

	"github.com/klite/klite/broker/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(24, 0, 5, handleAddPartitionsToTxn) }

type txnTopicParts struct {
	topic string
	parts []int32
}

func handleAddPartitionsToTxn(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		var tps []txnTopicParts
		for _, t := range req.Topics {
			tps = addTxnTopicParts(tps, t.Topic, t.Partitions)
		}
		codes := b.authorizeAddPartitions(rc, req.TransactionalID, tps)
		if codes == nil {
			codes = b.addPartitionsToTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, tps, req.Version)
		}
		for _, t := range tps {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.topic
			for _, p := range t.parts {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[txnTP(t.topic, p)]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		respond(resp)
		return
	}
	if !b.allowedCluster(rc, kmsg.ACLOperationClusterAction) { // v4+ is broker-to-broker, as Kafka
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		respond(resp)
		return
	}
	for _, tx := range req.Transactions {
		var tps []txnTopicParts
		for _, t := range tx.Topics {
			tps = addTxnTopicParts(tps, t.Topic, t.Partitions)
		}
		codes := b.addPartitionsToTxn(tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly, tps, req.Version)
		rtx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtx.TransactionalID = tx.TransactionalID
		for _, t := range tps {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.topic
			for _, p := range t.parts {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[txnTP(t.topic, p)]
				rt.Partitions = append(rt.Partitions, rp)
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	respond(resp)
}

// addTxnTopicParts adds a request's topic to tps, merging a topic already there and
// leaving out partitions already listed.
func addTxnTopicParts(tps []txnTopicParts, topic string, parts []int32) []txnTopicParts {
	i := 0
	for i < len(tps) && tps[i].topic != topic {
		i++
	}
	if i == len(tps) {
		tps = append(tps, txnTopicParts{topic: topic})
	}
	for _, p := range parts {
		if !slices.Contains(tps[i].parts, p) {
			tps[i].parts = append(tps[i].parts, p)
		}
	}
	return tps
}

// addPartitionsToTxn returns the error code per partition.
func (b *Broker) addPartitionsToTxn(id string, pid int64, epoch int16, verifyOnly bool, tps []txnTopicParts, version int16) map[txn.TP]int16 {
	codes := map[txn.TP]int16{}
	var all []txn.TP
	unknown := false
	for _, t := range tps {
		for _, p := range t.parts {
			tp := txnTP(t.topic, p)
			all = append(all, tp)
			if isInternalTopic(t.topic) {
				// Kafka leaves internal topics out of the topics it authorizes: they
				// are refused as not authorized, whatever the partition.
				codes[tp] = kerr.TopicAuthorizationFailed.Code
				unknown = true
			} else if _, e := b.partition(t.topic, p); e != nil {
				codes[tp] = e.Code
				unknown = true
			}
		}
	}
	setAll := func(code int16) {
		for _, tp := range all {
			if _, bad := codes[tp]; !bad || code != kerr.OperationNotAttempted.Code {
				codes[tp] = code
			}
		}
	}
	if unknown {
		setAll(kerr.OperationNotAttempted.Code)
		return codes
	}
	if verifyOnly {
		res, e := b.txns.VerifyPartitions(id, pid, epoch, all)
		if e != nil {
			setAll(fencedCode(e, version, 2))
			return codes
		}
		for tp, e := range res {
			if e != nil {
				codes[tp] = e.Code
			} else {
				codes[tp] = 0
			}
		}
		return codes
	}
	if e := b.txns.AddPartitions(id, pid, epoch, all); e != nil {
		setAll(fencedCode(e, version, 2))
		return codes
	}
	setAll(0)
	return codes
}

// authorizeAddPartitions applies ACLs to a client's (v0-3) request as Kafka: without WRITE on
// the transactional ID every partition gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED; without
// WRITE on some topic its partitions get TOPIC_AUTHORIZATION_FAILED and the others
// OPERATION_NOT_ATTEMPTED. nil means authorized.
func (b *Broker) authorizeAddPartitions(rc *ReqCtx, id string, tps []txnTopicParts) map[txn.TP]int16 {
	if b.authz == nil {
		return nil
	}
	txnOK := b.allowedTxnID(rc, kmsg.ACLOperationWrite, id)
	denied := map[string]bool{}
	for _, t := range tps {
		if !b.allowedTopic(rc, kmsg.ACLOperationWrite, t.topic) {
			denied[t.topic] = true
		}
	}
	if txnOK && len(denied) == 0 {
		return nil
	}
	codes := map[txn.TP]int16{}
	for _, t := range tps {
		for _, p := range t.parts {
			switch {
			case !txnOK:
				codes[txnTP(t.topic, p)] = kerr.TransactionalIDAuthorizationFailed.Code
			case denied[t.topic]:
				codes[txnTP(t.topic, p)] = kerr.TopicAuthorizationFailed.Code
			default:
				codes[txnTP(t.topic, p)] = kerr.OperationNotAttempted.Code
			}
		}
	}
	return codes
}
