package chaos

import (
	"context"
	"fmt"
	"math/rand"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Members is the consumer group workload with several members: an idempotent producer
// writes while up to three members (subscribe, cooperative-sticky, manual commits) share the
// topic's partitions. Members keep joining, leaving gracefully and dying abruptly (their
// connections cut, no LeaveGroup: the group waits for their session to time out); at every
// broker fault one member dies with the broker. A separate reader fetches the group's
// offsets every half second.
//
// Why committed offsets may not go backwards even with several members: each member polls
// with rebalances blocked (BlockRebalanceOnPoll) and commits before allowing them, so every
// commit of a partition is made by its owner within the generation it owns it in; the next
// owner gets the partition only after that (and resumes from the committed offset), so its
// commits are higher. A read-back offset below one acknowledged before the fetch was sent is
// therefore the broker's fault.
const Members = "group-members"

// member is one running group member.
type member struct {
	stop chan struct{}
	done chan struct{}
	dial *cutDialer
}

// cutDialer dials normally until cut, then closes every connection it made and refuses
// new ones: the member's client sees a dead network, like a killed process.
type cutDialer struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (d *cutDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, fmt.Errorf("member killed")
	}
	c, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *cutDialer) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		c.Close()
	}
}

// runMembers churns the group's members until stop; faults receives a value at each broker
// fault. Every member and the offset reader are stopped (bounded) before it returns.
func runMembers(addr, topic, group string, h *History, rng *rand.Rand, stop <-chan struct{}, faults <-chan struct{}) error {
	var live, all []*member
	next := 0
	start := func() {
		next++
		m := &member{stop: make(chan struct{}), done: make(chan struct{}), dial: &cutDialer{}}
		go func(n int) {
			defer close(m.done)
			consumeMember(addr, topic, group, n*100000, m, h)
		}(next)
		live = append(live, m)
		all = append(all, m)
	}
	remove := func(i int, abrupt bool) {
		m := live[i]
		live = append(live[:i], live[i+1:]...)
		if abrupt {
			m.dial.kill()
		}
		close(m.stop)
	}
	readerStop, readerDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(readerDone); readOffsets(addr, topic, group, h, readerStop) }()
	start()
	start()
	for {
		select {
		case <-stop:
			for len(live) > 0 {
				remove(0, false)
			}
			close(readerStop)
			// Each member stops within a poll, a commit and a leave (about 11 s).
			deadline := time.After(30 * time.Second)
			for _, m := range append(all, &member{done: readerDone}) {
				select {
				case <-m.done:
				case <-deadline:
					return fmt.Errorf("group members did not stop within 30s")
				}
			}
			return nil
		case <-faults:
			if len(live) > 1 {
				remove(rng.Intn(len(live)), true)
			}
		case <-time.After(time.Duration(1000+rng.Intn(2000)) * time.Millisecond):
			switch n := len(live); {
			case n < 3 && (n < 2 || rng.Intn(2) == 0):
				start()
			case rng.Intn(3) == 0:
				remove(rng.Intn(n), true)
			default:
				remove(rng.Intn(n), false)
			}
		}
	}
}

// consumeMember runs one member until m.stop: poll with rebalances blocked, record the
// reads under the member's current assignment (a new session per assignment), commit,
// allow rebalances.
func consumeMember(addr, topic, group string, firstSession int, m *member, h *History) {
	var session atomic.Int64
	session.Store(int64(firstSession))
	cl, err := kgo.NewClient(append(clientOpts(addr), kgo.Dialer(m.dial.dial), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond), kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { session.Add(1) }))...)
	if err != nil {
		return
	}
	defer func() {
		// A killed member cannot leave; its Close gives up quickly on the dead dialer.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cl.LeaveGroupContext(ctx)
		cl.Close()
	}()
	for i := 0; ; i++ {
		select {
		case <-m.stop:
			return
		default:
		}
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		// Rebalances are blocked until AllowRebalance: the session is the records' assignment.
		s := int(session.Load())
		var reads []Read
		commit := map[string]map[int32]kgo.EpochOffset{}
		fs.EachRecord(func(r *kgo.Record) {
			reads = append(reads, Read{Partition: r.Partition, Offset: r.Offset, Value: valueOf(r.Value)})
			if commit[topic] == nil {
				commit[topic] = map[int32]kgo.EpochOffset{}
			}
			commit[topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
		})
		h.AddPoll(Poll{Session: s, At: time.Now(), Reads: reads})
		if len(commit) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
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
			cancel()
		}
		cl.AllowRebalance()
	}
}

// readOffsets fetches the group's committed offsets every half second until stop, recording
// when each fetch was sent.
func readOffsets(addr, topic, group string, h *History, stop <-chan struct{}) {
	cl, err := kgo.NewClient(clientOpts(addr)...)
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		select {
		case <-stop:
			return
		case <-time.After(500 * time.Millisecond):
		}
		sent := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		offs, err := adm.FetchOffsets(ctx, group)
		cancel()
		if err != nil {
			continue
		}
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.Topic == topic {
				h.AddCommit(OffsetCommit{Group: group, Partition: o.Partition, Offset: o.At, Fetched: true, SentAt: sent})
			}
		})
	}
}
