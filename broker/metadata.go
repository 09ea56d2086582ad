// Metadata (key 3), versions 0-13.
//
// klite is one broker: it is every partition's leader (leader epoch 0) and the only replica,
// and it reports itself as the controller. Unknown topics are created when
// --auto-create-topics is on and the request allows it (v4+ AllowAutoTopicCreation), with
// --default-partitions partitions; otherwise they get UNKNOWN_TOPIC_OR_PARTITION (or
// UNKNOWN_TOPIC_ID when named by ID). With ACLs, as Kafka: the all-topics form hides topics
// the principal may not DESCRIBE; a named topic it may not DESCRIBE gets
// TOPIC_AUTHORIZATION_FAILED whether or not it exists; auto-creation needs CREATE on the
// cluster or the topic (TOPIC_AUTHORIZATION_FAILED otherwise). Authorized operations (topic
// v8+, cluster v8-10) are filled when asked: every supported operation without ACLs.
// As Kafka 4.0, the request that auto-creates a topic gets UNKNOWN_TOPIC_OR_PARTITION for it
// with no partitions (the topic exists for the next request). A topic named twice is answered
// once. Kafka's internal topics
// (internal_topics.go) carry is_internal=true.
package broker

import (
	"sort"

	"github.com/klite/klite/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(3, 0, 13, handleMetadata) }

func handleMetadata(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	br := kmsg.NewMetadataResponseBroker()
	br.NodeID, br.Host, br.Port = b.nodeID, b.advHost, b.advPort
	resp.Brokers = append(resp.Brokers, br)
	cid := b.clusterID
	resp.ClusterID = &cid
	resp.ControllerID = b.nodeID
	if req.IncludeClusterAuthorizedOperations && req.Version >= 8 && req.Version <= 10 {
		resp.AuthorizedOperations = b.authorizedOps(rc, kmsg.ACLResourceTypeCluster, acl.ClusterName)
	}
	topicResp := func(t *topic) kmsg.MetadataResponseTopic {
		mt := b.metadataTopic(t)
		if req.IncludeTopicAuthorizedOperations && req.Version >= 8 {
			mt.AuthorizedOperations = b.authorizedOps(rc, kmsg.ACLResourceTypeTopic, t.name)
		}
		return mt
	}
	// As Kafka, topics denied CREATE and then those denied DESCRIBE follow the others.
	var createDenied, describeDenied []kmsg.MetadataResponseTopic
	denied := func(list *[]kmsg.MetadataResponseTopic, mt kmsg.MetadataResponseTopic) {
		mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
		*list = append(*list, mt)
	}

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		b.mu.RLock()
		ts := make([]*topic, 0, len(b.topics))
		for _, t := range b.topics {
			ts = append(ts, t)
		}
		b.mu.RUnlock()
		sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
		for _, t := range ts {
			if b.allowedTopic(rc, kmsg.ACLOperationDescribe, t.name) {
				resp.Topics = append(resp.Topics, topicResp(t))
			}
		}
		respond(resp)
		return
	}
	if req.Version < 12 && metadataNeedsIDs(req) {
		// v10-v11 carry topic IDs and nullable names on the wire but Kafka refuses to use
		// them: INVALID_REQUEST for every topic, no brokers, no controller.
		resp.Brokers, resp.ControllerID = nil, -1
		for _, rt := range req.Topics {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID, mt.ErrorCode = rt.Topic, rt.TopicID, kerr.InvalidRequest.Code
			resp.Topics = append(resp.Topics, mt)
		}
		respond(resp)
		return
	}
	if req.Version >= 12 && metadataHasIDs(req) {
		// As Kafka: once any topic ID is given, the request is answered by ID only (names
		// are ignored): unknown IDs first, with no name, then the known topics.
		var known []kmsg.MetadataResponseTopic
		seen := map[[16]byte]bool{}
		for _, rt := range req.Topics {
			if rt.TopicID == ([16]byte{}) || seen[rt.TopicID] {
				continue
			}
			seen[rt.TopicID] = true
			t := b.topicByID(rt.TopicID)
			switch {
			case t == nil:
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID, mt.ErrorCode = rt.TopicID, kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
			case !b.allowedTopic(rc, kmsg.ACLOperationDescribe, t.name):
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				denied(&describeDenied, mt)
			default:
				known = append(known, topicResp(t))
			}
		}
		resp.Topics = append(append(resp.Topics, known...), describeDenied...)
		respond(resp)
		return
	}
	autoCreate := b.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	// Kafka answers the set of names and IDs asked for: a topic listed twice is answered once.
	seenName := map[string]bool{}
	seenID := map[[16]byte]bool{}
	for _, rt := range req.Topics {
		if rt.Topic != nil {
			if seenName[*rt.Topic] {
				continue
			}
			seenName[*rt.Topic] = true
		} else {
			if seenID[rt.TopicID] {
				continue
			}
			seenID[rt.TopicID] = true
		}
		if rt.Topic == nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.TopicID = rt.TopicID
			t := b.topicByID(rt.TopicID)
			if t == nil {
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			if !b.allowedTopic(rc, kmsg.ACLOperationDescribe, t.name) {
				denied(&describeDenied, mt)
				continue
			}
			resp.Topics = append(resp.Topics, topicResp(t))
			continue
		}
		name := *rt.Topic
		if !b.allowedTopic(rc, kmsg.ACLOperationDescribe, name) {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = kmsg.StringPtr(name)
			denied(&describeDenied, mt)
			continue
		}
		t := b.topic(name)
		if t == nil && autoCreate && !b.allowedCluster(rc, kmsg.ACLOperationCreate) && !b.allowedTopic(rc, kmsg.ACLOperationCreate, name) {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = kmsg.StringPtr(name)
			denied(&createDenied, mt)
			continue
		}
		if t == nil && autoCreate {
			// Created now; answered as Kafka 4.0 answers the request that starts the creation
			// (its controller creates the topic in the background): UNKNOWN_TOPIC_OR_PARTITION
			// with no partitions. Clients retry and find the topic on their next request.
			var kerrv *kerr.Error
			if isInternalTopic(name) { // as Kafka's AutoTopicCreationManager: as its coordinator does
				b.ensureInternalTopic(map[bool]int8{false: 0, true: 1}[name == txnStateTopic])
			} else if _, kerrv, _ = b.createTopic(name, -1, nil, false, true, nil); kerrv == kerr.TopicAlreadyExists {
				kerrv = nil
			}
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = kmsg.StringPtr(name)
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if kerrv != nil {
				mt.ErrorCode = kerrv.Code
			}
			if req.IncludeTopicAuthorizedOperations && req.Version >= 8 {
				mt.AuthorizedOperations = b.authorizedOps(rc, kmsg.ACLResourceTypeTopic, name)
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if t == nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = kmsg.StringPtr(name)
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if _, ok := validTopicName(name); !ok {
				mt.ErrorCode = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, topicResp(t))
	}
	resp.Topics = append(append(resp.Topics, createDenied...), describeDenied...)
	respond(resp)
}

func (b *Broker) metadataTopic(t *topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(t.name)
	mt.TopicID = t.id
	mt.IsInternal = isInternalTopic(t.name)
	// Sized once, and one replica list shared by every partition (encoding only reads it):
	// a topic of many partitions is built with no allocation per partition, and the built
	// answer, held until it is encoded, is what the server's build budget reserved
	// (response_estimate.go).
	parts := t.partitions()
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(parts))
	one := []int32{b.nodeID}
	for i := range parts {
		mp := &mt.Partitions[i]
		mp.Default()
		mp.Partition = int32(i)
		mp.Leader = b.nodeID
		mp.LeaderEpoch = 0
		mp.Replicas = one
		mp.ISR = one
	}
	return mt
}

// metadataHasIDs reports whether the request names any topic by a (non-zero) topic ID.
func metadataHasIDs(req *kmsg.MetadataRequest) bool {
	for _, rt := range req.Topics {
		if rt.TopicID != ([16]byte{}) {
			return true
		}
	}
	return false
}

// metadataNeedsIDs reports whether the request names a topic by ID or without a name.
func metadataNeedsIDs(req *kmsg.MetadataRequest) bool {
	for _, rt := range req.Topics {
		if rt.Topic == nil {
			return true
		}
	}
	return metadataHasIDs(req)
}
