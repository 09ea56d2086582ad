// DeleteTopics (key 20), versions 1-6.
//
// Topics are named by name, or by topic ID from v6. A deleted topic's batches stay in the WAL
// until no live batch shares their segments (then the segments are removed, as after
// DeleteRecords: delete_records.go); replay skips them because their topic ID is gone, and a
// topic re-created with the same name gets a new ID and starts at offset 0.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(20, 1, 6, handleDeleteTopics) }

func handleDeleteTopics(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			targets = append(targets, target{name: kmsg.StringPtr(n)})
		}
	}
	deleted := false
	clusterDelete := b.allowedCluster(rc, kmsg.ACLOperationDelete)
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		// ACLs, as Kafka's controller: DELETE on the cluster or the topic; a topic the
		// principal may not DESCRIBE is refused before its existence is revealed, and one
		// named by ID keeps its name out of the answer.
		var t *topic
		if tg.name != nil {
			if !clusterDelete && !b.allowedTopic(rc, kmsg.ACLOperationDescribe, *tg.name) {
				st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if t = b.topic(*tg.name); t == nil {
				st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else if !clusterDelete && !b.allowedTopic(rc, kmsg.ACLOperationDelete, t.name) {
				st.ErrorCode, t = kerr.TopicAuthorizationFailed.Code, nil
			}
		} else if t = b.topicByID(tg.id); t == nil {
			st.ErrorCode = kerr.UnknownTopicID.Code
		} else if !clusterDelete && !b.allowedTopic(rc, kmsg.ACLOperationDelete, t.name) {
			if !b.allowedTopic(rc, kmsg.ACLOperationDescribe, t.name) {
				st.Topic = nil
			} else {
				st.Topic = kmsg.StringPtr(t.name)
			}
			st.ErrorCode, t = kerr.TopicAuthorizationFailed.Code, nil
		}
		if t != nil {
			st.Topic, st.TopicID = kmsg.StringPtr(t.name), t.id
			if err := b.deleteTopic(t); err != nil {
				st.ErrorCode = err.Code
			} else {
				deleted = true
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if deleted {
		b.removeDeadSegments()
	}
	respond(resp)
}
