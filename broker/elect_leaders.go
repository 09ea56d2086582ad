// ElectLeaders (key 43), versions 0-2.
//
// klite is the only replica of every partition and always its leader, so every election, preferred
// or unclean, is ELECTION_NOT_NEEDED, as Kafka answers for a partition already led by its
// preferred replica; unknown partitions get UNKNOWN_TOPIC_OR_PARTITION. A null partition list
// (every partition) is answered with every topic and the partitions elected, which on one
// broker is none.
// Needs ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED, as Kafka). A time-out of 0 or less
// is a deadline already past: REQUEST_TIMED_OUT for every partition asked, as Kafka's
// controller answers; an unknown election type is INVALID_REQUEST per partition.
package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(43, 0, 2, handleElectLeaders) }

func handleElectLeaders(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.ElectLeadersRequest)
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if !b.allowedCluster(rc, kmsg.ACLOperationAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		for _, rt := range req.Topics {
			tr := kmsg.NewElectLeadersResponseTopic()
			tr.Topic = rt.Topic
			for _, p := range rt.Partitions {
				pr := kmsg.NewElectLeadersResponseTopicPartition()
				pr.Partition, pr.ErrorCode = p, kerr.ClusterAuthorizationFailed.Code
				tr.Partitions = append(tr.Partitions, pr)
			}
			resp.Topics = append(resp.Topics, tr)
		}
		respond(resp)
		return
	}
	invalidType := req.ElectionType != 0 && req.ElectionType != 1
	if req.Topics != nil && len(req.Topics) == 0 { // nothing asked: nothing to fail, as Kafka
		respond(resp)
		return
	}
	if expired := req.TimeoutMillis <= 0; req.Topics != nil && (expired || invalidType) {
		// As Kafka's controller: a deadline already past fails every partition asked with
		// REQUEST_TIMED_OUT, an unknown election type with INVALID_REQUEST (v1+ also at the
		// top).
		code := kerr.InvalidRequest.Code
		if expired {
			code = kerr.RequestTimedOut.Code
		}
		if req.Version >= 1 {
			resp.ErrorCode = code
		}
		for _, rt := range req.Topics {
			tr := kmsg.NewElectLeadersResponseTopic()
			tr.Topic = rt.Topic
			for _, p := range rt.Partitions {
				pr := kmsg.NewElectLeadersResponseTopicPartition()
				pr.Partition, pr.ErrorCode = p, code
				tr.Partitions = append(tr.Partitions, pr)
			}
			resp.Topics = append(resp.Topics, tr)
		}
		respond(resp)
		return
	}
	if invalidType {
		resp.ErrorCode = kerr.InvalidRequest.Code
		respond(resp)
		return
	}
	if req.Topics == nil {
		// Every partition: Kafka answers each topic, listing only the partitions it
		// elected (none here, each is led by its preferred and only replica).
		b.mu.RLock()
		for name := range b.topics {
			tr := kmsg.NewElectLeadersResponseTopic()
			tr.Topic = name
			resp.Topics = append(resp.Topics, tr)
		}
		b.mu.RUnlock()
		sort.Slice(resp.Topics, func(i, j int) bool { return resp.Topics[i].Topic < resp.Topics[j].Topic })
		respond(resp)
		return
	}
	for _, rt := range req.Topics {
		tr := kmsg.NewElectLeadersResponseTopic()
		tr.Topic = rt.Topic
		t := b.topic(rt.Topic)
		for _, p := range rt.Partitions {
			pr := kmsg.NewElectLeadersResponseTopicPartition()
			pr.Partition = p
			if t == nil || p < 0 || int(p) >= len(t.partitions()) {
				pr.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				pr.ErrorCode = kerr.ElectionNotNeeded.Code
			}
			tr.Partitions = append(tr.Partitions, pr)
		}
		resp.Topics = append(resp.Topics, tr)
	}
	respond(resp)
}
