// ListOffsets (key 2), versions 1-10.
//
// Timestamp -2 (earliest) gives the log start offset, -1 (latest) the high watermark (the last
// stable offset with read_committed, where timestamp lookups only find stable records), -3 (max timestamp, v7+) the first
// record carrying the largest timestamp, and -4 (earliest local, v8+) the log start offset.
// A timestamp >= 0 gives the first record whose timestamp is >= it, exactly: the batch index
// finds the first batch whose max timestamp is >= the target, then that batch is read from
// the WAL (decompressed if needed) to find the record. No match gives offset -1, timestamp -1.
// -5 (latest tiered, v9+) is answered with offset -1 and timestamp -1 (no tiered storage),
// as Kafka does without remote storage. As Kafka 4.0 (ReplicaManager.fetchOffset): a special
// timestamp below the version that defines it, or any other negative timestamp, is
// UNSUPPORTED_VERSION, and a partition listed twice is answered once, INVALID_REQUEST. A topic
// listed with no partitions is left out of the answer. An isolation level other than 0 or 1
// (v2+) fails the request as a whole: Java's IsolationLevel.forId throws, and Kafka answers
// every partition as asked (duplicates and empty topics included) with UNKNOWN_SERVER_ERROR.
package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(2, 1, 10, handleListOffsets) }

func handleListOffsets(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	if req.Version >= 2 && req.IsolationLevel != 0 && req.IsolationLevel != 1 {
		for _, rt := range req.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.UnknownServerError.Code
				sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		respond(resp)
		return
	}
	type tp struct {
		t string
		p int32
	}
	count := map[tp]int{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			count[tp{rt.Topic, rp.Partition}]++
		}
	}
	answered := map[tp]bool{}
	for _, rt := range req.Topics {
		if len(rt.Partitions) == 0 { // Kafka's answer is built from the partitions asked
			continue
		}
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			if k := (tp{rt.Topic, rp.Partition}); count[k] > 1 {
				if answered[k] {
					continue
				}
				answered[k] = true
				sp.ErrorCode = kerr.InvalidRequest.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if !listOffsetsTimestampSupported(rp.Timestamp, req.Version) {
				sp.ErrorCode = kerr.UnsupportedVersion.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			p, kerrv := b.partition(rt.Topic, rp.Partition)
			if !b.allowedTopic(rc, kmsg.ACLOperationDescribe, rt.Topic) {
				kerrv = kerr.TopicAuthorizationFailed // ACLs: DESCRIBE, as Kafka
			}
			if kerrv != nil {
				sp.ErrorCode = kerrv.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			off, ts, err := b.listOffset(p, rp.Timestamp)
			if err == nil && req.IsolationLevel == 1 { // read_committed
				if lso := p.lso(); rp.Timestamp == -1 {
					off = lso // latest: the last stable offset
				} else if off >= lso && (rp.Timestamp >= 0 || rp.Timestamp == -3) {
					off, ts = -1, -1 // as Kafka: a timestamp match must be stable
				}
			}
			if err != nil {
				sp.ErrorCode = err.Code
			} else if off >= 0 {
				sp.Offset, sp.Timestamp, sp.LeaderEpoch = off, ts, 0
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	respond(resp)
}

// listOffsetsTimestampSupported: the special (negative) timestamps and the first ListOffsets
// version defining each; any other negative timestamp is unsupported.
func listOffsetsTimestampSupported(ts int64, version int16) bool {
	if ts >= 0 {
		return true
	}
	minVersion, ok := specialTimestampVersions[ts]
	return ok && version >= minVersion
}

var specialTimestampVersions = map[int64]int16{-1: 1, -2: 1, -3: 7, -4: 8, -5: 9}

// listOffset resolves one ListOffsets query to (offset, timestamp); offset -1 is "none".
func (b *Broker) listOffset(p *partition, ts int64) (int64, int64, *kerr.Error) {
	logStart, hwm := p.offsets()
	switch {
	case ts == -2 || ts == -4:
		return logStart, -1, nil
	case ts == -1:
		return hwm, -1, nil
	case ts < -3:
		return -1, -1, nil
	}
	lg := p.log()
	if lg == nil {
		return -1, -1, kerr.KafkaStorageError
	}
	var off, rts int64
	var ok bool
	var err error
	if ts == -3 {
		off, rts, ok, err = lg.MaxTimestamp()
	} else {
		off, rts, ok, err = lg.OffsetForTimestamp(ts)
	}
	if err != nil {
		b.log.Warn("timestamp lookup failed", "topic", p.t.name, "partition", p.idx, "err", err)
		return -1, -1, kerr.KafkaStorageError
	}
	if !ok || off < logStart || off >= hwm {
		return -1, -1, nil
	}
	return off, rts, nil
}
