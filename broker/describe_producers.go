// DescribeProducers (key 61), version 0.
//
// Lists each partition's active producers (those whose idempotence state is kept): producer
// ID, epoch, last sequence and the first offset of its open transaction (-1 if none).
// Differences from Kafka: LastTimestamp is the broker time of the producer's last append
// rather than the batch's max timestamp, and CoordinatorEpoch is always 0 (klite's
// coordinator epoch never changes).
package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(61, 0, 0, handleDescribeProducers) }

func handleDescribeProducers(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		for _, idx := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = idx
			p, e := b.partition(rt.Topic, idx)
			if !b.allowedTopic(rc, kmsg.ACLOperationRead, rt.Topic) {
				e = kerr.TopicAuthorizationFailed // ACLs, as Kafka
			}
			if e != nil {
				sp.ErrorCode = e.Code
			} else {
				sp.ActiveProducers = p.activeProducers()
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	respond(resp)
}

// activeProducers describes the partition's producers, sorted by producer ID.
func (p *partition) activeProducers() []kmsg.DescribeProducersResponseTopicPartitionActiveProducer {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := []kmsg.DescribeProducersResponseTopicPartitionActiveProducer{}
	seen := map[int64]bool{}
	add := func(pid int64, ps *producerState) {
		ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
		ap.ProducerID, ap.LastSequence, ap.LastTimestamp, ap.CurrentTxnStartOffset = pid, -1, -1, p.openTxnFirstLocked(pid)
		if ps != nil {
			ap.ProducerEpoch = int32(ps.epoch)
			ap.LastTimestamp = ps.lastSeen
			if n := len(ps.batches); n > 0 {
				ap.LastSequence = ps.batches[n-1].lastSeq
			}
		}
		out = append(out, ap)
		seen[pid] = true
	}
	for pid, ps := range p.producers {
		add(pid, ps)
	}
	for pid := range p.txn.open {
		if !seen[pid] {
			add(pid, nil)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}
