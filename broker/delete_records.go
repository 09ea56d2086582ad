// DeleteRecords (key 21), versions 0-2.
//
// Advances a partition's log start offset: offset -1 means the high watermark, an offset
// above the high watermark (or below -1) is OFFSET_OUT_OF_RANGE, one at or below the current
// log start changes nothing; the response carries the resulting low watermark. The new log
// start is persisted in the metadata log ({"type":"log_start","id":..,"partition":..,
// "offset":..}) before the response, so it survives a restart; Fetch below it gets
// OFFSET_OUT_OF_RANGE and ListOffsets earliest returns it. TimeoutMillis is not needed (no
// replicas to wait for).
// The partition Log (broker/logstore) checkpoints the new start too and deletes its segments
// wholly below it; the WAL is then trimmed (trimWAL). DescribeLogDirs reports the Log's size,
// which still counts the segment holding the log start, as Kafka does. As Kafka (which keys
// the request by partition): repeated topics and partitions are answered once, and topics
// listed with no partitions are left out.
package broker

import (
	"encoding/hex"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(21, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range mergeDeleteRecordsTopics(req.Topics) {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p, kerrv := b.partition(rt.Topic, rp.Partition)
			if !b.allowedTopic(rc, kmsg.ACLOperationDelete, rt.Topic) {
				kerrv = kerr.TopicAuthorizationFailed // ACLs, as Kafka
			}
			if kerrv == nil {
				sp.LowWatermark, kerrv = b.deleteRecords(p, rp.Offset)
			}
			if kerrv != nil {
				sp.ErrorCode = kerrv.Code
				sp.LowWatermark = -1
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	respond(resp)
}

// mergeDeleteRecordsTopics keys the request by partition as Kafka does: a topic listed twice
// is one topic, a partition listed twice is deleted up to the last offset given and answered
// once, and a topic with no partitions is left out. Topics keep their first appearance order.
func mergeDeleteRecordsTopics(topics []kmsg.DeleteRecordsRequestTopic) []kmsg.DeleteRecordsRequestTopic {
	type tp struct {
		t string
		p int32
	}
	var out []kmsg.DeleteRecordsRequestTopic
	topicAt := map[string]int{}
	partAt := map[tp]int{}
	for _, rt := range topics {
		for _, rp := range rt.Partitions {
			ti, ok := topicAt[rt.Topic]
			if !ok {
				ti = len(out)
				topicAt[rt.Topic] = ti
				mt := rt
				mt.Partitions = nil
				out = append(out, mt)
			}
			if pi, ok := partAt[tp{rt.Topic, rp.Partition}]; ok {
				out[ti].Partitions[pi] = rp // the last offset given wins
				continue
			}
			partAt[tp{rt.Topic, rp.Partition}] = len(out[ti].Partitions)
			out[ti].Partitions = append(out[ti].Partitions, rp)
		}
	}
	return out
}

// deleteRecords moves p's log start offset up to offset (-1: the high watermark), persisting
// it first, and returns the resulting log start.
func (b *Broker) deleteRecords(p *partition, offset int64) (int64, *kerr.Error) {
	p.mu.Lock()
	if p.deleted {
		p.mu.Unlock()
		return -1, kerr.UnknownTopicOrPartition
	}
	if offset == -1 {
		offset = p.hwm
	}
	if offset < 0 || offset > p.hwm {
		p.mu.Unlock()
		return -1, kerr.OffsetOutOfRange
	}
	if offset <= p.logStart {
		ls := p.logStart
		p.mu.Unlock()
		return ls, nil
	}
	p.mu.Unlock()

	// Persist before applying: a log start that a client saw must survive a crash. Two
	// concurrent calls may persist out of order; replay keeps the largest.
	b.mu.Lock()
	if b.topicsByID[p.t.id] != p.t {
		b.mu.Unlock()
		return -1, kerr.UnknownTopicOrPartition
	}
	if err := b.appendMetaLocked(logStartRecord(p, offset)); err != nil {
		b.mu.Unlock()
		b.log.Error("persisting log start offset failed", "topic", p.t.name, "partition", p.idx, "err", err)
		return -1, kerr.KafkaStorageError
	}
	b.admin.noteLogStart(p, offset)
	b.mu.Unlock()

	p.mu.Lock()
	p.advanceLogStartLocked(offset)
	ls, lg := p.logStart, p.lg
	p.mu.Unlock()
	if lg != nil {
		// The Log checkpoints its own start and deletes the segments below it; if that
		// fails, the next start moves it again from the metadata log (settleLogs).
		if err := lg.DeleteRecordsBefore(ls); err != nil {
			b.log.Warn("deleting the partition segments below the log start failed", "topic", p.t.name, "partition", p.idx, "err", err)
		}
	}
	b.log.Info("log start offset advanced", "topic", p.t.name, "partition", p.idx, "log_start", ls)
	b.signalData() // waiting fetches below the new log start must answer OFFSET_OUT_OF_RANGE
	b.removeDeadSegments()
	return ls, nil
}

// removeDeadSegments gives the space back: the Log deleted its segments below the new log
// start; the WAL segments are trimmed once the partition tails in them are sealed.
func (b *Broker) removeDeadSegments() {
	if err := b.trimWAL(0); err != nil {
		b.log.Warn("trimming the WAL failed", "err", err)
	}
}

func logStartRecord(p *partition, offset int64) metaRecord {
	return metaRecord{Type: "log_start", ID: hex.EncodeToString(p.t.id[:]), Partition: p.idx, Offset: offset}
}

// noteLogStart remembers a persisted log start (for metadata snapshots).
func (a *adminState) noteLogStart(p *partition, offset int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.logStarts == nil {
		a.logStarts = map[*partition]int64{}
	}
	if offset > a.logStarts[p] {
		a.logStarts[p] = offset
	}
}

// fixLogStartsAfterReplay runs after the WAL replay: a partition whose batches all lay below
// its log start (and whose segments were removed) resumes at the log start, as Kafka's log
// end offset never moves back.
func (b *Broker) fixLogStartsAfterReplay() {
	for _, t := range b.topics {
		for _, p := range t.partitions() {
			p.mu.Lock()
			if p.logStart > p.hwm {
				p.hwm = p.logStart
				p.next = p.logStart
			}
			p.mu.Unlock()
		}
	}
}
