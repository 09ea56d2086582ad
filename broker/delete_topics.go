// DeleteTopics (key 20), versions 1-6.
//
// Topics are named by name, or by topic ID from v6. A deleted topic's batches stay in the WAL
// until no live batch shares their segments (then the segments are removed, as after
// DeleteRecords: delete_records.go); replay skips them because their topic ID is gone, and a
// topic re-created with the same name gets a new ID and starts at offset 0.
//
// Entries that name a topic ambiguously are refused with INVALID_REQUEST and that topic is
// not deleted, as Kafka 4.0's ControllerApis does: an entry with both a name and an ID, a name
// or an ID listed twice (answered once), and a name whose topic another entry gives by ID.
// Entries with neither name nor ID are INVALID_REQUEST too. Other entries are deleted.
// (Kafka shuffles the answers; klite lists them in request order, errors first.)
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(20, 1, 6, handleDeleteTopics) }

func handleDeleteTopics(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	mq := b.mutationQuota(rc, 5) // strict from v5 (quota_mutation.go)
	add := func(name *string, id [16]byte, e *kerr.Error, msg string) {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = name, id
		if e != nil {
			st.ErrorCode = e.Code
			if msg != "" && req.Version >= 5 {
				st.ErrorMessage = kmsg.StringPtr(msg)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}

	// Collect the names and IDs given, in order, counting repeats.
	var names []string
	var ids [][16]byte
	nameCount := map[string]int{}
	idCount := map[[16]byte]int{}
	addName := func(n string) {
		if nameCount[n]++; nameCount[n] == 1 {
			names = append(names, n)
		}
	}
	if req.Version >= 6 {
		for _, t := range req.Topics {
			switch {
			case t.Topic == nil && t.TopicID == [16]byte{}:
				add(nil, t.TopicID, kerr.InvalidRequest, "Neither topic name nor id were specified.")
			case t.Topic == nil:
				if idCount[t.TopicID]++; idCount[t.TopicID] == 1 {
					ids = append(ids, t.TopicID)
				}
			case t.TopicID == [16]byte{}:
				addName(*t.Topic)
			default:
				add(t.Topic, t.TopicID, kerr.InvalidRequest, "You may not specify both topic name and topic id.")
			}
		}
	} else {
		for _, n := range req.TopicNames {
			addName(n)
		}
	}
	for _, n := range names {
		if nameCount[n] > 1 {
			add(kmsg.StringPtr(n), [16]byte{}, kerr.InvalidRequest, "Duplicate topic name.")
		}
	}
	for _, id := range ids {
		if idCount[id] > 1 {
			add(nil, id, kerr.InvalidRequest, "Duplicate topic id.")
		}
	}

	// Resolve to topics; a topic reached both by ID and by name is refused. ACLs, as Kafka's
	// controller: DELETE on the cluster or the topic; a topic the principal may not DESCRIBE
	// is refused before its existence is revealed, and one named by ID keeps its name out of
	// the answer.
	clusterDelete := b.allowedCluster(rc, kmsg.ACLOperationDelete)
	mayDelete := func(t *topic) bool { return clusterDelete || b.allowedTopic(rc, kmsg.ACLOperationDelete, t.name) }
	var targets []*topic
	byID := map[[16]byte]int{} // topic ID -> index in targets
	for _, id := range ids {
		if idCount[id] > 1 {
			continue
		}
		t := b.topicByID(id)
		if t == nil {
			add(nil, id, kerr.UnknownTopicID, "")
			continue
		}
		if !mayDelete(t) {
			var name *string
			if b.allowedTopic(rc, kmsg.ACLOperationDescribe, t.name) {
				name = kmsg.StringPtr(t.name)
			}
			add(name, id, kerr.TopicAuthorizationFailed, "")
			continue
		}
		byID[t.id] = len(targets)
		targets = append(targets, t)
	}
	for _, n := range names {
		if nameCount[n] > 1 {
			continue
		}
		if !clusterDelete && !b.allowedTopic(rc, kmsg.ACLOperationDescribe, n) {
			add(kmsg.StringPtr(n), [16]byte{}, kerr.TopicAuthorizationFailed, "")
			continue
		}
		t := b.topic(n)
		if t == nil {
			add(kmsg.StringPtr(n), [16]byte{}, kerr.UnknownTopicOrPartition, "")
			continue
		}
		if !mayDelete(t) {
			add(kmsg.StringPtr(n), [16]byte{}, kerr.TopicAuthorizationFailed, "")
			continue
		}
		if i, ok := byID[t.id]; ok || idCount[t.id] > 1 {
			if ok {
				targets[i] = nil
			}
			add(kmsg.StringPtr(n), t.id, kerr.InvalidRequest, "The provided topic name maps to an ID that was already supplied.")
			continue
		}
		byID[t.id] = len(targets)
		targets = append(targets, t)
	}

	deleted := false
	for _, t := range targets {
		if t == nil {
			continue
		}
		if e, msg := b.admitMutation(mq, int32(len(t.partitions()))); e != nil {
			add(kmsg.StringPtr(t.name), t.id, e, msg)
			continue
		}
		if err := b.deleteTopic(t); err != nil {
			add(kmsg.StringPtr(t.name), t.id, err, "")
		} else {
			add(kmsg.StringPtr(t.name), t.id, nil, "")
			deleted = true
		}
	}
	if deleted {
		b.removeDeadSegments()
	}
	b.answerMutation(rc, mq, resp, 2, respond)
}
