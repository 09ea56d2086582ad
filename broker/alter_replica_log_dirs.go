// AlterReplicaLogDirs (key 34), versions 1-2.
//
// klite has one log directory (the data directory, as DescribeLogDirs reports it): moving a
// replica to it is a no-op that succeeds, any other directory is LOG_DIR_NOT_FOUND, and
// partitions that do not exist are UNKNOWN_TOPIC_OR_PARTITION. Needs ALTER on the cluster
// (CLUSTER_AUTHORIZATION_FAILED for every partition otherwise), as Kafka.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(34, 1, 2, handleAlterReplicaLogDirs) }

func handleAlterReplicaLogDirs(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.AlterReplicaLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.AlterReplicaLogDirsResponse)
	allowed := b.allowedCluster(rc, kmsg.ACLOperationAlter)
	ourDir := absDir(b.dataDir)
	// Kafka answers from a map of partition -> directory: a partition named twice is
	// answered once (for the last directory naming it), a topic without partitions not at all.
	type tp struct {
		topic string
		p     int32
	}
	var order []tp
	dirOf := map[tp]string{}
	for _, d := range req.Dirs {
		for _, rt := range d.Topics {
			for _, p := range rt.Partitions {
				k := tp{rt.Topic, p}
				if _, ok := dirOf[k]; !ok {
					order = append(order, k)
				}
				dirOf[k] = d.Dir
			}
		}
	}
	byTopic := map[string]int{}
	for _, k := range order {
		i, ok := byTopic[k.topic]
		if !ok {
			i = len(resp.Topics)
			byTopic[k.topic] = i
			tr := kmsg.NewAlterReplicaLogDirsResponseTopic()
			tr.Topic = k.topic
			resp.Topics = append(resp.Topics, tr)
		}
		t := b.topic(k.topic)
		pr := kmsg.NewAlterReplicaLogDirsResponseTopicPartition()
		pr.Partition = k.p
		switch {
		case !allowed:
			pr.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		case dirOf[k] != ourDir:
			pr.ErrorCode = kerr.LogDirNotFound.Code
		case t == nil || k.p < 0 || int(k.p) >= len(t.partitions()):
			pr.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, pr)
	}
	respond(resp)
}
