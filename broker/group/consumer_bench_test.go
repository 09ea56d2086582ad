package group

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkConsumerGroupJoin100 joins 100 members to one consumer group over a 100-partition
// topic and reconciles them all to the final target (every member heartbeating with what it
// owns until the group is stable): the coordinator's cost of a full group formation.
func BenchmarkConsumerGroupJoin100(b *testing.B) {
	for i := 0; i < b.N; i++ {
		h := newHarness(b, Config{TopicInfo: func(name string) (TopicInfo, bool) {
			return TopicInfo{ID: topicID(name), Partitions: 100}, name == "t"
		}, TopicNameByID: func(id [16]byte) (string, bool) { return "t", id == topicID("t") }})
		type mem struct {
			id    string
			epoch int32
			owned []int32
		}
		ms := make([]*mem, 100)
		send := func(m *mem, join bool) *kmsg.ConsumerGroupHeartbeatResponse {
			req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
			req.Version = 1
			req.Group, req.MemberID, req.MemberEpoch = "cg", m.id, m.epoch
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: topicID("t"), Partitions: m.owned}}
			if join {
				req.MemberEpoch, req.RebalanceTimeoutMillis, req.SubscribedTopicNames = 0, 30000, []string{"t"}
				req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
			}
			ch := make(chan *kmsg.ConsumerGroupHeartbeatResponse, 1)
			h.c.ConsumerGroupHeartbeat(Client{Version: 1}, req, func(r *kmsg.ConsumerGroupHeartbeatResponse) { ch <- r })
			r := <-ch
			if r.ErrorCode != 0 {
				b.Fatalf("heartbeat: %d", r.ErrorCode)
			}
			m.epoch = r.MemberEpoch
			if r.Assignment != nil {
				m.owned = nil
				for _, tp := range r.Assignment.Topics {
					m.owned = append(m.owned, tp.Partitions...)
				}
			}
			return r
		}
		for j := range ms {
			ms[j] = &mem{id: fmt.Sprintf("member-%03d", j)}
			send(ms[j], true)
		}
		for round := 0; ; round++ {
			if round > 20 {
				b.Fatal("group did not settle in 20 rounds")
			}
			for _, m := range ms {
				send(m, false)
			}
			if h.cgDescribe("cg").State == "Stable" {
				break
			}
		}
		h.c.Close()
	}
}
