// Kafka's internal topics, __consumer_offsets and __transaction_state.
//
// klite keeps committed offsets and transaction state in its own logs (meta/groups.log,
// meta/txns.log), not in these topics; but clients and tools see them on Kafka 4.0, which
// creates __consumer_offsets on the first FindCoordinator for a group and __transaction_state
// on the first for a transactional ID (offsets.topic.num.partitions and
// transaction.state.log.num.partitions partitions, 50 each by default), and lists them in
// Metadata with is_internal=true. franz-go's regex consumer skips them there; Kafka 4.0's
// broker-side (KIP-848) regex resolution matches them. So klite creates them as real, empty
// topics at the same moment, with the configs Kafka gives them, and refuses what Kafka refuses:
// producing to them (INVALID_TOPIC_EXCEPTION), deleting, creating or growing them.
package broker

import "strconv"

const (
	offsetsTopic    = "__consumer_offsets"
	txnStateTopic   = "__transaction_state"
	internalSegment = "104857600" // offsets.topic.segment.bytes, transaction.state.log.segment.bytes
)

// isInternalTopic reports whether Kafka treats the topic as internal (Topic.isInternal).
func isInternalTopic(name string) bool { return name == offsetsTopic || name == txnStateTopic }

// ensureInternalTopic creates __consumer_offsets (coordinator type 0) or __transaction_state
// (type 1) if it does not exist yet. No ACL applies: the broker creates them for itself.
func (b *Broker) ensureInternalTopic(coordinatorType int8) {
	name, parts, configs := offsetsTopic, b.cfg.OffsetsTopicPartitions, map[string]string{
		"cleanup.policy":   "compact",
		"compression.type": "producer",
		"segment.bytes":    internalSegment,
	}
	if coordinatorType == 1 {
		name, parts, configs = txnStateTopic, b.cfg.TransactionStateLogPartitions, map[string]string{
			"cleanup.policy":                 "compact",
			"compression.type":               "uncompressed",
			"min.insync.replicas":            "1",
			"segment.bytes":                  internalSegment,
			"unclean.leader.election.enable": "false",
		}
	}
	if b.topic(name) != nil {
		return
	}
	if _, kerrv, msg := b.createTopic(name, parts, configs, false, false, nil); kerrv != nil && b.topic(name) == nil {
		b.log.Error("creating internal topic failed", "topic", name, "partitions", strconv.Itoa(int(parts)), "err", kerrv, "msg", msg)
	}
}
