// CreatePartitions (key 37), versions 0-3.
//
// Grows a topic to Count partitions, persisted in the metadata log and visible in the next
// Metadata response. A Count at or below the current one is INVALID_PARTITIONS (with Kafka's
// messages), an unknown topic UNKNOWN_TOPIC_OR_PARTITION, a topic named twice
// INVALID_REQUEST. A manual Assignment must give one replica list per new partition, naming
// only this broker, once (else INVALID_REPLICA_ASSIGNMENT). ValidateOnly checks without
// changing anything. TimeoutMillis is not needed (nothing to wait for).
// Differences from Kafka: adding more than 10000 partitions in one request is
// INVALID_PARTITIONS (Kafka fails such a request with UNKNOWN_SERVER_ERROR), and so is growing
// a topic past maxTopicPartitions (Kafka has no such cap).
package broker

import (
	"fmt"

	"github.com/klite/klite/broker/quota"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(37, 0, 3, handleCreatePartitions) }

// maxNewPartitions caps the partitions one request may add (Kafka's controller refuses
// operations of more than 10000 records).
const maxNewPartitions = 10000

// maxTopicPartitions caps the partitions of one topic (Kafka has no such cap; its controller
// would struggle far below it). It bounds what a metadata record may make replay allocate.
const maxTopicPartitions = 200_000

func handleCreatePartitions(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	mq := b.mutationQuota(rc, 3) // strict from v3 (quota_mutation.go)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	// Duplicated topics are answered first (once each), as Kafka does.
	for _, rt := range req.Topics {
		if seen[rt.Topic] > 1 {
			seen[rt.Topic] = -1
			st := kmsg.NewCreatePartitionsResponseTopic()
			st.Topic = rt.Topic
			st.ErrorCode = kerr.InvalidRequest.Code
			st.ErrorMessage = kmsg.StringPtr("Duplicate topic name.")
			resp.Topics = append(resp.Topics, st)
		}
	}
	for _, rt := range req.Topics {
		if seen[rt.Topic] < 0 {
			continue
		}
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		if !b.allowedTopic(rc, kmsg.ACLOperationAlter, rt.Topic) { // ACLs, as Kafka
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			st.ErrorMessage = kmsg.StringPtr("The topic authorization is failed.")
		} else if e, msg := b.createPartitions(rt, req.ValidateOnly, mq); e != nil {
			st.ErrorCode = e.Code
			if msg != "" {
				st.ErrorMessage = kmsg.StringPtr(msg)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	b.answerMutation(rc, mq, resp, 1, respond)
}

func (b *Broker) createPartitions(rt kmsg.CreatePartitionsRequestTopic, validateOnly bool, mq *quota.MutationQuota) (*kerr.Error, string) {
	t := b.topic(rt.Topic)
	if t == nil {
		return kerr.UnknownTopicOrPartition, ""
	}
	cur := int32(len(t.partitions()))
	switch {
	case rt.Count == cur:
		return kerr.InvalidPartitions, fmt.Sprintf("Topic already has %d partition(s).", cur)
	case rt.Count < cur:
		return kerr.InvalidPartitions, fmt.Sprintf("The topic %s currently has %d partition(s); %d would not be an increase.", rt.Topic, cur, rt.Count)
	case rt.Count-cur > maxNewPartitions:
		return kerr.InvalidPartitions, fmt.Sprintf("Unable to add %d partitions in one request (at most %d).", rt.Count-cur, maxNewPartitions)
	case rt.Count > maxTopicPartitions:
		return kerr.InvalidPartitions, fmt.Sprintf("A topic may have at most %d partitions.", maxTopicPartitions)
	}
	if rt.Assignment != nil {
		add := rt.Count - cur
		if int32(len(rt.Assignment)) != add {
			return kerr.InvalidReplicaAssignment, fmt.Sprintf("Attempted to add %d additional partition(s), but only %d assignment(s) were specified.", add, len(rt.Assignment))
		}
	}
	// The controller mutation quota, where Kafka applies it: after the count checks, before
	// the assignment's brokers are checked (quota_mutation.go).
	if e, msg := b.admitMutation(mq, rt.Count-cur); e != nil {
		return e, msg
	}
	if rt.Assignment != nil {
		for _, a := range rt.Assignment {
			seen := map[int32]bool{}
			for _, r := range a.Replicas {
				if r != b.nodeID {
					return kerr.InvalidReplicaAssignment, fmt.Sprintf("The manual partition assignment includes broker %d, but no such broker is registered.", r)
				}
				if seen[r] {
					return kerr.InvalidReplicaAssignment, fmt.Sprintf("The manual partition assignment includes the broker %d more than once.", r)
				}
				seen[r] = true
			}
			if len(a.Replicas) == 0 {
				return kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list."
			}
		}
	}
	if validateOnly {
		return nil, ""
	}
	if e, msg := b.growPartitions(t, rt.Count); e != nil {
		return e, msg
	}
	b.log.Info("partitions created", "topic", rt.Topic, "partitions", rt.Count)
	return nil, ""
}
