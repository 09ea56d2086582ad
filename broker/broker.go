// Package broker is klite's Kafka broker: state for topics, partitions and producers, and one
// file per Kafka API (named after it) that validates a request, calls into state and builds the
// response. Sockets and framing live in broker/server, durable bytes in broker/storage.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klite/klite/broker/acl"
	"github.com/klite/klite/broker/group"
	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/broker/metrics"
	"github.com/klite/klite/broker/quota"
	"github.com/klite/klite/broker/server"
	"github.com/klite/klite/broker/storage"
	"github.com/klite/klite/broker/txn"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config configures a Broker. Zero values take the documented defaults.
type Config struct {
	// DataDir holds the WAL (DataDir/wal) and the metadata log (DataDir/meta.log).
	DataDir string
	// ClusterID is used on first start; afterwards the persisted one must match if set.
	ClusterID string
	// NodeID is this broker's ID in Metadata (default 0).
	NodeID int32
	// AdvertisedAddr is the host:port clients are told to connect to.
	AdvertisedAddr string
	// DefaultPartitions for auto-created topics and CreateTopics with -1 (default 1).
	DefaultPartitions int32
	// OffsetsTopicPartitions and TransactionStateLogPartitions are the partitions of the
	// internal topics __consumer_offsets and __transaction_state (Kafka's
	// offsets.topic.num.partitions and transaction.state.log.num.partitions; default 50 each).
	OffsetsTopicPartitions        int32
	TransactionStateLogPartitions int32
	// AutoCreateTopics creates unknown topics named in Metadata requests.
	AutoCreateTopics bool
	// WALSegmentBytes and WALMaxGroupBytes tune the file WAL (storage defaults when 0).
	WALSegmentBytes  int64
	WALMaxGroupBytes int
	// WALSegmentMaxAge also rotates a WAL segment by age (storage.WALOptions.SegmentMaxAge).
	WALSegmentMaxAge time.Duration
	// WALPreallocBytes: a WAL commit of less than a quarter of this that grows its segment writes this
	// many zeros past it, so the next commits overwrite blocks instead of growing the file
	// (storage.WALOptions.PreallocBytes; 0: storage.DefaultPreallocBytes, negative: never).
	WALPreallocBytes int64
	// MaxFrameBytes caps a request frame (default 100 MiB).
	MaxFrameBytes int32
	// MaxRequestMemoryBytes and MaxResponseMemoryBytes bound the request frames read but not
	// yet answered and the encoded responses not yet written, across all connections
	// (server defaults when 0; negative: unbounded).
	MaxRequestMemoryBytes  int64
	MaxResponseMemoryBytes int64
	Logger                 *slog.Logger
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time

	// Groups configures the consumer-group coordinator (initial rebalance delay, session
	// timeout bounds, offset retention; its log defaults to DataDir/meta/groups.log).
	Groups group.Config
	// TransactionMaxTimeout is transaction.max.timeout.ms (default 15 minutes).
	TransactionMaxTimeout time.Duration

	// RecoverDamaged starts even where recovery finds corruption (see broker/storage,
	// recovery.go): damaged bytes are moved into DataDir/damaged/ and everything moved or
	// skipped is logged at ERROR. Without it such a start fails, naming file and byte.
	RecoverDamaged bool
	// SASL turns on authentication (sasl.go).
	SASL SASLConfig
	// ACL turns on authorization (authorize.go).
	ACL ACLConfig

	// RetentionCheckInterval is how often retention runs (Kafka's
	// log.retention.check.interval.ms, default 5m); CompactionBackoff how often the cleaner
	// looks for logs to compact (log.cleaner.backoff.ms, default 15s).
	RetentionCheckInterval time.Duration
	CompactionBackoff      time.Duration
	// WALTrimInterval is how often WAL segments whose batches all live in partition
	// segments are deleted (default 1s; negative: never, the WAL keeps everything).
	WALTrimInterval time.Duration
	// NoSingleCopy writes every batch into the WAL and then into its partition's segment.
	// By default a hot partition's batches go into its segment only, made durable with the
	// WAL's group commit (broker/logstore, staged.go).
	NoSingleCopy bool
	// SingleCopyBytesPerSec is the rate from which a partition is single-copy (0: 32 MiB/s,
	// logstore.DefaultSingleCopyBytesPerSec).
	SingleCopyBytesPerSec int64

	// WAL and Meta replace the file stores (in-memory twins in unit tests). With a WAL
	// given and no Segments, partition segments live in memory and the WAL is never trimmed.
	WAL      storage.WAL
	Meta     storage.MetaLog
	Segments logstore.Store
	// Metrics receives the broker's metrics (broker/metrics); nil counts nothing.
	Metrics *metrics.Registry
	// QuotaWindowNum and QuotaWindow are Kafka's quota.window.num and
	// quota.window.size.seconds: client byte-rate quotas are measured over QuotaWindowNum
	// samples of QuotaWindow each (defaults 11 and 1s, as Kafka).
	QuotaWindowNum int
	QuotaWindow    time.Duration
	// ControllerQuotaWindowNum and ControllerQuotaWindow are Kafka's
	// controller.quota.window.num and controller.quota.window.size.seconds: a
	// controller_mutation_rate bucket holds ControllerQuotaWindowNum windows of the quota
	// (defaults 11 and 1s, as Kafka; independent of QuotaWindowNum, as there).
	ControllerQuotaWindowNum int
	ControllerQuotaWindow    time.Duration

	// StorageFaults injects write and fsync errors below the files of the WAL, meta.log,
	// groups.log and txns.log (disk-full tests).
	StorageFaults *storage.Faults

	// S3 configures the S3 tier (s3.go); no bucket: local-only.
	S3 S3Config
}

// Broker is one klite broker.
type Broker struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	wal     storage.WAL
	meta    storage.MetaLog
	dataDir string

	// Partition segment store (partition_log.go).
	segStore   logstore.Store
	drain      *logstore.Drain
	trimmable  bool     // the WAL is trimmed below the drain checkpoint (file mode)
	logCfgs    sync.Map // partition key -> logstore.Config
	lastAppend atomic.Int64
	idleSealed int64 // lastAppend when the jobs loop last sealed idle tails (jobs loop only)
	released   int64 // lastAppend when the jobs loop last released memory (jobs loop only)
	// idleGarbage: the jobs loop sealed idle tails since it last released memory (jobs loop only)
	idleGarbage bool
	trimMu      sync.Mutex // one trimWAL at a time; guards snapSeg
	snapSeg     uint64     // WAL checkpoint of the last producer-state snapshot
	jobsStop    chan struct{}
	jobsDone    chan struct{}
	advHost     string
	advPort     int32
	nodeID      int32
	srv         *server.Server
	srvMu       sync.Mutex
	closed      bool
	closeErr    error

	mu         sync.RWMutex // topics, topicsByID, deletedIDs, clusterID, producer ID allocator
	clusterID  string
	topics     map[string]*topic
	topicsByID map[[16]byte]*topic
	// deletedIDs are the IDs of deleted topics: WAL batches of theirs are skipped at replay,
	// while batches of an ID the metadata log never mentioned are corruption.
	deletedIDs map[[16]byte]bool

	pidMu       sync.Mutex
	nextPID     int64
	pidBlockEnd int64

	done chan struct{} // closed by Close: wakes waiting fetches

	fetchSessions fetchSessions // KIP-227 (fetch_session.go)
	notifyMu      sync.Mutex
	notifyCh      chan struct{} // closed and replaced whenever a high watermark moves

	// groups is the consumer-group coordinator (broker/group), created in Open after state
	// is loaded and closed in Close before storage.
	groups *group.Coordinator

	// txns is the transaction coordinator (broker/txn; wiring in txn_glue.go).
	txns *txn.Coordinator

	// recoveredSegs: WAL segments already kept aside by replayCorruption (load only).
	recoveredSegs map[uint64]bool
	orphanIDs     [][16]byte // topic IDs of batches recovery dropped (load only)
	// replayedTxnEpochs: the highest epoch of each transactional producer in the WAL and
	// where it was seen, checked against txns.log once that is loaded (load only).
	replayedTxnEpochs map[int64]replayedEpoch
	// createdLogs are the coordinator logs meta.log records as created (meta_logs.go).
	createdLogs map[string]bool

	// admin holds dynamic broker configs and DeleteRecords log starts (configs.go).
	admin adminState

	// scram holds SCRAM credentials (scram.go), guarded by mu.
	scram map[scramKey]scramCred
	// saslSecret salts the decoy credentials of unknown users (sasl.go).
	saslSecret [32]byte
	// saslReauths counts completed re-authentications (KIP-368).
	saslReauths atomic.Int64

	// acls holds the ACL bindings (acls.go); authz is acls with --acl-enabled, else nil.
	acls  *acl.Authorizer
	authz *acl.Authorizer
	aclMu sync.Mutex // serialises ACL changes with their metadata log records

	// metrics is cfg.Metrics (nil: off); scrape is its scrape-time collector (metrics_collect.go).
	metrics *metrics.Registry
	scrape  *collector
	// scrapeOps is the quotas, log jobs and S3 lag collector (metrics_ops.go).
	scrapeOps *opsCollector
	s3        *s3State // the S3 tier (s3.go); nil when local-only
	// s3meta writes the metadata snapshot to S3 (s3meta_flush.go); s3Confirmed is the data
	// path's hook saying what it has confirmed; restoredFromS3: this Open restored an empty
	// data directory from S3 (s3_restore.go).
	s3meta         *s3MetaState
	s3Confirmed    s3ConfirmedFunc
	restoredFromS3 bool
	// quotas holds the client quotas (client_quotas.go), quotaMgr enforces them
	// (quota_throttle.go).
	quotas   *quota.Store
	quotaMgr *quota.Manager
	// jobStats counts the log jobs' progress for /metrics (metrics_ops.go).
	jobStats logJobStats
	// s3FlushLag, when set, is read by /metrics for klite_s3_flush_lag_{bytes,seconds}
	// (metrics_ops.go); nil (no S3 tier, or not wired) exports neither. The S3 tier provides
	// (*Broker).S3FlushLag; Open sets this to it when the tier is on.
	s3FlushLag s3FlushLagFunc
}

// Open loads state from cfg.DataDir (replaying the metadata log and the WAL) and returns a
// broker ready to Serve.
func Open(cfg Config) (*Broker, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = 1
	}
	if cfg.OffsetsTopicPartitions <= 0 {
		cfg.OffsetsTopicPartitions = 50
	}
	if cfg.TransactionStateLogPartitions <= 0 {
		cfg.TransactionStateLogPartitions = 50
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "klite-data"
	}
	b := &Broker{
		cfg:        cfg,
		log:        cfg.Logger,
		now:        cfg.Now,
		dataDir:    cfg.DataDir,
		nodeID:     cfg.NodeID,
		topics:     map[string]*topic{},
		topicsByID: map[[16]byte]*topic{},
		deletedIDs: map[[16]byte]bool{},
		scram:      map[scramKey]scramCred{},
		quotas:     quota.NewStore(),
		notifyCh:   make(chan struct{}),
		done:       make(chan struct{}),
		metrics:    cfg.Metrics,
	}
	host, port, err := splitAdvertised(cfg.AdvertisedAddr)
	if err != nil {
		return nil, err
	}
	b.advHost, b.advPort = host, port
	b.quotaMgr = quota.NewManager(b.quotas, cfg.QuotaWindowNum, cfg.QuotaWindow.Milliseconds())
	b.quotaMgr.SetMutationWindow(cfg.ControllerQuotaWindowNum, cfg.ControllerQuotaWindow.Milliseconds())
	b.initACL()
	if err := b.initSASL(); err != nil {
		return nil, err
	}
	// One writer per S3 prefix: the lease comes before any local state is touched.
	if err := b.startS3(); err != nil {
		return nil, err
	}
	opened := false
	defer func() {
		if !opened {
			b.stopS3Meta(false)
			b.stopS3()
		}
	}()
	if err := b.openS3Meta(); err != nil {
		return nil, err
	}
	if err := b.restoreFromS3(); err != nil { // an empty data directory: from S3 (s3_restore.go)
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	b.meta = cfg.Meta
	if b.meta == nil {
		if b.meta, err = storage.OpenMetaLogWith(filepath.Join(cfg.DataDir, "meta.log"), b.metaOptions("")); err != nil {
			return nil, fmt.Errorf("opening metadata log: %w", err)
		}
	}
	b.wal = cfg.WAL
	if b.wal == nil {
		// CacheBytes: reads are served by the partition logs (their tails hold recent
		// data), so the WAL keeps only a little of what it wrote (it held 32 MiB of commit
		// groups, in direct mode on the heap, that nothing read).
		b.wal, err = storage.OpenWAL(storage.WALOptions{Dir: cfg.DataDir, SegmentBytes: cfg.WALSegmentBytes, MaxGroupBytes: cfg.WALMaxGroupBytes,
			SegmentMaxAge: cfg.WALSegmentMaxAge, CacheBytes: walCacheBytes, PreallocBytes: walPrealloc(cfg.WALPreallocBytes),
			Logger: b.log, OnIdle: releaseMemory, RecoverDamaged: cfg.RecoverDamaged, Faults: cfg.StorageFaults,
			OnSync: walMetricsHook(cfg.Metrics)})
		if err != nil {
			storage.CloseUnclean(b.meta)
			return nil, fmt.Errorf("opening WAL: %w", err)
		}
	}
	if err := b.openSegmentStore(); err != nil {
		storage.CloseUnclean(b.wal)
		storage.CloseUnclean(b.meta)
		return nil, err
	}
	if err := b.load(); err != nil {
		storage.CloseUnclean(b.wal)
		storage.CloseUnclean(b.meta)
		return nil, err
	}
	if err := b.bootstrapScram(); err != nil {
		storage.CloseUnclean(b.wal)
		storage.CloseUnclean(b.meta)
		return nil, fmt.Errorf("bootstrap SASL user: %w", err)
	}

	// Consumer groups: the coordinator keeps offsets and group metadata
	// in its own log, DataDir/meta/groups.log unless cfg.Groups says otherwise.
	gcfg := cfg.Groups
	if gcfg.Logger == nil {
		gcfg.Logger = b.log
	}
	if gcfg.TopicInfo == nil {
		b.groupTopics(&gcfg)
	}
	if gcfg.Log == nil && gcfg.Path == "" {
		gcfg.Path = filepath.Join(cfg.DataDir, "meta", "groups.log")
	}
	// Both coordinator logs at once: on a fresh data directory each costs two fsyncs (its
	// directory entry, its note in meta.log), which were a third of the start-up's.
	coordLogs := []*coordinatorLog{{name: "txns", path: filepath.Join(cfg.DataDir, "meta", "txns.log")}}
	if gcfg.Log == nil {
		coordLogs = append(coordLogs, &coordinatorLog{name: "groups", path: gcfg.Path})
	}
	if err := b.openCoordinatorLogs(coordLogs); err != nil {
		storage.CloseUnclean(b.wal)
		storage.CloseUnclean(b.meta)
		return nil, err
	}
	if len(coordLogs) > 1 {
		gcfg.Log = coordLogs[1].l
	}
	if b.groups, err = group.New(gcfg); err != nil {
		coordLogs[0].l.Close()
		storage.CloseUnclean(b.wal)
		storage.CloseUnclean(b.meta)
		return nil, fmt.Errorf("group coordinator: %w", err)
	}
	// Transactions: after WAL replay, so prepared ones can complete.
	if err := b.openTxns(coordLogs[0].l); err != nil {
		b.groups.Close()
		storage.CloseUnclean(b.wal)
		storage.CloseUnclean(b.meta)
		return nil, fmt.Errorf("transaction coordinator: %w", err)
	}
	b.registerMetrics() // metrics_collect.go

	b.startJobs()
	b.startS3Flush()
	b.startS3MetaWriter() // after the data path: it asks it what S3 holds

	opened = true
	return b, nil
}

// metaOptions configures one of the broker's metadata-style logs (meta.log, groups.log,
// txns.log); damaged bytes go to DataDir/damaged/<sub>.
func (b *Broker) metaOptions(sub string) storage.MetaOptions {
	return storage.MetaOptions{RecoverDamaged: b.cfg.RecoverDamaged, DamagedDir: filepath.Join(b.dataDir, storage.DamagedDirName, sub), Logger: b.log,
		Faults: b.cfg.StorageFaults}
}

func splitAdvertised(addr string) (string, int32, error) {
	if addr == "" {
		return "127.0.0.1", 9092, nil
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("advertised address %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 {
		return "", 0, fmt.Errorf("advertised address %q: bad port", addr)
	}
	return h, int32(port), nil
}

// ClusterID returns the persisted cluster ID.
func (b *Broker) ClusterID() string { return b.clusterID }

// DataDir returns the data directory.
func (b *Broker) DataDir() string { return b.dataDir }

// Serve serves the Kafka protocol on l until Close.
func (b *Broker) Serve(l net.Listener) error {
	b.srvMu.Lock()
	if b.closed {
		b.srvMu.Unlock()
		l.Close()
		return server.ErrServerClosed
	}
	if b.srv == nil {
		b.srv = server.New(server.Config{
			MaxFrameBytes:          b.cfg.MaxFrameBytes,
			MaxRequestMemoryBytes:  b.cfg.MaxRequestMemoryBytes,
			MaxResponseMemoryBytes: b.cfg.MaxResponseMemoryBytes,
			Logger:                 b.log,
			OnIdle:                 releaseMemory, // as the WAL's, once clients go quiet
			ConnOpened:             b.connOpened,  // metrics_glue.go
			ConnClosed:             b.connClosed,
			MaxConnections:         b.maxConnections, // the max.connections broker config
		}, b)
	}
	srv := b.srv
	b.srvMu.Unlock()
	return srv.Serve(l)
}

// Close stops serving (answering requests already read, waiting at most a few seconds), then
// flushes and closes storage. It is safe to call more than once.
func (b *Broker) Close() error {
	b.srvMu.Lock()
	if b.closed {
		b.srvMu.Unlock()
		return b.closeErr
	}
	b.closed = true
	srv := b.srv
	b.srvMu.Unlock()
	close(b.done)
	b.unregisterMetrics()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		srv.Shutdown(ctx)
		cancel()
	}
	b.stopJobs()
	errT := b.txns.Close()   // transactions
	errG := b.groups.Close() // consumer groups
	errS := b.sealAll()      // a restart then replays (almost) nothing
	if b.drain != nil {
		errS = errors.Join(errS, b.drain.Close()) // the unsealed tails' temporary files
	}
	errW := b.wal.Close()
	errM := b.meta.Close()
	if ds, ok := b.segStore.(*logstore.DirStore); ok {
		ds.CloseFiles() // the segment files zero-copy Fetch kept open
	}
	errS3 := b.stopS3() // after storage: the last upload, then the final metadata snapshot
	b.closeErr = errors.Join(errT, errG, errS, errW, errM, errS3)
	return b.closeErr
}

// Versions implements server.Dispatcher from the handler registry.
func (b *Broker) Versions(key int16) (int16, int16, bool) {
	h, ok := handlers[key]
	return h.min, h.max, ok
}

// Dispatch implements server.Dispatcher.
func (b *Broker) Dispatch(c *server.Conn, h *server.Header, req kmsg.Request, respond func(kmsg.Response)) {
	spec := handlers[h.Key]
	if !b.saslAdmits(c, h.Key) {
		respond(server.CloseConnection) // not authenticated (sasl.go)
		return
	}
	rc := &ReqCtx{Version: h.Version, ConnID: c.ID, ClientHost: c.RemoteHost(), Principal: c.Principal, Size: h.Size, conn: c}
	if h.ClientID != nil {
		rc.ClientID = *h.ClientID
	}
	respond, handled := b.quotaRequest(rc, h.Key, respond) // request_percentage (quota_throttle.go)
	defer handled()
	// A handler bug must not take the broker down: log it and close that connection.
	var responded atomic.Bool
	var start time.Time
	if b.metrics != nil {
		start = time.Now()
	}
	once := func(r kmsg.Response) {
		if responded.CompareAndSwap(false, true) {
			b.observeResponse(h.Key, start, r) // metrics_glue.go
			respond(r)
		}
	}
	defer func() {
		if v := recover(); v != nil {
			b.log.Error("handler panic", "api", kmsg.NameForKey(h.Key), "version", h.Version, "conn", c.ID, "panic", v, "stack", string(debug.Stack()))
			once(server.CloseConnection)
		}
	}()
	spec.fn(b, rc, req, once)
	b.noteAuthenticated(c)
}

// signalData wakes every waiting fetch: some high watermark moved.
func (b *Broker) signalData() {
	b.notifyMu.Lock()
	close(b.notifyCh)
	b.notifyCh = make(chan struct{})
	b.notifyMu.Unlock()
}

// dataChanged returns a channel closed at the next high watermark move.
func (b *Broker) dataChanged() <-chan struct{} {
	b.notifyMu.Lock()
	defer b.notifyMu.Unlock()
	return b.notifyCh
}

// walCacheBytes is what the WAL keeps cached of what it wrote (storage.WALOptions.CacheBytes).
const walCacheBytes = 1 << 20

// releaseMemory hands the memory of a burst of produce traffic back to the OS once the WAL
// is idle: without it an idle broker kept a burst's heap (pooled request frames, commit
// buffers; ~200 MB after the benchmark) until the runtime's forced collection minutes later.
// Two collections: pooled frames survive the first in the pool's victim cache.
func releaseMemory() {
	logstore.DropFreeBuffers()
	debug.FreeOSMemory()
	debug.FreeOSMemory()
}

// walPrealloc maps Config.WALPreallocBytes to storage.WALOptions.PreallocBytes.
func walPrealloc(n int64) int64 {
	switch {
	case n == 0:
		return storage.DefaultPreallocBytes
	case n < 0:
		return 0
	}
	return n
}
