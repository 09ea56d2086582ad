// AlterPartitionAssignments (key 45) and ListPartitionReassignments (key 46), version 0.
//
// On one broker a partition's only possible assignment is [this broker]: asking for it is
// accepted and completes at once (no reassignment is ever in progress), any other replica set
// is INVALID_REPLICA_ASSIGNMENT, cancelling (null replicas) is NO_REASSIGNMENT_IN_PROGRESS and
// unknown partitions are UNKNOWN_TOPIC_OR_PARTITION; listing finds nothing in progress. As
// Kafka: ALTER (45) or DESCRIBE (46) on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(45, 0, 0, handleAlterPartitionAssignments)
	register(46, 0, 0, handleListPartitionReassignments)
}

func handleAlterPartitionAssignments(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	if !b.allowedCluster(rc, kmsg.ACLOperationAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		respond(resp)
		return
	}
	for _, rt := range req.Topics {
		tr := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		tr.Topic = rt.Topic
		t := b.topic(rt.Topic)
		for _, rp := range rt.Partitions {
			pr := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			pr.Partition = rp.Partition
			code, msg := b.reassignmentAnswer(t, rp)
			if code != nil {
				pr.ErrorCode = code.Code
				pr.ErrorMessage = kmsg.StringPtr(msg)
			}
			tr.Partitions = append(tr.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	respond(resp)
}

func (b *Broker) reassignmentAnswer(t *topic, rp kmsg.AlterPartitionAssignmentsRequestTopicPartition) (*kerr.Error, string) {
	if t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.partitions()) {
		return kerr.UnknownTopicOrPartition, "This server does not host this topic-partition."
	}
	if rp.Replicas == nil {
		return kerr.NoReassignmentInProgress, "No ongoing reassignment for this partition."
	}
	if len(rp.Replicas) == 0 {
		return kerr.InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list."
	}
	for i, r := range rp.Replicas {
		for _, s := range rp.Replicas[:i] {
			if s == r {
				return kerr.InvalidReplicaAssignment, "The manual partition assignment includes duplicate replicas."
			}
		}
	}
	for _, r := range rp.Replicas {
		if r != b.nodeID {
			return kerr.InvalidReplicaAssignment, fmt.Sprintf("The manual partition assignment includes broker %d, but no such broker is registered.", r)
		}
	}
	return nil, ""
}

func handleListPartitionReassignments(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.ListPartitionReassignmentsRequest)
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if !b.allowedCluster(rc, kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		respond(resp)
		return
	}
	resp.Topics = []kmsg.ListPartitionReassignmentsResponseTopic{}
	respond(resp)
}
