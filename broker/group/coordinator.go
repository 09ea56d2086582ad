// Package group is klite's classic consumer-group coordinator: the JoinGroup/SyncGroup state
// machine (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead), static membership
// (KIP-345), MEMBER_ID_REQUIRED (KIP-394), committed offsets with retention, and the group
// admin operations, modelled on Kafka 4.0's classic groups.
//
// All group state is owned by one goroutine (the loop). Public methods post a closure to the
// loop and answer through a callback, so nothing here takes a lock. Timers (session,
// rebalance, initial join delay, pending sync, offset retention) come from an injected Clock
// and re-post onto the loop.
//
// Durability: every state change that must survive a restart (offset commits and deletes,
// group metadata after a rebalance, group deletion) is encoded as a record (see record.go) and
// appended to the coordinator's own MetaLog. The loop drains a burst of requests, writes their
// records with one fsync (AppendBatch), applies offset commits once durable, and only then
// sends the responses of that burst: nothing is answered before it is on disk.
package group

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/klite/klite/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Config configures a Coordinator. Zero values take the documented defaults.
type Config struct {
	// Log is the MetaLog for offsets and group metadata; the coordinator owns it and closes
	// it in Close. If nil, Path is opened with storage.OpenMetaLog; if Path is empty too, an
	// in-memory log is used (nothing survives a restart).
	Log  storage.MetaLog
	Path string

	Logger *slog.Logger
	Clock  Clock // default: the real clock

	// InitialRebalanceDelay is group.initial.rebalance.delay.ms: how long the first rebalance
	// of an empty group waits for more members (extended by each new member up to the
	// rebalance timeout). Default 0: complete as soon as every known member has joined.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound a member's session timeout
	// (group.min/max.session.timeout.ms; defaults 6s and 30m).
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// MaxGroupSize is group.max.size, the most members of a classic group (default:
	// unlimited).
	MaxGroupSize int
	// ConsumerMaxGroupSize is group.consumer.max.size, the most members (of either protocol)
	// of a consumer group (default: unlimited). A classic group larger than it is not
	// upgraded, and a consumer group is not downgraded into a classic group larger than
	// MaxGroupSize.
	ConsumerMaxGroupSize int
	// MigrationPolicy is group.consumer.migration.policy: which online conversions of a
	// group with members between the classic and consumer protocols are allowed:
	// "bidirectional" (the default, as Kafka 4.0), "upgrade", "downgrade" or "disabled".
	// Empty groups convert either way whatever the policy.
	MigrationPolicy string
	// OffsetsRetention is offsets.retention.minutes (default 7 days).
	OffsetsRetention time.Duration
	// RetentionCheckInterval is offsets.retention.check.interval.ms (default 10m).
	RetentionCheckInterval time.Duration
	// MaxMetadataBytes is offset.metadata.max.bytes (default 4096).
	MaxMetadataBytes int
	// CompactBytes: the log is rewritten as a snapshot once it exceeds this size and twice
	// the previous snapshot (default 16 MiB).
	CompactBytes int64

	// Consumer groups (KIP-848). ConsumerSessionTimeout is group.consumer.session.timeout.ms
	// (default 45s), HeartbeatInterval group.consumer.heartbeat.interval.ms (default 5s),
	// DefaultAssignor the first of group.consumer.assignors ("uniform").
	ConsumerSessionTimeout time.Duration
	HeartbeatInterval      time.Duration
	DefaultAssignor        string
	// TopicInfo, TopicNames and TopicNameByID look topics up for the server-side assignor
	// (partition counts, IDs, regex subscriptions). They are called on the loop and must
	// not call back into the coordinator. Without them no topic exists.
	TopicInfo     func(name string) (TopicInfo, bool)
	TopicNames    func() []string
	TopicNameByID func(id [16]byte) (string, bool)
}

func (cfg *Config) defaults() {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.MinSessionTimeout <= 0 {
		cfg.MinSessionTimeout = 6 * time.Second
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = 30 * time.Minute
	}
	if cfg.OffsetsRetention <= 0 {
		cfg.OffsetsRetention = 7 * 24 * time.Hour
	}
	if cfg.RetentionCheckInterval <= 0 {
		cfg.RetentionCheckInterval = 10 * time.Minute
	}
	if cfg.MaxMetadataBytes <= 0 {
		cfg.MaxMetadataBytes = 4096
	}
	if cfg.CompactBytes <= 0 {
		cfg.CompactBytes = 16 << 20
	}
	if cfg.ConsumerSessionTimeout <= 0 {
		cfg.ConsumerSessionTimeout = 45 * time.Second
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 5 * time.Second
	}
	if cfg.DefaultAssignor == "" {
		cfg.DefaultAssignor = assignorNames[0]
	}
	cfg.MigrationPolicy = strings.ToLower(cfg.MigrationPolicy)
	if cfg.MigrationPolicy == "" {
		cfg.MigrationPolicy = "bidirectional"
	}
}

// MigrationPolicies are the values of group.consumer.migration.policy.
var MigrationPolicies = []string{"bidirectional", "upgrade", "downgrade", "disabled"}

// ErrClosed is returned to callers whose request arrives after Close.
var ErrClosed = errors.New("group: coordinator closed")

// Coordinator is the consumer-group coordinator of one broker.
type Coordinator struct {
	cfg   Config
	log   *slog.Logger
	clock Clock
	meta  storage.MetaLog

	events chan func()
	quit   chan struct{}
	done   chan struct{}

	// Loop-owned state below.
	groups       map[string]*group
	groupConfigs map[string]map[string]string // group ID -> configs set (group_config.go)
	pendingRecs  [][]byte
	onDurable    []func(err error) // run after pendingRecs are written (or failed)
	replies      []func()          // responses held until the burst's records are durable
	lastSnapshot int64
	retention    *loopTimer
	memberSeq    uint64
}

// New replays the log and starts the coordinator's loop.
func New(cfg Config) (*Coordinator, error) {
	cfg.defaults()
	if !slices.Contains(MigrationPolicies, cfg.MigrationPolicy) {
		return nil, fmt.Errorf("group.consumer.migration.policy %q: want one of %s", cfg.MigrationPolicy, strings.Join(MigrationPolicies, ", "))
	}
	meta := cfg.Log
	if meta == nil {
		if cfg.Path == "" {
			meta = storage.NewMemMetaLog()
		} else {
			if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o755); err != nil {
				return nil, fmt.Errorf("group log dir: %w", err)
			}
			var err error
			if meta, err = storage.OpenMetaLog(cfg.Path); err != nil {
				return nil, fmt.Errorf("opening group log: %w", err)
			}
		}
	}
	c := &Coordinator{
		cfg:    cfg,
		log:    cfg.Logger,
		clock:  cfg.Clock,
		meta:   meta,
		events: make(chan func(), 256),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		groups: map[string]*group{},

		groupConfigs: map[string]map[string]string{},
	}
	if err := c.load(); err != nil {
		meta.Close()
		return nil, err
	}
	go c.run()
	c.post(func() {
		for _, g := range c.groups {
			for _, m := range g.members {
				c.scheduleHeartbeat(g, m) // members of a reloaded group get a fresh session
			}
			if g.cg != nil {
				for _, m := range g.cg.members {
					c.scheduleConsumerSession(g, m)
				}
			}
		}
		c.scheduleRetention()
	})
	return c, nil
}

// Close stops the loop, answering nothing further, and closes the log.
func (c *Coordinator) Close() error {
	select {
	case <-c.quit:
		<-c.done
		return nil
	default:
	}
	close(c.quit)
	<-c.done
	return c.meta.Close()
}

// post queues fn on the loop; false if the coordinator is closed.
func (c *Coordinator) post(fn func()) bool {
	select {
	case <-c.quit:
		return false
	default:
	}
	select {
	case c.events <- fn:
		return true
	case <-c.quit:
		return false
	}
}

// reply holds a response until the records of the current burst are durable.
func (c *Coordinator) reply(fn func()) { c.replies = append(c.replies, fn) }

// errLogWrite answers a request whose groups.log append failed. Kafka 4.0's group coordinator
// (appendGroupMetadataErrorToResponseError, and GroupCoordinatorService for offset commits)
// maps the append's KAFKA_STORAGE_ERROR to NOT_COORDINATOR, which clients retry after looking
// the coordinator up again; UNKNOWN_SERVER_ERROR, answered before, is not retried.
var errLogWrite = kerr.NotCoordinator

// persist queues a record; then runs (on the loop) once it is durable or failed.
func (c *Coordinator) persist(rec []byte, then func(err error)) {
	c.pendingRecs = append(c.pendingRecs, rec)
	if then != nil {
		c.onDurable = append(c.onDurable, then)
	}
}

// maxBurst bounds how many requests share one fsync.
const maxBurst = 512

func (c *Coordinator) run() {
	defer close(c.done)
	for {
		select {
		case <-c.quit:
			c.abandonWaiters()
			c.flush()
			return
		case fn := <-c.events:
			fn()
		burst:
			for n := 1; n < maxBurst; n++ {
				select {
				case fn := <-c.events:
					fn()
				default:
					break burst
				}
			}
			c.flush()
		}
	}
}

// flush writes the burst's records with one fsync, applies what waited on them, then sends
// the held responses in order.
func (c *Coordinator) flush() {
	for len(c.pendingRecs) > 0 || len(c.onDurable) > 0 {
		recs, then := c.pendingRecs, c.onDurable
		c.pendingRecs, c.onDurable = nil, nil
		var err error
		if len(recs) > 0 {
			err = c.meta.AppendBatch(recs)
			if err != nil {
				c.log.Error("group log append failed", "err", err, "records", len(recs))
			}
		}
		for _, fn := range then {
			fn(err) // may queue more records (rare): loop again
		}
	}
	c.maybeCompact()
	replies := c.replies
	c.replies = nil
	for _, fn := range replies {
		fn()
	}
}

// abandonWaiters answers every JoinGroup and SyncGroup still waiting with NOT_COORDINATOR
// (as Kafka does when a coordinator unloads), so a shutting-down server is not held up by
// rebalances in progress; clients find the coordinator again and rejoin.
func (c *Coordinator) abandonWaiters() {
	for _, g := range c.groups {
		for _, m := range g.members {
			if m.joinCB != nil {
				m.joinCB(joinError(m.id, kerr.NotCoordinator))
				m.joinCB = nil
			}
			if m.syncCB != nil {
				m.syncCB(syncError(kerr.NotCoordinator))
				m.syncCB = nil
			}
		}
	}
}

// DeleteTopicOffsets drops every group's committed offsets for a deleted topic, as Kafka does.
func (c *Coordinator) DeleteTopicOffsets(topic string) {
	done := make(chan struct{})
	if !c.post(func() {
		for _, g := range c.groups {
			for k := range g.offsets {
				if k.topic == topic {
					delete(g.offsets, k)
					c.persist(encodeOffsetDelete(g.id, k), nil)
				}
			}
		}
		c.reply(func() { close(done) })
	}) {
		return
	}
	select {
	case <-done:
	case <-c.done:
	}
}

// maybeCompact rewrites the log as a snapshot of the current state once it has grown.
func (c *Coordinator) maybeCompact() {
	size := c.meta.Size()
	if size < c.cfg.CompactBytes || size < 2*c.lastSnapshot {
		return
	}
	snap := c.snapshot()
	if err := c.meta.Compact(snap); err != nil {
		c.log.Error("group log compaction failed", "err", err)
		return
	}
	c.lastSnapshot = c.meta.Size()
	c.log.Info("group log compacted", "from_bytes", size, "to_bytes", c.lastSnapshot, "records", len(snap))
}

// Sync returns once every request posted before it has been answered. Tests use it as a
// barrier; it is harmless in production.
func (c *Coordinator) Sync() error {
	ch := make(chan struct{})
	// Wait on durability too: answers held for a record queued before this call (a static
	// rejoin, a commit) are sent after its fsync, so they must come before ch closes.
	if !c.post(func() { c.onDurable = append(c.onDurable, func(error) { c.reply(func() { close(ch) }) }) }) {
		return ErrClosed
	}
	select {
	case <-ch:
		return nil
	case <-c.done:
		return ErrClosed
	}
}
