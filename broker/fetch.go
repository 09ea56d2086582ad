// Fetch (key 1), versions 4-17.
//
// Long polling: when less than MinBytes is available the request waits up to MaxWaitMillis
// and is woken by appends (no timer polling). Byte limits follow KIP-74: MaxBytes for the
// response and PartitionMaxBytes per partition, counted in whole batches, except that the
// first batch of the first partition with data is returned even when larger. A fetch offset
// below the log start or above the high watermark gets OFFSET_OUT_OF_RANGE. Batches are
// served exactly as stored (whole batches, so the first may start before the fetch offset).
// Fetch sessions (KIP-227) are in fetch_session.go: an incremental fetch is resolved to all
// the partitions of its session first, and its answer trimmed to what changed. READ_COMMITTED
// returns data only below the last stable offset and lists the aborted transactions in the
// returned range (txn_partition.go). On a plain TCP connection, batches of sealed segments
// are sent from the segment files with sendfile, never read into memory (fetch_zerocopy.go).
//
// As Kafka 4.0: MaxBytes 0 returns only the first batch; a negative MaxBytes or
// PartitionMaxBytes fails each partition that has data to read (UNKNOWN_SERVER_ERROR, Kafka's
// log read refuses a negative size); an isolation level other than 0 or 1 fails the request
// (UNKNOWN_SERVER_ERROR, top level from v7) once some partition exists to be read (otherwise
// the unknown partitions are answered as usual); a topic listed with no partitions is left
// out of the answer; a CurrentLeaderEpoch above klite's (always 0) is
// UNKNOWN_LEADER_EPOCH and one below -1 FENCED_LEADER_EPOCH; a fetch from a replica
// (ReplicaID >= 0) is refused since klite has no followers (NOT_LEADER_OR_FOLLOWER, or
// UNKNOWN_LEADER_EPOCH when it carries a leader epoch). Failed partitions report -1 offsets.
package broker

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(1, 4, 17, handleFetch) }

// maxFetchWait caps MaxWaitMillis so a hostile request cannot pin a goroutine for long.
const maxFetchWait = 60 * time.Second

func handleFetch(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	sf, errCode := b.resolveFetchSession(kreq.(*kmsg.FetchRequest))
	if errCode != 0 {
		resp := kreq.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = errCode
		respond(resp)
		return
	}
	req := sf.req
	if req.IsolationLevel != 0 && req.IsolationLevel != 1 && b.fetchReadsAny(rc, req) {
		// Kafka reads the isolation level (Java's IsolationLevel.forId, which throws) only
		// once some partition exists to be read: the request then fails as a whole.
		resp := kreq.ResponseKind().(*kmsg.FetchResponse)
		if req.Version >= 7 {
			resp.ErrorCode, resp.SessionID = kerr.UnknownServerError.Code, kreq.(*kmsg.FetchRequest).SessionID
		} else {
			for _, rt := range req.Topics {
				if len(rt.Partitions) == 0 {
					continue
				}
				st := kmsg.NewFetchResponseTopic()
				st.Topic, st.TopicID = rt.Topic, rt.TopicID
				for _, rp := range rt.Partitions {
					sp := kmsg.NewFetchResponseTopicPartition()
					sp.Partition, sp.ErrorCode = rp.Partition, kerr.UnknownServerError.Code
					sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
					sp.RecordBatches = []byte{}
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
		}
		respond(resp)
		return
	}
	if capped := b.maxFetchBytes(rc, req.MaxBytes); capped != req.MaxBytes { // client quotas (quota_throttle.go)
		req.MaxBytes, req.MinBytes = capped, min(req.MinBytes, capped)
	}
	answer := func() {
		zc := b.zeroCopyFor(rc, req) // record bytes sent from segment files (fetch_zerocopy.go)
		bp := takeFetchBuf()
		r, buf := b.fetchResponseInto(rc, req, zc, *bp)
		*bp = buf
		if ms := b.fetchThrottle(rc, fetchRecordBytes(r, zc)); ms > 0 {
			zc.release() // the throttled answer carries no records: give the files back
			recycleFetchBuf(bp)
			b.throttleAnswer(rc, sf.throttled(req, ms), ms, rc.Version < 8, respond)
			return
		}
		respond(zc.answerPooled(sf.finish(r), bp))
	}
	wait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	if wait <= 0 || req.MinBytes <= 0 {
		answer()
		return
	}
	changed := b.dataChanged()
	if avail, stop := b.fetchAvailable(rc, req); stop || avail >= int64(req.MinBytes) {
		answer()
		return
	}
	go func() {
		timer := time.NewTimer(min(wait, maxFetchWait))
		defer timer.Stop()
		for {
			select {
			case <-changed:
				changed = b.dataChanged()
				if avail, stop := b.fetchAvailable(rc, req); !stop && avail < int64(req.MinBytes) {
					continue
				}
			case <-timer.C:
			case <-b.done:
			}
			answer()
			return
		}
	}()
}

// fetchPartition resolves a requested partition; on failure it returns the error to report.
func (b *Broker) fetchPartition(rc *ReqCtx, req *kmsg.FetchRequest, rt *kmsg.FetchRequestTopic, idx int32) (*partition, *kerr.Error) {
	var t *topic
	if req.Version >= 13 {
		t = b.topicByID(rt.TopicID)
		if t == nil {
			return nil, kerr.UnknownTopicID
		}
	} else if t = b.topic(rt.Topic); t == nil {
		if !b.allowedTopic(rc, kmsg.ACLOperationRead, rt.Topic) {
			return nil, kerr.TopicAuthorizationFailed // Kafka checks READ before existence
		}
		return nil, kerr.UnknownTopicOrPartition
	}
	if !b.allowedTopic(rc, kmsg.ACLOperationRead, t.name) {
		return nil, kerr.TopicAuthorizationFailed
	}
	if p := t.partition(idx); p != nil {
		return p, nil
	}
	return nil, kerr.UnknownTopicOrPartition
}

// fetchReadsAny reports whether some requested partition exists and may be read (Kafka's
// "interesting" partitions, the ones handed to its log reads).
func (b *Broker) fetchReadsAny(rc *ReqCtx, req *kmsg.FetchRequest) bool {
	for i := range req.Topics {
		for _, rp := range req.Topics[i].Partitions {
			if _, err := b.fetchPartition(rc, req, &req.Topics[i], rp.Partition); err == nil {
				return true
			}
		}
	}
	return false
}

// fetchReadCheck is what Kafka's Partition.fetchRecords refuses before reading: a leader
// epoch other than klite's (0), or a fetch from a replica (klite has none).
func fetchReadCheck(req *kmsg.FetchRequest, rp *kmsg.FetchRequestTopicPartition) *kerr.Error {
	switch e := rp.CurrentLeaderEpoch; {
	case e == -1 || e == 0:
	case e > 0:
		return kerr.UnknownLeaderEpoch
	default:
		return kerr.FencedLeaderEpoch
	}
	replica := req.ReplicaID
	if req.Version >= 15 {
		replica = req.ReplicaState.ID
	}
	if replica >= 0 {
		if rp.CurrentLeaderEpoch != -1 {
			return kerr.UnknownLeaderEpoch
		}
		return kerr.NotLeaderForPartition
	}
	return nil
}

// fetchAvailable counts the bytes a fetch could return now (up to MinBytes); stop is set when
// some partition has an error, which Kafka answers at once.
func (b *Broker) fetchAvailable(rc *ReqCtx, req *kmsg.FetchRequest) (avail int64, stop bool) {
	for i := range req.Topics {
		rt := &req.Topics[i]
		for _, rp := range rt.Partitions {
			p, err := b.fetchPartition(rc, req, rt, rp.Partition)
			if err != nil || fetchReadCheck(req, &rp) != nil || req.MaxBytes < 0 || rp.PartitionMaxBytes < 0 {
				return avail, true
			}
			logStart, hwm := p.offsets()
			if rp.FetchOffset < logStart || rp.FetchOffset > hwm {
				return avail, true
			}
			if req.IsolationLevel == 1 {
				hwm = p.lso() // read_committed: only up to the last stable offset
			}
			if rp.FetchOffset < hwm {
				avail += p.bytesFrom(rp.FetchOffset, int64(req.MinBytes))
			}
			if avail >= int64(req.MinBytes) {
				return avail, false
			}
		}
	}
	return avail, false
}

// fetchResponse builds the response from what is durable now; with zc, batches of sealed
// segments are left in their files (placeholders in RecordBatches).
func (b *Broker) fetchResponse(rc *ReqCtx, req *kmsg.FetchRequest, zc *zeroCopy) *kmsg.FetchResponse {
	resp, _ := b.fetchResponseInto(rc, req, zc, nil)
	return resp
}

// fetchResponseInto is fetchResponse reading the batches not left in files into buf
// (appended from its length 0; a pooled buffer, see fetch_buf.go), returned grown.
func (b *Broker) fetchResponseInto(rc *ReqCtx, req *kmsg.FetchRequest, zc *zeroCopy, buf []byte) (*kmsg.FetchResponse, []byte) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	budget := int64(req.MaxBytes) // 0: only the first batch (minOne); < 0: refused per partition
	minOne := true
	buf = buf[:0]
	for i := range req.Topics {
		rt := &req.Topics[i]
		if len(rt.Partitions) == 0 { // Kafka's answer is built from the partitions asked
			continue
		}
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			// Empty, not null, as Kafka sends it: some clients (kafka-python) fail on null.
			sp.RecordBatches = []byte{}
			p, kerrv := b.fetchPartition(rc, req, rt, rp.Partition)
			if kerrv != nil {
				// Kafka answers unknown topics and partitions before reading, with an
				// empty (not null) aborted transaction list; read errors below carry null.
				sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			} else {
				kerrv = fetchReadCheck(req, &rp)
			}
			if kerrv != nil {
				sp.ErrorCode = kerrv.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			logStart, hwm := p.offsets()
			lso := p.lso() // transactions hold the LSO back
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hwm, lso, logStart
			upper := hwm
			if req.IsolationLevel == 1 {
				upper = lso
			}
			if rp.FetchOffset < logStart || rp.FetchOffset > hwm {
				// Kafka answers a failed read with unknown offsets (-1), not the partition's.
				sp.ErrorCode = kerr.OffsetOutOfRange.Code
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			limit := min(int64(rp.PartitionMaxBytes), budget)
			if rp.FetchOffset < upper && limit < 0 {
				// Kafka's log read refuses a negative size ("Invalid max size").
				sp.ErrorCode = kerr.UnknownServerError.Code
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if rp.FetchOffset < upper && (budget > 0 || minOne) {
				recs, n, lastOff, rerr, fromFile := zc.read(p, rp.FetchOffset, upper, limit, minOne)
				start := len(buf)
				if !fromFile {
					buf, lastOff, rerr = p.readBatches(buf, rp.FetchOffset, upper, limit, minOne)
					recs, n = buf[start:len(buf):len(buf)], int64(len(buf)-start)
				}
				if rerr != nil {
					b.log.Warn("reading batches failed", "topic", p.t.name, "partition", p.idx, "offset", rp.FetchOffset, "err", rerr)
					sp.ErrorCode = rerr.Code
					if rerr == kerr.OffsetOutOfRange { // retention moved the log start meanwhile
						sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
					}
				}
				if req.IsolationLevel == 1 && lastOff >= 0 {
					ab, err := p.abortedIn(rp.FetchOffset, lastOff)
					if err != nil {
						b.log.Warn("reading aborted transactions failed", "topic", p.t.name, "partition", p.idx, "err", err)
						sp.ErrorCode = kerr.KafkaStorageError.Code
						buf, recs, n = buf[:start], nil, 0 // a file range stays unsent (closed with the answer)
					} else {
						sp.AbortedTransactions = ab
					}
				}
				if n > 0 {
					sp.RecordBatches = recs
					budget = max(0, budget-n) // as Kafka: MaxBytes 0 leaves 0, not less
					minOne = false
				}
			}
			if req.IsolationLevel == 1 && sp.AbortedTransactions == nil {
				// read_committed reads always carry a list (Kafka: null only for read_uncommitted)
				sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, buf
}
