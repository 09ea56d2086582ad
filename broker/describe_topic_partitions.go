// DescribeTopicPartitions (key 75), version 0: Kafka 4.0's kafka-topics --describe and the Java
// admin client's describeTopics use it instead of Metadata.
//
// As Kafka's DescribeTopicPartitionsRequestHandler: no topics asked means every topic; topics
// are answered in name order from the cursor's topic on (the cursor's topic must be among the
// topics asked and its partition not negative, else INVALID_REQUEST), the cursor's topic from its partition index; at most
// min(ResponsePartitionLimit, 2000) partitions are returned (Kafka's
// max.request.partition.size.limit; at least one) and NextCursor points at the first one left out. A named
// topic the principal may not DESCRIBE gets TOPIC_AUTHORIZATION_FAILED (after the others, with
// no topic ID); unknown names get UNKNOWN_TOPIC_OR_PARTITION or INVALID_TOPIC_EXCEPTION.
// klite is every partition's leader (epoch 0) and only replica.
package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxDescribePartitions is Kafka's max.request.partition.size.limit default.
const maxDescribePartitions = 2000

func init() { register(75, 0, 0, handleDescribeTopicPartitions) }

func handleDescribeTopicPartitions(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DescribeTopicPartitionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	all := len(req.Topics) == 0
	cursorTopic := ""
	if req.Cursor != nil {
		cursorTopic = req.Cursor.Topic
	}

	var names []string
	seen := map[string]bool{}
	if all {
		b.mu.RLock()
		for name := range b.topics {
			if name >= cursorTopic {
				names = append(names, name)
			}
		}
		b.mu.RUnlock()
	} else {
		for _, rt := range req.Topics {
			if rt.Topic >= cursorTopic && !seen[rt.Topic] {
				seen[rt.Topic] = true
				names = append(names, rt.Topic)
			}
		}
		if req.Cursor != nil && (!seen[req.Cursor.Topic] || req.Cursor.Partition < 0) {
			// Kafka throws InvalidRequestException: every topic asked carries the error.
			for _, rt := range req.Topics {
				t := kmsg.NewDescribeTopicPartitionsResponseTopic()
				t.Topic = kmsg.StringPtr(rt.Topic)
				t.ErrorCode = kerr.InvalidRequest.Code
				resp.Topics = append(resp.Topics, t)
			}
			respond(resp)
			return
		}
	}
	sort.Strings(names)

	var denied []kmsg.DescribeTopicPartitionsResponseTopic
	authorized := names[:0:0]
	for _, name := range names {
		if b.allowedTopic(rc, kmsg.ACLOperationDescribe, name) {
			authorized = append(authorized, name)
		} else if !all {
			t := kmsg.NewDescribeTopicPartitionsResponseTopic()
			t.Topic = kmsg.StringPtr(name)
			t.ErrorCode = kerr.TopicAuthorizationFailed.Code
			denied = append(denied, t)
		}
	}
	first := int32(0)
	if cursorTopic != "" && b.allowedTopic(rc, kmsg.ACLOperationDescribe, cursorTopic) {
		first = req.Cursor.Partition
	}

	// Kafka 4.0 returns at least one partition whatever the limit asked.
	remaining := max(1, min(int32(maxDescribePartitions), req.ResponsePartitionLimit))
	for _, name := range authorized {
		if remaining <= 0 {
			if remaining == 0 {
				c := kmsg.NewDescribeTopicPartitionsResponseNextCursor()
				c.Topic, c.Partition = name, 0
				resp.NextCursor = &c
			}
			break
		}
		start := int32(0)
		if name == cursorTopic {
			start = first
		}
		tr := kmsg.NewDescribeTopicPartitionsResponseTopic()
		tr.Topic = kmsg.StringPtr(name)
		t := b.topic(name)
		if t == nil {
			if all {
				continue
			}
			tr.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if _, ok := validTopicName(name); !ok {
				tr.ErrorCode = kerr.InvalidTopicException.Code
			}
			tr.AuthorizedOperations = b.authorizedOps(rc, kmsg.ACLResourceTypeTopic, name)
			resp.Topics = append(resp.Topics, tr)
			continue
		}
		tr.TopicID = t.id
		tr.IsInternal = isInternalTopic(name)
		n := int32(len(t.partitions()))
		upper := min(n, start+remaining)
		for i := start; i < upper; i++ {
			p := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
			p.Partition = i
			p.LeaderID = b.nodeID
			p.LeaderEpoch = 0
			p.Replicas = []int32{b.nodeID}
			p.ISR = []int32{b.nodeID}
			p.EligibleLeaderReplicas, p.LastKnownELR, p.OfflineReplicas = []int32{}, []int32{}, []int32{}
			tr.Partitions = append(tr.Partitions, p)
		}
		tr.AuthorizedOperations = b.authorizedOps(rc, kmsg.ACLResourceTypeTopic, name)
		resp.Topics = append(resp.Topics, tr)
		if upper < n {
			c := kmsg.NewDescribeTopicPartitionsResponseNextCursor()
			c.Topic, c.Partition = name, upper
			resp.NextCursor = &c
			break
		}
		if upper > start {
			remaining -= upper - start
		}
	}
	resp.Topics = append(resp.Topics, denied...)
	respond(resp)
}
