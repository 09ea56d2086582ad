package broker

// Response memory estimates (server.ResponseSizer): the server reserves this much of its
// build budget before dispatching a request and gives it back once the answer is encoded, so
// answers built and waiting for the response budget are bounded across connections.
//
//   - Metadata: its answer grows with the cluster (measured: 10,000 partitions make a 260 KB
//     answer whose built structs hold 0.86 MB, 0.97 MB allocated while building) and is
//     cheap to size from the topic table.
//   - Fetch: the record bytes it could return now (each partition's data from its fetch
//     offset, up to its partition max bytes, all up to the request's max bytes): a consumer
//     catching up reserves what it will read, a tailing one nearly nothing (so long polls
//     hold no budget while they wait). Once built, the answer's own record bytes replace the
//     estimate (ResponseMemory): data that arrived during a long poll is counted then, and
//     while the budget is over no connection dispatches an estimated request.

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

// fetchPartitionBytes is what a fetched partition's answer holds besides its records
// (structs, the aborted transaction list header).
const fetchPartitionBytes = 160

// ResponseEstimate implements server.ResponseSizer.
func (b *Broker) ResponseEstimate(h *server.Header, req kmsg.Request) int64 {
	switch r := req.(type) {
	case *kmsg.MetadataRequest:
		return b.metadataEstimate(r)
	case *kmsg.FetchRequest:
		return b.fetchEstimate(r)
	}
	return 0
}

// ResponseMemory implements server.ResponseSizer: what a built Fetch answer holds (0 for
// other answers: their estimate stands).
func (b *Broker) ResponseMemory(resp kmsg.Response) int64 {
	var r *kmsg.FetchResponse
	switch f := resp.(type) {
	case *kmsg.FetchResponse:
		r = f
	case *pooledFetch: // fetch_buf.go
		r = f.FetchResponse
	default:
		return 0
	}
	var n int64
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			n += fetchPartitionBytes + int64(len(r.Topics[i].Partitions[j].RecordBatches))
		}
	}
	if n < minEstimate {
		return 0
	}
	return n
}

// fetchEstimate is the record bytes r could return now. Partitions of an incremental
// session not listed in r are counted once the answer is built (ResponseMemory).
func (b *Broker) fetchEstimate(r *kmsg.FetchRequest) int64 {
	if r.MaxBytes < 0 {
		return 0 // refused per partition
	}
	total := int64(max(r.MaxBytes, 1)) // 0: the first batch alone (bytesFrom counts it whole)
	var n int64
	for i := range r.Topics {
		rt := &r.Topics[i]
		var t *topic
		if r.Version >= 13 {
			t = b.topicByID(rt.TopicID)
		} else {
			t = b.topic(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			n += fetchPartitionBytes
			if t == nil || rp.PartitionMaxBytes < 0 || n >= total {
				continue
			}
			if p := t.partition(rp.Partition); p != nil {
				c := min(int64(max(rp.PartitionMaxBytes, 1)), total-n)
				n += min(p.bytesFrom(rp.FetchOffset, c), c)
			}
		}
	}
	if n = min(n, total+fetchPartitionBytes*int64(len(r.Topics))); n < minEstimate {
		return 0
	}
	return n
}

// metadataEstimate is what the Metadata answer to r will hold.
func (b *Broker) metadataEstimate(r *kmsg.MetadataRequest) int64 {
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
