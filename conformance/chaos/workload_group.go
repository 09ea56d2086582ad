package chaos

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Group is the consumer group workload: an idempotent producer writes while one group member
// (subscribe, manual commits) reads and commits after every poll, and reads the group's
// offsets back every second. One member only: with two, a member that just lost a partition
// may legally commit an older offset for it, which the checker could not tell from a broker
// that forgot a commit.
const Group = "group"

// consumeGroup runs the group member until stop. Each assignment starts a new session: a
// member resumes from the committed offset, which may be below what it had read.
func consumeGroup(addr, topic, group string, firstSession int, h *History, stop <-chan struct{}) error {
	session := firstSession
	cl, err := kgo.NewClient(append(clientOpts(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond),
		kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { session++ }))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	lastFetch := time.Now()
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		// The session callback runs inside PollFetches, so session is the records' session.
		var reads []Read
		commit := map[string]map[int32]kgo.EpochOffset{}
		fs.EachRecord(func(r *kgo.Record) {
			reads = append(reads, Read{Partition: r.Partition, Offset: r.Offset, Value: valueOf(r.Value)})
			if commit[topic] == nil {
				commit[topic] = map[int32]kgo.EpochOffset{}
			}
			commit[topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
		})
		h.AddPoll(Poll{Session: session, At: time.Now(), Reads: reads})
		if len(commit) > 0 {
			cl.CommitOffsetsSync(ctx, commit, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				if err != nil {
					return
				}
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if p.ErrorCode == 0 {
							h.AddCommit(OffsetCommit{Group: group, Partition: p.Partition, Offset: commit[topic][p.Partition].Offset})
						}
					}
				}
			})
		}
		if time.Since(lastFetch) > time.Second {
			lastFetch = time.Now()
			if offs, err := adm.FetchOffsets(ctx, group); err == nil {
				offs.Each(func(o kadm.OffsetResponse) {
					if o.Err == nil && o.Topic == topic {
						h.AddCommit(OffsetCommit{Group: group, Partition: o.Partition, Offset: o.At, Fetched: true})
					}
				})
			}
		}
		cancel()
	}
}
