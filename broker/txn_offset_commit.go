// TxnOffsetCommit (key 28), versions 0-5.
//
// Stages offsets in the transaction coordinator; they become the group's committed offsets
// when the transaction commits (EndTxn) and are dropped if it aborts. The group must have
// been added with AddOffsetsToTxn (else INVALID_TXN_STATE). Partitions of unknown topics get
// UNKNOWN_TOPIC_OR_PARTITION. The v3+ member ID, instance ID and generation are checked
// against the group as Kafka does (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION
// fence zombie consumers). v5 (KIP-890 part 2, transaction.version 2) adds the group to the
// transaction itself: TV2 clients send no AddOffsetsToTxn.
package broker

import (
	"github.com/klite/klite/broker/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(28, 0, 5, groupOrdered(handleTxnOffsetCommit)) }

// maxTxnOffsetMetadata is offset.metadata.max.bytes.
const maxTxnOffsetMetadata = 4096

func handleTxnOffsetCommit(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.TxnOffsetCommitRequest)
	// ACLs, as Kafka: WRITE on the transactional ID, then READ on the group, fail every
	// partition; READ on a topic fails its partitions (topicDenied, in stageTxnOffsets).
	var authErr *kerr.Error
	switch {
	case !b.allowedTxnID(rc, kmsg.ACLOperationWrite, req.TransactionalID):
		authErr = kerr.TransactionalIDAuthorizationFailed
	case !b.allowedGroup(rc, kmsg.ACLOperationRead, req.Group):
		authErr = kerr.GroupAuthorizationFailed
	}
	topicDenied := func(topic string) bool { return !b.allowedTopic(rc, kmsg.ACLOperationRead, topic) }
	if req.Version < 3 || authErr != nil {
		stageTxnOffsets(b, req, respond, nil, authErr, topicDenied)
		return
	}
	b.groups.ValidateTxnCommit(req.Group, req.MemberID, req.InstanceID, req.Generation, func(e *kerr.Error) {
		stageTxnOffsets(b, req, respond, e, nil, topicDenied)
	})
}

// stageTxnOffsets answers the request; groupErr (from the group check) fails every partition
// that exists, authErr (ACLs) every partition.
func stageTxnOffsets(b *Broker, req *kmsg.TxnOffsetCommitRequest, respond func(kmsg.Response), groupErr, authErr *kerr.Error, topicDenied func(string) bool) {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	codes := map[txn.TP]int16{}
	staged := map[txn.TP]txn.Offset{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			tp := txnTP(t.Topic, p.Partition)
			if authErr != nil {
				codes[tp] = authErr.Code
				continue
			}
			if topicDenied(t.Topic) {
				codes[tp] = kerr.TopicAuthorizationFailed.Code
				continue
			}
			if _, e := b.partition(t.Topic, p.Partition); e != nil {
				codes[tp] = e.Code
				continue
			}
			md := ""
			if p.Metadata != nil {
				md = *p.Metadata
			}
			if len(md) > maxTxnOffsetMetadata {
				codes[tp] = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			le := int32(-1)
			if req.Version >= 2 {
				le = p.LeaderEpoch
			}
			staged[tp] = txn.Offset{Offset: p.Offset, LeaderEpoch: le, Metadata: md}
		}
	}
	if groupErr != nil {
		for tp := range staged {
			codes[tp] = groupErr.Code
		}
	} else if len(staged) > 0 {
		if req.Version >= 5 {
			if e := b.txns.ImplicitAddGroup(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group); e != nil {
				for tp := range staged {
					codes[tp] = verifiedCode(e)
				}
				staged = nil
			}
		}
	}
	if groupErr == nil && len(staged) > 0 {
		if e := b.txns.StageOffsets(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, staged); e != nil {
			for tp := range staged {
				codes[tp] = verifiedCode(e)
			}
		}
	}
	// A topic named twice is one topic in Kafka's answer (its partitions as listed, repeats
	// kept); a topic without partitions stays.
	at := map[string]int{}
	for _, t := range req.Topics {
		i, ok := at[t.Topic]
		if !ok {
			i = len(resp.Topics)
			at[t.Topic] = i
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes[txnTP(t.Topic, p.Partition)]
			resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
		}
	}
	respond(resp)
}

// verifiedCode is the code of a failed transaction check on TxnOffsetCommit. Kafka 4.0 checks
// the producer through its transaction verification, which answers a wrong epoch (older or
// newer) INVALID_PRODUCER_EPOCH, never PRODUCER_FENCED, whatever the request version.
func verifiedCode(e *kerr.Error) int16 {
	if e == kerr.ProducerFenced {
		return kerr.InvalidProducerEpoch.Code
	}
	return e.Code
}
