// Metadata (key 3), versions 0-13.
//
// klite is one broker: it is every partition's leader (leader epoch 0) and the only replica,
// and it reports itself as the controller. Unknown topics are created when
// --auto-create-topics is on and the request allows it (v4+ AllowAutoTopicCreation), with
// --default-partitions partitions; otherwise they get UNKNOWN_TOPIC_OR_PARTITION (or
// UNKNOWN_TOPIC_ID when named by ID). Differences from Kafka: an auto-created topic is
// returned ready in the same response instead of LEADER_NOT_AVAILABLE; authorized
// operations are not computed (reported as unknown). A topic named twice is answered once.
package broker

import (
	"sort"

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
			resp.Topics = append(resp.Topics, b.metadataTopic(t))
		}
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
			resp.Topics = append(resp.Topics, b.metadataTopic(t))
			continue
		}
		name := *rt.Topic
		t := b.topic(name)
		if t == nil && autoCreate {
			var kerrv *kerr.Error
			t, kerrv, _ = b.createTopic(name, -1, nil, false)
			if kerrv == kerr.TopicAlreadyExists {
				t, kerrv = b.topic(name), nil
			}
			if kerrv != nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = kmsg.StringPtr(name)
				mt.ErrorCode = kerrv.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
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
		resp.Topics = append(resp.Topics, b.metadataTopic(t))
	}
	respond(resp)
}

func (b *Broker) metadataTopic(t *topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(t.name)
	mt.TopicID = t.id
	for i := range t.partitions() {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(i)
		mp.Leader = b.nodeID
		mp.LeaderEpoch = 0
		mp.Replicas = []int32{b.nodeID}
		mp.ISR = []int32{b.nodeID}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
