package broker

// Response memory estimates (server.ResponseSizer): the server reserves this much of its
// build budget before dispatching a request and gives it back once the answer is encoded, so
// answers built and waiting for the response budget are bounded across connections. Only
// Metadata is estimated: its answer grows with the cluster (measured: 10,000 partitions make a
// 260 KB answer whose built structs hold 0.86 MB, 0.97 MB allocated while building) and is
// cheap to size from the topic table. Fetch answers
// are bounded by each request's own max bytes and one answer per connection.

import (
	"github.com/klite/klite/broker/server"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Memory of a built Metadata answer (kmsg structs; TestMetadataResponseEstimate checks it
// against what a built answer holds): per topic its struct, name and slice headers; per
// partition its struct and the replica and ISR slices of one broker.
const (
	metaTopicBytes     = 256
	metaPartitionBytes = 96
	// minEstimate: smaller answers are not worth the budget's lock.
	minEstimate = 32 << 10
)

// ResponseEstimate implements server.ResponseSizer.
func (b *Broker) ResponseEstimate(h *server.Header, req kmsg.Request) int64 {
	r, ok := req.(*kmsg.MetadataRequest)
	if !ok {
		return 0
	}
	size := func(t *topic) int64 {
		return metaTopicBytes + int64(len(t.name)) + metaPartitionBytes*int64(len(t.partitions()))
	}
	var n int64
	b.mu.RLock()
	if r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0) {
		for _, t := range b.topics {
			n += size(t)
		}
	} else {
		for _, rt := range r.Topics {
			var t *topic
			if rt.Topic != nil {
				t = b.topics[*rt.Topic]
			} else {
				t = b.topicsByID[rt.TopicID]
			}
			if t != nil {
				n += size(t)
			} else {
				n += metaTopicBytes + metaPartitionBytes*int64(max(b.cfg.DefaultPartitions, 1)) // may be auto-created
			}
		}
	}
	b.mu.RUnlock()
	if n < minEstimate {
		return 0
	}
	return n
}
