// CreateTopics (key 19), versions 2-7.
//
// Names follow Kafka's rules (ASCII alphanumerics, '.', '_', '-', at most 249 characters, not
// "." or ".."). The replication factor must be 1 or -1 (one broker); NumPartitions -1 takes
// --default-partitions. A manual replica assignment decides the partition count and may name
// only this broker. Configs are validated as Kafka validates them (unknown names, types,
// ranges: INVALID_CONFIG) and stored as given; the v5+ response lists every topic config
// with its source, as DescribeConfigs does.
//
// As Kafka 4.0 (ControllerApis, ReplicationControlManager): a name listed more than once is
// left out and answered once, INVALID_REQUEST "Duplicate topic name.", after the other
// topics; if the remaining topics add up to more than 10000 partitions (NumPartitions, the
// default for -1, or the assignment count) the whole request fails with POLICY_VIOLATION on
// every requested row and nothing is created; a config with a null value is INVALID_CONFIG; a
// name equal to an existing topic's once '.' and '_' are treated alike is
// INVALID_TOPIC_EXCEPTION (their metric names would collide). Kafka checks that against the
// topics existing before the request only, so `a.b` and `a_b` in one request are both
// created (ReplicationControlManager.validateNewTopicNames).
package broker

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(19, 2, 7, handleCreateTopics) }

func handleCreateTopics(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	mq := b.mutationQuota(rc, 6) // strict from v6 (quota_mutation.go)
	admit := func(n int32) (*kerr.Error, string) { return b.admitMutation(mq, n) }
	seen := map[string]int{}
	var dups []string
	var total int64 // Kafka sums in an int that can wrap; klite does not let it
	for _, rt := range req.Topics {
		if seen[rt.Topic]++; seen[rt.Topic] == 2 {
			dups = append(dups, rt.Topic)
		}
	}
	for _, rt := range req.Topics {
		if seen[rt.Topic] > 1 {
			continue
		}
		switch {
		case len(rt.ReplicaAssignment) > 0:
			total += int64(len(rt.ReplicaAssignment))
		case rt.NumPartitions == -1:
			total += int64(b.cfg.DefaultPartitions)
		case rt.NumPartitions > 0:
			total += int64(rt.NumPartitions)
		}
	}
	if total > maxNewPartitions {
		for _, rt := range req.Topics {
			st := newCreateTopicsRow(rt.Topic)
			st.ErrorCode = kerr.PolicyViolation.Code
			st.ErrorMessage = kmsg.StringPtr("Excessively large number of partitions per request.")
			resp.Topics = append(resp.Topics, st)
		}
		respond(resp)
		return
	}
	collisions := map[string]string{}
	b.mu.Lock()
	for _, rt := range req.Topics {
		if _, exists := b.topics[rt.Topic]; !exists && seen[rt.Topic] == 1 {
			if other := b.collidingTopicLocked(rt.Topic); other != "" {
				collisions[rt.Topic] = other
			}
		}
	}
	b.mu.Unlock()
	clusterCreate := b.allowedCluster(rc, kmsg.ACLOperationCreate)
	var denied []kmsg.CreateTopicsResponseTopic
	for _, rt := range req.Topics {
		if seen[rt.Topic] > 1 {
			continue // answered once below
		}
		st := newCreateTopicsRow(rt.Topic)
		if !clusterCreate && !b.allowedTopic(rc, kmsg.ACLOperationCreate, rt.Topic) {
			// ACLs, as Kafka's controller: CREATE on the cluster or the topic; refused
			// topics are answered last, after the duplicates.
			st.ErrorCode, st.ErrorMessage = kerr.TopicAuthorizationFailed.Code, kmsg.StringPtr("Authorization failed.")
			denied = append(denied, st)
			continue
		}
		fail := func(e *kerr.Error, msg string) {
			st.ErrorCode = e.Code
			if msg != "" {
				st.ErrorMessage = kmsg.StringPtr(msg)
			}
			resp.Topics = append(resp.Topics, st)
		}
		// Kafka's controller checks, in order: the name, the topic's existence, the configs
		// of every topic, and only then partitions, replication factor and assignments.
		if msg, ok := validTopicName(rt.Topic); !ok {
			fail(kerr.InvalidTopicException, msg)
			continue
		}
		if other, ok := collisions[rt.Topic]; ok { // a name error, before the others
			fail(kerr.InvalidTopicException, collisionMessage(rt.Topic, other))
			continue
		}
		if b.topic(rt.Topic) != nil {
			fail(kerr.TopicAlreadyExists, "Topic '"+rt.Topic+"' already exists.")
			continue
		}
		configs := map[string]string{}
		var nullConfigs []string
		for _, c := range rt.Configs {
			if c.Value == nil {
				nullConfigs = append(nullConfigs, c.Name)
			} else {
				configs[c.Name] = *c.Value
			}
		}
		if len(nullConfigs) > 0 {
			fail(kerr.InvalidConfig, "Null value not supported for topic configs: "+strings.Join(nullConfigs, ","))
			continue
		}
		if msg, ok := checkTopicConfigs(configs); !ok {
			fail(kerr.InvalidConfig, msg)
			continue
		}
		partitions := rt.NumPartitions
		if len(rt.ReplicaAssignment) > 0 {
			if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
				fail(kerr.InvalidRequest, "both numPartitions or replicationFactor and replicasAssignments were set; both cannot be used at the same time")
				continue
			}
			partitions = int32(len(rt.ReplicaAssignment))
			bad := false
			for i, a := range rt.ReplicaAssignment {
				if a.Partition != int32(i) || len(a.Replicas) != 1 || a.Replicas[0] != b.nodeID {
					bad = true
				}
			}
			if bad {
				fail(kerr.InvalidReplicaAssignment, fmt.Sprintf("replica assignments must list partitions 0..n-1 each on broker %d only", b.nodeID))
				continue
			}
		} else if rt.ReplicationFactor != -1 && rt.ReplicationFactor != 1 {
			if rt.ReplicationFactor <= 0 {
				fail(kerr.InvalidReplicationFactor, "replication factor must be larger than 0, or -1 to use the default value")
			} else if rt.NumPartitions == 0 || rt.NumPartitions < -1 {
				// A valid factor the cluster cannot reach comes out of the placement, after
				// the partition count was checked (Kafka's controller).
				fail(kerr.InvalidPartitions, "number of partitions must be larger than 0")
			} else {
				fail(kerr.InvalidReplicationFactor, fmt.Sprintf("Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only 1 broker(s) are registered.", rt.ReplicationFactor, rt.ReplicationFactor))
			}
			continue
		}
		t, kerrv, msg := b.createTopic(rt.Topic, partitions, configs, req.ValidateOnly, false, admit)
		if kerrv != nil {
			fail(kerrv, msg)
			continue
		}
		st.TopicID = t.id
		if req.ValidateOnly {
			// Kafka's controller draws the ID before it stops at validate_only, and answers it
			// (an ID nothing keeps).
			st.TopicID = newUUID()
		}
		st.NumPartitions = int32(len(t.partitions()))
		st.ReplicationFactor = 1
		if !b.allowedTopic(rc, kmsg.ACLOperationDescribeConfigs, t.name) {
			st.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code // ACLs, as Kafka
			st.NumPartitions, st.ReplicationFactor = -1, -1
			resp.Topics = append(resp.Topics, st)
			continue
		}
		for _, c := range b.topicConfigResources(t.configs(), nil, false) { // as DescribeConfigs
			rc := kmsg.NewCreateTopicsResponseTopicConfig()
			rc.Name, rc.Value, rc.Source, rc.ReadOnly, rc.IsSensitive = c.Name, c.Value, int8(c.Source), c.ReadOnly, c.IsSensitive
			st.Configs = append(st.Configs, rc)
		}
		resp.Topics = append(resp.Topics, st)
	}
	for _, name := range dups {
		st := newCreateTopicsRow(name)
		st.ErrorCode = kerr.InvalidRequest.Code
		st.ErrorMessage = kmsg.StringPtr("Duplicate topic name.")
		resp.Topics = append(resp.Topics, st)
	}
	resp.Topics = append(resp.Topics, denied...)
	b.answerMutation(rc, mq, resp, 3, respond)
}

// newCreateTopicsRow is an answer row with Kafka's defaults: an empty (not null) config list,
// which error rows keep.
func newCreateTopicsRow(name string) kmsg.CreateTopicsResponseTopic {
	st := kmsg.NewCreateTopicsResponseTopic()
	st.Topic = name
	st.Configs = []kmsg.CreateTopicsResponseTopicConfig{}
	return st
}
