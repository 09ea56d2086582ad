// Produce (key 0), versions 0-12 advertised; only message format v2 is accepted.
//
// Versions 0-2 stay advertised because Kafka 4.0 does the same (old librdkafka releases
// probe them to enable compression); their v0/v1 message sets are refused with
// UNSUPPORTED_FOR_MESSAGE_FORMAT. Each partition's records must be exactly one RecordBatch:
// CRC-32C checked (CORRUPT_MESSAGE), header and, for uncompressed batches, every record
// validated (INVALID_RECORD), size checked against max.message.bytes (MESSAGE_TOO_LARGE).
// Compressed batches are stored exactly as received (not recompressed); klite does not
// decompress them to validate each record (Kafka does). LogAppendTime topics get the
// broker's time in the batch header (CRC recomputed) and in the response. acks=1 and
// acks=-1 are answered once the batch is fsynced (one broker: both mean "durable here");
// acks=0 gets no response, and its connection is closed when a partition fails validation
// (as Kafka does). Idempotent producers are deduplicated per partition over their last 5
// batches; see producers.go. CreateTime timestamps outside message.timestamp.before.max.ms /
// after.max.ms (default: more than an hour ahead) get INVALID_TIMESTAMP; for compressed
// batches the earliest timestamp is taken from the header's first timestamp. A failed WAL
// write gives KAFKA_STORAGE_ERROR.
package broker

import (
	"sync"
	"sync/atomic"

	"github.com/klite/klite/broker/server"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(0, 0, 12, handleProduce) }

func handleProduce(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	// ACLs (authorize.go), as Kafka: a request with transactional batches needs WRITE on its
	// transactional ID (else every partition gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED), each
	// topic WRITE (TOPIC_AUTHORIZATION_FAILED for its partitions, before the topic's existence).
	var whole *kerr.Error
	switch {
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		whole = kerr.InvalidRequiredAcks
	case b.authz != nil && hasTransactionalBatch(req) && (req.TransactionID == nil || !b.allowedTxnID(rc, kmsg.ACLOperationWrite, *req.TransactionID)):
		whole = kerr.TransactionalIDAuthorizationFailed
	}
	if whole != nil {
		if req.Acks == 0 {
			respond(server.CloseConnection)
			return
		}
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = whole.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		respond(resp)
		return
	}

	// Lay out the whole response first; each partition fills its own slot.
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	var pending atomic.Int64
	for i, rt := range req.Topics {
		resp.Topics[i] = kmsg.NewProduceResponseTopic()
		resp.Topics[i].Topic = rt.Topic
		resp.Topics[i].Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		pending.Add(int64(len(rt.Partitions)))
	}
	var once sync.Once
	finish := func() {
		if pending.Add(-1) == 0 {
			once.Do(func() {
				if req.Acks == 0 {
					return
				}
				respond(resp)
			})
		}
	}
	if pending.Load() == 0 {
		pending.Add(1)
		finish()
		if req.Acks == 0 {
			respond(nil)
		}
		return
	}
	// acks=0: nothing is sent back, but a request that fails validation closes the
	// connection (as Kafka does) so the client notices. Appends complete in the background.
	var invalid atomic.Bool
	if req.Acks == 0 {
		defer func() {
			if invalid.Load() {
				respond(server.CloseConnection)
			} else {
				respond(nil)
			}
		}()
	}
	for i, rt := range req.Topics {
		t := b.topic(rt.Topic)
		for j, rp := range rt.Partitions {
			sp := &resp.Topics[i].Partitions[j]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			fail := func(e *kerr.Error, msg string) {
				invalid.Store(true)
				sp.ErrorCode = e.Code
				if msg != "" {
					sp.ErrorMessage = kmsg.StringPtr(msg)
				}
				finish()
			}
			if !b.allowedTopic(rc, kmsg.ACLOperationWrite, rt.Topic) {
				fail(kerr.TopicAuthorizationFailed, "")
				continue
			}
			var p *partition
			if t != nil {
				p = t.partition(rp.Partition)
			}
			if p == nil {
				fail(kerr.UnknownTopicOrPartition, "")
				continue
			}
			if len(rp.Records) == 0 {
				fail(kerr.InvalidRecord, "produce request has no record batch")
				continue
			}
			h, berr := validateProduceBatch(rp.Records, t.maxMessageBytes())
			if berr != nil {
				fail(berr.err, berr.msg)
				continue
			}
			if !t.logAppendTime() {
				if berr := checkTimestamps(rp.Records, &h, b.now().UnixMilli(), t.int64Config("message.timestamp.before.max.ms"), t.int64Config("message.timestamp.after.max.ms")); berr != nil {
					fail(berr.err, berr.msg)
					continue
				}
			}
			if e := b.txnImplicitAdd(req.Version, rt.Topic, rp.Partition, &h); e != nil { // TV2
				fail(e, "")
				continue
			}
			p.append(b, rp.Records, &h, func(r appendResult) {
				if r.err != nil {
					sp.ErrorCode = r.err.Code
					if r.msg != "" {
						sp.ErrorMessage = kmsg.StringPtr(r.msg)
					}
				} else {
					sp.BaseOffset = r.base
					sp.LogAppendTime = r.logAppendTime
				}
				sp.LogStartOffset = r.logStart
				finish()
			})
		}
	}
}

// hasTransactionalBatch reports whether some partition's first batch has the transactional
// attribute (bit 4 of the attributes at byte 21 of a v2 RecordBatch).
func hasTransactionalBatch(req *kmsg.ProduceRequest) bool {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if len(rp.Records) > 22 && rp.Records[22]&0x10 != 0 {
				return true
			}
		}
	}
	return false
}
