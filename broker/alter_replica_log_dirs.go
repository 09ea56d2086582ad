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
	byTopic := map[string]int{}
	for _, d := range req.Dirs {
		for _, rt := range d.Topics {
			i, ok := byTopic[rt.Topic]
			if !ok && len(rt.Partitions) > 0 { // as Kafka, which answers by partition: a topic without partitions is left out
				i = len(resp.Topics)
				byTopic[rt.Topic] = i
				tr := kmsg.NewAlterReplicaLogDirsResponseTopic()
				tr.Topic = rt.Topic
				resp.Topics = append(resp.Topics, tr)
			}
			t := b.topic(rt.Topic)
			for _, p := range rt.Partitions {
				pr := kmsg.NewAlterReplicaLogDirsResponseTopicPartition()
				pr.Partition = p
				switch {
				case !allowed:
					pr.ErrorCode = kerr.ClusterAuthorizationFailed.Code
				case d.Dir != ourDir:
					pr.ErrorCode = kerr.LogDirNotFound.Code
				case t == nil || p < 0 || int(p) >= len(t.partitions()):
					pr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				}
				resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, pr)
			}
		}
	}
	respond(resp)
}
