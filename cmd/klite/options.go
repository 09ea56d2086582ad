package main

// Command-line flags and KLITE_* environment variables: the options, their parsing and
// validation, and the advertised address (main.go runs the broker from them).

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klite/klite/broker/acl"
	"github.com/klite/klite/broker/group"
	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/broker/server"
	"github.com/klite/klite/broker/storage"
)

type options struct {
	listen            string
	advertisedAddr    string
	dataDir           string
	clusterID         string
	defaultPartitions int
	nodeID            int
	autoCreateTopics  bool
	logLevel          string
	healthAddr        string
	walSegmentBytes   int64
	walSegmentAge     time.Duration
	walGroupBytes     int
	walPreallocBytes  int64
	maxFrameBytes     int
	recoverDamaged    bool
	maxReqMemory      int64
	maxRespMemory     int64
	retentionCheck    time.Duration
	compactionBackoff time.Duration
	walTrimInterval   time.Duration
	walSingleCopy     bool
	walSingleCopyRate int64

	offsetsPartitions, txnStatePartitions int

	s3Bucket, s3Endpoint, s3Region, s3Prefix string
	s3FlushInterval                          time.Duration
	s3CacheBytes, s3TargetObjectBytes        int64
	s3LocalBudgetBytes                       int64
	s3LeaseTTL                               time.Duration

	saslEnabled                           bool
	saslMechanism, saslUser, saslPassword string
	saslMaxReauthMs                       int64

	tlsCert, tlsKey, tlsClientCA string

	aclEnabled bool
	superUsers string

	metrics bool

	testStorageFaults bool // test only: PUT /debug/storage-faults (faults.go)

	// Command-only flags (config.go): not configuration themselves.
	configFile              string
	showVersion, printConfg bool

	// values and sources: every flag's effective text and where it came from (config.go).
	values, sources map[string]string

	groupMaxSize, groupConsumerMaxSize int
	groupInitialRebalanceDelay         time.Duration
	groupMinSession, groupMaxSession   time.Duration
	offsetsRetention, txnMaxTimeout    time.Duration
	groupMigrationPolicy               string

	quotaWindowNum  int
	quotaWindowSize time.Duration
}

func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("klite", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", ":9092", "address to accept Kafka clients on (host:port)")
	fs.StringVar(&o.advertisedAddr, "advertised-addr", "", "host[:port] clients are told to connect to (default: derived from --listen; this machine's hostname, or 127.0.0.1, when the listen host is empty or 0.0.0.0)")
	fs.StringVar(&o.dataDir, "data-dir", "./klite-data", "directory for the write-ahead log and metadata")
	fs.StringVar(&o.clusterID, "cluster-id", "", "cluster ID to use on first start (default: generated once and persisted)")
	fs.IntVar(&o.nodeID, "node-id", 0, "this broker's node ID in Metadata, FindCoordinator and DescribeCluster (Kafka's node.id)")
	fs.IntVar(&o.defaultPartitions, "default-partitions", 1, "partitions of auto-created topics and of CreateTopics with -1")
	fs.IntVar(&o.offsetsPartitions, "offsets-topic-partitions", 50, "partitions of the internal topic __consumer_offsets, created at the first FindCoordinator for a group (Kafka's offsets.topic.num.partitions)")
	fs.IntVar(&o.txnStatePartitions, "transaction-state-log-partitions", 50, "partitions of the internal topic __transaction_state, created at the first FindCoordinator for a transactional ID (Kafka's transaction.state.log.num.partitions)")
	fs.BoolVar(&o.autoCreateTopics, "auto-create-topics", true, "create unknown topics when clients ask for their metadata")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.healthAddr, "health-addr", "", "address for the HTTP health endpoints /livez and /readyz (disabled when empty)")
	fs.Int64Var(&o.walSegmentBytes, "wal-segment-bytes", 256<<20, "size at which the write-ahead log starts a new segment file")
	fs.DurationVar(&o.walSegmentAge, "wal-segment-age", 30*time.Second, "age at which the write-ahead log starts a new segment file at the next write, so drained data leaves the disk under a slow load too (0: by size only)")
	fs.Int64Var(&o.walPreallocBytes, "wal-preallocate-bytes", storage.DefaultPreallocBytes, "a commit of less than a quarter of this that grows the write-ahead log's segment writes this many zeros past it, so the next commits overwrite blocks instead of growing the file (whose fsync then writes metadata too); direct I/O only; 0: never")
	fs.IntVar(&o.walGroupBytes, "wal-group-commit-bytes", storage.DefaultMaxGroupBytes, "most batch bytes made durable by one group commit (batches copied into the WAL: at most 2 MiB per group)")
	fs.IntVar(&o.maxFrameBytes, "max-frame-bytes", 100<<20, "largest request frame accepted; larger frames close the connection")
	fs.BoolVar(&o.recoverDamaged, "recover-damaged", false, "start even if recovery finds damaged data: move it into <data-dir>/damaged/ and log at ERROR what was moved (data loss you choose knowingly)")
	fs.Int64Var(&o.maxReqMemory, "queued-max-request-bytes", server.DefaultMaxRequestMemoryBytes, "bytes of requests read but not yet answered, across all connections, and of the pool of request buffers (Kafka's queued.max.request.bytes); connections stop reading above it, a larger request is read alone (-1 or 0: unbounded)")
	fs.Int64Var(&o.maxRespMemory, "max-response-memory-bytes", 1<<30, "bytes of responses waiting to be written, across all connections, and as much for answers being built (Metadata, estimated); connections stop reading above it (0: unbounded)")
	fs.DurationVar(&o.retentionCheck, "retention-check-interval", 5*time.Minute, "how often retention (retention.ms, retention.bytes) deletes old segments (Kafka's log.retention.check.interval.ms)")
	fs.DurationVar(&o.compactionBackoff, "compaction-backoff", 15*time.Second, "how often the cleaner looks for compacted topics to clean (Kafka's log.cleaner.backoff.ms)")
	fs.BoolVar(&o.walSingleCopy, "wal-single-copy", true, "write a hot partition's batches only into its segment, made durable with the WAL's group commit (the WAL keeps their headers); false: every batch goes into the WAL and then into its segment")
	fs.Int64Var(&o.walSingleCopyRate, "wal-single-copy-bytes-per-sec", logstore.DefaultSingleCopyBytesPerSec, "bytes a second from which a partition is single-copy (--wal-single-copy): below it every batch goes into the WAL and then its segment, which answers sooner")
	fs.DurationVar(&o.walTrimInterval, "wal-trim-interval", time.Second, "how often WAL segments whose data all lives in partition segments are deleted (0: never; the WAL then keeps everything, for inspecting recovery)")
	fs.StringVar(&o.s3Bucket, "s3-bucket", "", "S3 bucket for the storage tier (empty: local-only); credentials from the standard AWS chain")
	fs.StringVar(&o.s3Endpoint, "s3-endpoint", "", "URL of an S3-compatible server (path-style addressing); empty: AWS")
	fs.StringVar(&o.s3Region, "s3-region", "", "S3 region (default: the AWS SDK's chain, else us-east-1)")
	fs.StringVar(&o.s3Prefix, "s3-prefix", "", "key prefix inside the S3 bucket; one broker per bucket and prefix")
	fs.DurationVar(&o.s3FlushInterval, "s3-flush-interval", 10*time.Second, "longest time produced data waits before going to S3 (the loss window if the disk is lost)")
	fs.Int64Var(&o.s3CacheBytes, "s3-cache-bytes", 1<<30, "local disk budget for caching S3-resident segments read back")
	fs.Int64Var(&o.s3TargetObjectBytes, "s3-target-object-bytes", 64<<20, "size at which a partition's segment is sealed and uploaded to S3")
	fs.Int64Var(&o.s3LocalBudgetBytes, "s3-local-budget-bytes", 10<<30, "local disk for partition segments with S3: confirmed ones are evicted past it; produce answers KAFKA_STORAGE_ERROR while data not yet in S3 reaches it")
	fs.DurationVar(&o.s3LeaseTTL, "s3-lease-ttl", 30*time.Second, "lifetime of the S3 writer lease unrenewed (renewed every third of it); a broker started after one was killed waits this long at most")
	fs.BoolVar(&o.saslEnabled, "sasl-enabled", false, "require SASL authentication on every connection")
	fs.StringVar(&o.saslMechanism, "sasl-mechanism", "PLAIN", "enabled SASL mechanisms, one or a comma list of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
	fs.StringVar(&o.saslUser, "sasl-user", "", "bootstrap SASL user (PLAIN, and SCRAM credentials for every enabled SCRAM mechanism)")
	fs.StringVar(&o.saslPassword, "sasl-password", "", "bootstrap SASL user's password")
	fs.Int64Var(&o.saslMaxReauthMs, "sasl-max-reauth-ms", 0, "SASL session lifetime before the client must re-authenticate (Kafka's connections.max.reauth.ms; 0: never)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate (chain) that makes --listen a TLS listener; reloaded on SIGHUP")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&o.tlsClientCA, "tls-client-ca", "", "PEM CA bundle: require client certificates signed by it (mTLS; the subject is the principal)")
	fs.BoolVar(&o.aclEnabled, "acl-enabled", false, "enforce ACLs (CreateAcls/DescribeAcls/DeleteAcls; no ACL found means denied)")
	fs.StringVar(&o.superUsers, "super-users", "", "principals allowed everything, semicolon separated (\"User:admin;User:ops\")")
	fs.BoolVar(&o.metrics, "metrics", true, "serve Prometheus metrics on /metrics of --health-addr (false: count nothing)")
	fs.BoolVar(&o.testStorageFaults, "test-storage-faults", false, "TEST ONLY, never in production: serve PUT /debug/storage-faults on --health-addr, which makes writes and fsyncs below the WAL and metadata logs fail (chaos tests)")
	fs.StringVar(&o.configFile, "config", "", "YAML file of settings, keys named as the flags (flag > KLITE_* environment > file > default)")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	fs.BoolVar(&o.printConfg, "print-config", false, "print the effective configuration (secrets masked) and exit")
	fs.DurationVar(&o.groupInitialRebalanceDelay, "group-initial-rebalance-delay", 0, "how long a new classic group's first rebalance waits for more members (Kafka's group.initial.rebalance.delay.ms, whose default is 3s)")
	fs.DurationVar(&o.groupMinSession, "group-min-session-timeout", 6*time.Second, "smallest session timeout a classic group member may ask for (Kafka's group.min.session.timeout.ms)")
	fs.DurationVar(&o.groupMaxSession, "group-max-session-timeout", 30*time.Minute, "largest session timeout a classic group member may ask for (Kafka's group.max.session.timeout.ms)")
	fs.DurationVar(&o.offsetsRetention, "offsets-retention", 7*24*time.Hour, "how long an empty group's committed offsets are kept (Kafka's offsets.retention.minutes)")
	fs.DurationVar(&o.txnMaxTimeout, "transaction-max-timeout", 15*time.Minute, "largest transaction timeout a producer may ask for (Kafka's transaction.max.timeout.ms)")
	fs.IntVar(&o.groupMaxSize, "group-max-size", 0, "most members of a classic consumer group (Kafka's group.max.size; 0: unlimited)")
	fs.IntVar(&o.groupConsumerMaxSize, "group-consumer-max-size", 0, "most members of a KIP-848 consumer group, either protocol (Kafka's group.consumer.max.size; 0: unlimited)")
	fs.StringVar(&o.groupMigrationPolicy, "group-consumer-migration-policy", "bidirectional", "online conversions of groups with members between the classic and consumer protocols: bidirectional, upgrade, downgrade or disabled (Kafka's group.consumer.migration.policy)")
	fs.IntVar(&o.quotaWindowNum, "quota-window-num", 11, "samples client byte-rate quotas are measured over (Kafka's quota.window.num)")
	fs.DurationVar(&o.quotaWindowSize, "quota-window-size", time.Second, "length of one quota sample (Kafka's quota.window.size.seconds)")
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// groupConfig is the group coordinator's part of the options.
func (o *options) groupConfig() group.Config {
	return group.Config{MaxGroupSize: o.groupMaxSize, ConsumerMaxGroupSize: o.groupConsumerMaxSize,
		MigrationPolicy: o.groupMigrationPolicy, InitialRebalanceDelay: o.groupInitialRebalanceDelay,
		MinSessionTimeout: o.groupMinSession, MaxSessionTimeout: o.groupMaxSession, OffsetsRetention: o.offsetsRetention}
}

// envName maps a flag name to its environment variable.
func envName(flagName string) string {
	return "KLITE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "klite: a Kafka-compatible broker in one binary.\n\nUsage: klite [flags]\n\nEvery flag can also be set by its environment variable (shown in brackets) or by a key of\nthe same name in the --config YAML file; a flag wins over its variable, a variable over the file.\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "version" || f.Name == "print-config" { // command-only: no variable, no file key
			fmt.Fprintf(w, "  --%s\n      %s\n", f.Name, f.Usage)
			return
		}
		fmt.Fprintf(w, "  --%s [%s]\n      %s (default %q)\n", f.Name, envName(f.Name), f.Usage, f.DefValue)
	})
}

// parse reads flags, then environment variables for flags not given, then validates.
func parse(args []string, getenv func(string) string) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	o.sources = map[string]string{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true; o.sources[f.Name] = srcFlag })
	if o.showVersion {
		return o, nil
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil || f.Name == "version" || f.Name == "print-config" {
			return
		}
		if v, ok := lookup(getenv, envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s: %v", v, envName(f.Name), err)
			}
			set[f.Name] = true
			o.sources[f.Name] = "env " + envName(f.Name)
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if o.configFile != "" {
		if err := applyConfigFile(fs, o.configFile, set, o.sources); err != nil {
			return nil, err
		}
	}
	o.values = map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		o.values[f.Name] = f.Value.String()
		if o.sources[f.Name] == "" {
			o.sources[f.Name] = srcDefault
		}
	})
	return o, o.validate()
}

func lookup(getenv func(string) string, k string) (string, bool) {
	v := getenv(k)
	return v, v != ""
}

func (o *options) validate() error {
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		return fmt.Errorf("invalid --listen %q: want host:port", o.listen)
	}
	if o.advertisedAddr != "" {
		if h, p, err := net.SplitHostPort(o.advertisedAddr); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 || h == "" {
				return fmt.Errorf("invalid --advertised-addr %q: want host[:port]", o.advertisedAddr)
			}
		} else if strings.Contains(o.advertisedAddr, ":") && !strings.HasPrefix(o.advertisedAddr, "[") {
			return fmt.Errorf("invalid --advertised-addr %q: want host[:port]", o.advertisedAddr)
		}
	}
	if o.dataDir == "" {
		return errors.New("invalid --data-dir: must not be empty")
	}
	switch {
	case o.groupInitialRebalanceDelay < 0:
		return fmt.Errorf("invalid --group-initial-rebalance-delay %v: must not be negative", o.groupInitialRebalanceDelay)
	case o.groupMinSession <= 0 || o.groupMaxSession < o.groupMinSession:
		return fmt.Errorf("invalid --group-min-session-timeout %v / --group-max-session-timeout %v: want 0 < min <= max", o.groupMinSession, o.groupMaxSession)
	case o.offsetsRetention < time.Minute:
		return fmt.Errorf("invalid --offsets-retention %v: want at least 1m", o.offsetsRetention)
	case o.txnMaxTimeout < time.Millisecond:
		return fmt.Errorf("invalid --transaction-max-timeout %v: want at least 1ms", o.txnMaxTimeout)
	}
	if o.nodeID < 0 || o.nodeID > math.MaxInt32 {
		return fmt.Errorf("invalid --node-id %d: want 0..%d", o.nodeID, math.MaxInt32)
	}
	if o.offsetsPartitions < 1 || o.offsetsPartitions > 100000 || o.txnStatePartitions < 1 || o.txnStatePartitions > 100000 {
		return fmt.Errorf("invalid internal topic partitions (--offsets-topic-partitions %d, --transaction-state-log-partitions %d): want 1..100000", o.offsetsPartitions, o.txnStatePartitions)
	}
	if o.defaultPartitions < 1 || o.defaultPartitions > 100000 {
		return fmt.Errorf("invalid --default-partitions %d: want 1..100000", o.defaultPartitions)
	}
	if _, err := parseLevel(o.logLevel); err != nil {
		return err
	}
	if o.healthAddr != "" {
		if _, _, err := net.SplitHostPort(o.healthAddr); err != nil {
			return fmt.Errorf("invalid --health-addr %q: want host:port", o.healthAddr)
		}
	}
	if o.testStorageFaults && o.healthAddr == "" {
		return fmt.Errorf("--test-storage-faults needs --health-addr (its endpoint lives there)")
	}
	if o.walTrimInterval < 0 {
		return fmt.Errorf("invalid --wal-trim-interval %s: want 0 (never) or a positive duration", o.walTrimInterval)
	}
	if o.retentionCheck <= 0 || o.compactionBackoff <= 0 {
		return fmt.Errorf("invalid --retention-check-interval %s / --compaction-backoff %s: want a positive duration", o.retentionCheck, o.compactionBackoff)
	}
	if o.walSegmentBytes < 1<<20 {
		return fmt.Errorf("invalid --wal-segment-bytes %d: want at least 1048576", o.walSegmentBytes)
	}
	if o.walSegmentAge < 0 {
		return fmt.Errorf("invalid --wal-segment-age %s: want 0 (by size only) or a positive duration", o.walSegmentAge)
	}
	if o.walSingleCopyRate < 1 {
		return fmt.Errorf("invalid --wal-single-copy-bytes-per-sec %d: want a positive rate", o.walSingleCopyRate)
	}
	if o.walPreallocBytes < 0 || o.walPreallocBytes > 16<<20 {
		return fmt.Errorf("invalid --wal-preallocate-bytes %d: want 0 (never) to 16777216", o.walPreallocBytes)
	}
	if o.walGroupBytes < 64<<10 {
		return fmt.Errorf("invalid --wal-group-commit-bytes %d: want at least 65536", o.walGroupBytes)
	}
	if o.maxFrameBytes < 1<<10 || o.maxFrameBytes > 1<<30 {
		return fmt.Errorf("invalid --max-frame-bytes %d: want 1024..1073741824", o.maxFrameBytes)
	}
	if o.maxReqMemory < -1 || o.maxRespMemory < 0 {
		return fmt.Errorf("invalid memory budget (--queued-max-request-bytes %d, --max-response-memory-bytes %d): want -1 or 0 (unbounded) or more", o.maxReqMemory, o.maxRespMemory)
	}
	if o.quotaWindowNum < 1 || o.quotaWindowNum > 1000 || o.quotaWindowSize < 10*time.Millisecond {
		return fmt.Errorf("invalid quota window (--quota-window-num %d, --quota-window-size %s): want 1..1000 samples of at least 10ms", o.quotaWindowNum, o.quotaWindowSize)
	}
	if o.s3FlushInterval <= 0 {
		return fmt.Errorf("invalid --s3-flush-interval %s: must be positive", o.s3FlushInterval)
	}
	if o.s3LeaseTTL < time.Second || o.s3LeaseTTL > 24*time.Hour {
		return fmt.Errorf("invalid --s3-lease-ttl %s: want 1s to 24h", o.s3LeaseTTL)
	}
	if o.s3Bucket == "" && (o.s3Endpoint != "" || o.s3Prefix != "" || o.s3Region != "") {
		return errors.New("--s3-endpoint, --s3-prefix and --s3-region need --s3-bucket")
	}
	if o.s3LocalBudgetBytes < 2*o.s3TargetObjectBytes {
		return fmt.Errorf("invalid --s3-local-budget-bytes %d: want at least twice --s3-target-object-bytes (%d)", o.s3LocalBudgetBytes, o.s3TargetObjectBytes)
	}
	if o.s3CacheBytes < 1<<20 || o.s3TargetObjectBytes < 1<<20 || o.s3TargetObjectBytes > 5<<30 {
		return fmt.Errorf("invalid --s3-cache-bytes %d or --s3-target-object-bytes %d: want at least 1048576 (objects at most 5 GiB)", o.s3CacheBytes, o.s3TargetObjectBytes)
	}
	if _, err := o.saslMechanisms(); err != nil {
		return err
	}
	if o.saslEnabled && (o.saslUser == "" || o.saslPassword == "") {
		return errors.New("--sasl-enabled needs a bootstrap user: set --sasl-user and --sasl-password (or KLITE_SASL_USER and KLITE_SASL_PASSWORD)")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") || o.tlsClientCA != "" && o.tlsCert == "" {
		return errors.New("--tls-cert and --tls-key go together, and --tls-client-ca needs them")
	}
	if o.groupMaxSize < 0 || o.groupConsumerMaxSize < 0 {
		return fmt.Errorf("invalid group size (--group-max-size %d, --group-consumer-max-size %d): want 0 (unlimited) or more", o.groupMaxSize, o.groupConsumerMaxSize)
	}
	if !slices.Contains(group.MigrationPolicies, strings.ToLower(o.groupMigrationPolicy)) {
		return fmt.Errorf("invalid --group-consumer-migration-policy %q: want one of %s", o.groupMigrationPolicy, strings.Join(group.MigrationPolicies, ", "))
	}
	if _, err := acl.ParseSuperUsers(o.superUsers); err != nil {
		return fmt.Errorf("invalid --super-users: %w", err)
	}
	if o.saslMaxReauthMs < 0 {
		return fmt.Errorf("invalid --sasl-max-reauth-ms %d: must not be negative", o.saslMaxReauthMs)
	}
	return nil
}

// saslMechanisms splits --sasl-mechanism into its distinct, valid names.
func (o *options) saslMechanisms() ([]string, error) {
	var out []string
	for _, m := range strings.Split(o.saslMechanism, ",") {
		m = strings.ToUpper(strings.TrimSpace(m))
		switch m {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return nil, fmt.Errorf("invalid --sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, or a comma list of them", o.saslMechanism)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", s)
}

// advertised derives the address clients are told to use from the bound listener.
func advertised(o *options, bound net.Addr) string {
	_, port, _ := net.SplitHostPort(bound.String())
	if o.advertisedAddr != "" {
		if _, _, err := net.SplitHostPort(o.advertisedAddr); err == nil {
			return o.advertisedAddr
		}
		return net.JoinHostPort(strings.Trim(o.advertisedAddr, "[]"), port)
	}
	host, _, _ := net.SplitHostPort(o.listen)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
		// The hostname is what other machines would use; take it only when it resolves.
		if hn, err := os.Hostname(); err == nil && hn != "" {
			if addrs, err := net.LookupHost(hn); err == nil && len(addrs) > 0 {
				host = hn
			}
		}
	}
	return net.JoinHostPort(host, port)
}
