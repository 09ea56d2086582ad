// CreateTopics (key 19), versions 2-7.
//
// Names follow Kafka's rules (ASCII alphanumerics, '.', '_', '-', at most 249 characters, not
// "." or ".."). The replication factor must be 1 or -1 (one broker); NumPartitions -1 takes
// --default-partitions. A manual replica assignment decides the partition count and may name
// only this broker. Configs are validated as Kafka validates them (unknown names, types,
// ranges: INVALID_CONFIG) and stored as given; the v5+ response lists every topic config
// with its source, as DescribeConfigs does.
package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(19, 2, 7, handleCreateTopics) }

func handleCreateTopics(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	clusterCreate := b.allowedCluster(rc, kmsg.ACLOperationCreate)
	var denied []kmsg.CreateTopicsResponseTopic
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		fail := func(e *kerr.Error, msg string) {
			st.ErrorCode = e.Code
			if msg != "" {
				st.ErrorMessage = kmsg.StringPtr(msg)
			}
			resp.Topics = append(resp.Topics, st)
		}
		if seen[rt.Topic] > 1 {
			fail(kerr.InvalidRequest, "create topics request contains duplicate topic "+rt.Topic)
			continue
		}
		if !clusterCreate && !b.allowedTopic(rc, kmsg.ACLOperationCreate, rt.Topic) {
			// ACLs, as Kafka's controller: CREATE on the cluster or the topic; refused
			// topics are answered after the others.
			st.ErrorCode, st.ErrorMessage = kerr.TopicAuthorizationFailed.Code, kmsg.StringPtr("Authorization failed.")
			denied = append(denied, st)
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
			} else {
				fail(kerr.InvalidReplicationFactor, fmt.Sprintf("Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only 1 broker(s) are registered.", rt.ReplicationFactor, rt.ReplicationFactor))
			}
			continue
		}
		configs := map[string]string{}
		for _, c := range rt.Configs {
			if c.Value != nil {
				configs[c.Name] = *c.Value
			}
		}
		t, kerrv, msg := b.createTopic(rt.Topic, partitions, configs, req.ValidateOnly)
		if kerrv != nil {
			fail(kerrv, msg)
			continue
		}
		st.TopicID = t.id
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
	resp.Topics = append(resp.Topics, denied...)
	respond(resp)
}
