// Produce (key 0), versions 0-12 advertised; only message format v2 is accepted.
//
// Versions 0-2 stay advertised because Kafka 4.0 does the same (old librdkafka releases
// probe them to enable compression); their v0/v1 message sets are refused with
// UNSUPPORTED_FOR_MESSAGE_FORMAT. Each partition's records must be exactly one RecordBatch:
// CRC-32C checked (CORRUPT_MESSAGE), header and every record validated (INVALID_RECORD),
// compressed payloads decompressed once as a stream to do so (a payload the codec cannot
// decode: UNKNOWN_SERVER_ERROR, as Kafka), size checked against max.message.bytes
// (MESSAGE_TOO_LARGE); the codes and their order follow Kafka 4.0 (batch.go), and failures
// Kafka raises inside its log carry the real LogStartOffset. Batches are stored exactly as
// received (not recompressed).
// LogAppendTime topics get the broker's time in the batch header (CRC recomputed) and in the response. acks=1 and
// acks=-1 are answered once the batch is fsynced (one broker: both mean "durable here");
// acks=0 gets no response, and its connection is closed when a partition fails validation
// (as Kafka does). Idempotent producers are deduplicated per partition over their last 5
// batches; see producers.go. CreateTime timestamps outside message.timestamp.before.max.ms /
// after.max.ms (default: more than an hour ahead) get INVALID_TIMESTAMP with one error per
// record at fault. A failed WAL write gives KAFKA_STORAGE_ERROR. A partition listed twice
// (in one topic entry or in two entries of the same topic) is written once, with the last
// batch given, and answered once, as Kafka does. Transactional batches in a request without
// a transactional ID fail the whole request with TRANSACTIONAL_ID_AUTHORIZATION_FAILED (with
// acks=0 the connection is closed); a batch whose producer ID is not the one the request's
// transactional ID holds gets INVALID_PRODUCER_ID_MAPPING (Kafka's transaction verification).
// Differences from Kafka: records whose offset deltas are not 0..n-1 are refused
// (INVALID_RECORD; Kafka recompresses such a compressed batch, klite stores batches as sent);
// v0/v1 message sets on Produce v0-2 are refused rather than converted; the decompressing
// validator bounds a zstd window at 32 MiB and a snappy block at 64 MiB.
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
	respond = b.quotaProduce(rc, respond) // client quotas (quota_throttle.go)
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	// Whole-request refusals answer every partition with the same code.
	answerAll := func(e *kerr.Error) {
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
				sp.ErrorCode = e.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		respond(resp)
	}
	// Transactional batches need the transactional ID they are written under (Kafka checks
	// it is present and, with ACLs (authorize.go), that the principal may WRITE it, before
	// anything else).
	if hasTransactionalBatch(req.Topics) && (req.TransactionID == nil ||
		b.authz != nil && !b.allowedTxnID(rc, kmsg.ACLOperationWrite, *req.TransactionID)) {
		if req.Acks == 0 {
			respond(server.CloseConnection)
			return
		}
		answerAll(kerr.TransactionalIDAuthorizationFailed)
		return
	}
	// An invalid acks value is checked per partition after authorization and the partition's
	// existence, as Kafka's ReplicaManager sees only the partitions KafkaApis let through.
	badAcks := req.Acks != 0 && req.Acks != 1 && req.Acks != -1
	req.Topics = mergeDuplicatePartitions(req.Topics)
	// Lay out the whole response first; each partition fills its own slot.
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	var pending atomic.Int64
	for i, rt := range req.Topics {
		resp.Topics[i] = kmsg.NewProduceResponseTopic()
		resp.Topics[i].Topic = rt.Topic
		resp.Topics[i].Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		pending.Add(int64(len(rt.Partitions)))
	}
	// acks=0: nothing is sent back, but a request that fails validation closes the
	// connection (as Kafka does) so the client notices. The answer (nil) still waits for the
	// appends: the partition logs copy the batches out of the request frame once the WAL has
	// them, and the server reuses the frame (and counts it in its request budget) until the
	// request is answered.
	var invalid atomic.Bool
	var once sync.Once
	finish := func() {
		if pending.Add(-1) == 0 {
			once.Do(func() {
				switch {
				case req.Acks != 0:
					respond(resp)
				case invalid.Load():
					respond(server.CloseConnection)
				default:
					respond(nil)
				}
			})
		}
	}
	if pending.Load() == 0 {
		pending.Add(1)
		finish()
		return
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
			if !b.allowedTopic(rc, kmsg.ACLOperationWrite, rt.Topic) { // before the topic's existence
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
			if badAcks {
				fail(kerr.InvalidRequiredAcks, "")
				continue
			}
			if isInternalTopic(rt.Topic) { // as Kafka's ReplicaManager: only the broker writes them
				fail(kerr.InvalidTopicException, "Cannot append to internal topic "+rt.Topic)
				continue
			}
			ts := timestampLimits{logAppendTime: t.logAppendTime()}
			if t.compacted() {
				ts.compacted, ts.keylessMessage = true, keylessMessage(rt.Topic, rp.Partition)
			}
			if !ts.logAppendTime {
				ts.now, ts.before, ts.after = b.now().UnixMilli(), t.int64Config("message.timestamp.before.max.ms"), t.int64Config("message.timestamp.after.max.ms")
			}
			h, berr := validateProduceBatch(rp.Records, req.Version, t.maxMessageBytes(), &ts)
			if berr != nil {
				sp.ErrorRecords = berr.records
				if berr.logStart {
					sp.LogStartOffset = p.logStartOffset()
				}
				fail(berr.err, berr.msg)
				continue
			}
			records := rp.Records[:int(h.Length)+12] // bytes after it (no whole batch): dropped
			if e := b.txnOwnerCheck(req.TransactionID, &h); e != nil {
				fail(e, "")
				continue
			}
			if recErrs, berr := keylessRecordErrors(ts.keyless, ts.keylessMessage); berr != nil {
				sp.ErrorRecords = recErrs
				fail(berr.err, berr.msg)
				continue
			}
			if e := b.txnImplicitAdd(req.Version, rt.Topic, rp.Partition, &h); e != nil { // TV2
				fail(e, "")
				continue
			}
			if e, msg := b.s3ProduceGate(); e != nil { // S3 tier: local budget used, or lease lost
				fail(e, msg)
				continue
			}
			p.append(b, records, &h, func(r appendResult) {
				if r.err != nil {
					sp.ErrorCode = r.err.Code
					if r.msg != "" {
						sp.ErrorMessage = kmsg.StringPtr(r.msg)
					}
				} else {
					sp.BaseOffset = r.base
					sp.LogAppendTime = r.logAppendTime
					t.m.Produced(len(records), int(h.NumRecords))
				}
				sp.LogStartOffset = r.logStart
				finish()
			})
		}
	}
}

// mergeDuplicatePartitions folds a topic or partition listed more than once into one entry,
// as Kafka does (it keys a request's batches by partition, so the last batch given for a
// partition is the one appended and the partition is answered once), and leaves out topics
// listed with no partitions (Kafka's answer, built from that map, has no entry for them).
// Topics keep the order of their first appearance. The common case, no repeats and no empty
// topics, returns topics unchanged.
func mergeDuplicatePartitions(topics []kmsg.ProduceRequestTopic) []kmsg.ProduceRequestTopic {
	type tp struct {
		t string
		p int32
	}
	n := 0
	for _, t := range topics {
		n += len(t.Partitions)
	}
	if !hasDuplicatePartitions(topics, n) {
		return topics
	}
	seenTopic := make(map[string]int, len(topics))
	var out []kmsg.ProduceRequestTopic
	at := make(map[tp]int, n) // partition -> index in its merged topic
	for _, t := range topics {
		if len(t.Partitions) == 0 {
			continue
		}
		ti, ok := seenTopic[t.Topic]
		if !ok {
			ti = len(out)
			seenTopic[t.Topic] = ti
			mt := t
			mt.Partitions = nil
			out = append(out, mt)
		}
		for _, p := range t.Partitions {
			if pi, ok := at[tp{t.Topic, p.Partition}]; ok {
				out[ti].Partitions[pi] = p // the last batch given wins
				continue
			}
			at[tp{t.Topic, p.Partition}] = len(out[ti].Partitions)
			out[ti].Partitions = append(out[ti].Partitions, p)
		}
	}
	return out
}

// hasDuplicatePartitions reports whether a topic name or a topic's partition repeats, or a
// topic has no partitions; small requests (the usual ones) are checked without allocating.
func hasDuplicatePartitions(topics []kmsg.ProduceRequestTopic, n int) bool {
	for _, t := range topics {
		if len(t.Partitions) == 0 {
			return true
		}
	}
	if n <= 32 && len(topics) <= 32 {
		for i, t := range topics {
			for _, u := range topics[i+1:] {
				if u.Topic == t.Topic {
					return true
				}
			}
			for j, p := range t.Partitions {
				for _, q := range t.Partitions[j+1:] {
					if q.Partition == p.Partition {
						return true
					}
				}
			}
		}
		return false
	}
	seenTopic := make(map[string]struct{}, len(topics))
	for _, t := range topics {
		if _, ok := seenTopic[t.Topic]; ok {
			return true
		}
		seenTopic[t.Topic] = struct{}{}
		seen := make(map[int32]struct{}, len(t.Partitions))
		for _, p := range t.Partitions {
			if _, ok := seen[p.Partition]; ok {
				return true
			}
			seen[p.Partition] = struct{}{}
		}
	}
	return false
}

// hasTransactionalBatch reports whether any partition's records start with a RecordBatch v2
// whose transactional bit is set.
func hasTransactionalBatch(topics []kmsg.ProduceRequestTopic) bool {
	for _, t := range topics {
		for _, p := range t.Partitions {
			if len(p.Records) >= batchHeaderLen && p.Records[16] == 2 && p.Records[22]&attrTransactional != 0 {
				return true
			}
		}
	}
	return false
}

// logStartOffset is the partition's log start offset, which Kafka reports on produce
// failures raised inside the log.
func (p *partition) logStartOffset() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logStart
}
