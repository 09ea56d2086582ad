// Command klite runs a single-binary Kafka-compatible broker.
//
// Every flag has an environment variable: --data-dir is KLITE_DATA_DIR, and so on (upper
// case, dashes become underscores), and a key in the --config YAML file (data-dir).
// Precedence: flag, then variable, then file, then default (config.go).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klite/klite/broker"
	"github.com/klite/klite/broker/acl"
	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/broker/metrics"
	"github.com/klite/klite/broker/storage"
)

func main() {
	o, err := parse(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		usage(newFlagSet(&options{}), os.Stdout)
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "klite: %v (see klite --help)\n", err)
		os.Exit(2)
	}
	if o.showVersion {
		fmt.Println(versionLine())
		os.Exit(0)
	}
	if o.printConfg {
		printConfig(os.Stdout, o)
		os.Exit(0)
	}
	os.Exit(run(o, func() (*options, error) { return parse(os.Args[1:], os.Getenv) }))
}

// run serves until a signal; reload parses the configuration again (SIGHUP, ops.go).
func run(o *options, reload func() (*options, error)) int {
	level := new(slog.LevelVar) // changeable at run time (ops.go)
	lv, _ := parseLevel(o.logLevel)
	level.Set(lv)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	var reg *metrics.Registry
	if o.metrics && o.healthAddr != "" {
		reg = metrics.New()
	}

	var ready atomic.Bool
	var healthBound string
	var faults *storage.Faults // --test-storage-faults only
	if o.healthAddr != "" {
		hl, err := net.Listen("tcp", o.healthAddr)
		if err != nil {
			log.Error("health listener", "addr", o.healthAddr, "err", err)
			return 1
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
			if !ready.Load() {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok\n")
		})
		// Profiles for diagnosing performance; on the health address only, which should not be
		// exposed beyond the operator.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/heap", pprof.Index)
		if reg != nil {
			mux.Handle("/metrics", reg.Handler())
		}
		mux.Handle("/log-level", logLevelHandler(level, log)) // ops.go
		if o.testStorageFaults {
			faults = &storage.Faults{}
			mux.Handle("/debug/storage-faults", storageFaultsHandler(faults, log)) // faults.go
			log.Warn("TEST ONLY: --test-storage-faults is set; PUT /debug/storage-faults on the health address makes storage writes fail")
		}
		healthBound = hl.Addr().String()
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(hl)
		defer hs.Close()
	}

	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		log.Error("listen", "addr", o.listen, "err", err)
		return 1
	}
	tcfg, certs, err := tlsConfig(o)
	if err != nil {
		l.Close()
		log.Error("TLS", "err", err)
		return 1
	}
	if tcfg != nil {
		l = tls.NewListener(l, tcfg)
	}
	adv := advertised(o, l.Addr())
	mechs, _ := o.saslMechanisms() // validated in parse
	superUsers, _ := acl.ParseSuperUsers(o.superUsers)
	b, err := broker.Open(broker.Config{
		DataDir:                o.dataDir,
		ClusterID:              o.clusterID,
		AdvertisedAddr:         adv,
		DefaultPartitions:      int32(o.defaultPartitions),
		NodeID:                 int32(o.nodeID),
		AutoCreateTopics:       o.autoCreateTopics,
		WALSegmentBytes:        o.walSegmentBytes,
		WALSegmentMaxAge:       o.walSegmentAge,
		WALPreallocBytes:       walPreallocConfig(o.walPreallocBytes),
		WALMaxGroupBytes:       o.walGroupBytes,
		MaxFrameBytes:          int32(o.maxFrameBytes),
		MaxRequestMemoryBytes:  unboundedIfZero(max(o.maxReqMemory, 0)),
		MaxResponseMemoryBytes: unboundedIfZero(o.maxRespMemory),
		RecoverDamaged:         o.recoverDamaged,
		RetentionCheckInterval: o.retentionCheck,
		CompactionBackoff:      o.compactionBackoff,
		WALTrimInterval:        walTrim(o.walTrimInterval),
		NoSingleCopy:           !o.walSingleCopy,
		SingleCopyBytesPerSec:  o.walSingleCopyRate,
		StorageFaults:          faults,
		Logger:                 log,
		SASL: broker.SASLConfig{
			Enabled:    o.saslEnabled,
			Mechanisms: mechs,
			User:       o.saslUser,
			Password:   o.saslPassword,
			MaxReauth:  time.Duration(o.saslMaxReauthMs) * time.Millisecond,
		},
		ACL:                   broker.ACLConfig{Enabled: o.aclEnabled, SuperUsers: superUsers},
		Metrics:               reg,
		Groups:                o.groupConfig(),
		TransactionMaxTimeout: o.txnMaxTimeout,
		S3: broker.S3Config{Bucket: o.s3Bucket, Region: o.s3Region, Endpoint: o.s3Endpoint, Prefix: o.s3Prefix,
			FlushInterval: o.s3FlushInterval, CacheBytes: o.s3CacheBytes, TargetObjectBytes: o.s3TargetObjectBytes,
			LocalBudgetBytes: o.s3LocalBudgetBytes, LeaseTTL: o.s3LeaseTTL},
		QuotaWindowNum: o.quotaWindowNum,
		QuotaWindow:    o.quotaWindowSize,

		OffsetsTopicPartitions:        int32(o.offsetsPartitions),
		TransactionStateLogPartitions: int32(o.txnStatePartitions),
	})
	if err != nil {
		l.Close()
		if errors.Is(err, logstore.ErrLeaseHeld) {
			log.Error("refusing to start: another broker uses this S3 bucket and prefix", "err", err)
			return 1
		}
		if errors.Is(err, storage.ErrCorrupt) {
			log.Error("refusing to start: damaged data (restore the file, or start with --recover-damaged to move the damage aside and lose it knowingly)", "err", err)
			return 1
		}
		log.Error("starting broker", "err", err)
		return 1
	}
	// Before the "serving" line: a SIGTERM right after it must shut down cleanly.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	serveErr := make(chan error, 1)
	go func() { serveErr <- b.Serve(l) }()
	afterStart() // the collector's target
	releaseStartupPages()
	ready.Store(true)
	log.Info("klite serving", "listen", l.Addr().String(), "advertised", adv, "data_dir", o.dataDir, "cluster_id", b.ClusterID(),
		"tls", tcfg != nil, "mtls", o.tlsClientCA != "", "sasl", o.saslEnabled, "health", healthBound, "version", version())

	code := 0
wait:
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				if certs != nil {
					certs.reload(log)
				}
				reloadConfig(o, reload, level, log) // ops.go
				continue
			}
			log.Info("shutting down", "signal", s.String())
			break wait
		case err := <-serveErr:
			log.Error("serving stopped", "err", err)
			code = 1
			break wait
		}
	}
	ready.Store(false)
	// With the S3 tier, Close also runs the final upload round (bounded at 30 s) and writes
	// the last metadata snapshot: give it that long before calling the shutdown stuck.
	stopWithin := 8 * time.Second
	if o.s3Bucket != "" {
		stopWithin += 45 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopWithin)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		if err != nil {
			log.Error("closing storage", "err", err)
			return 1
		}
	case <-ctx.Done():
		log.Error("shutdown timed out")
		return 1
	}
	log.Info("stopped")
	return code
}

// unboundedIfZero maps a budget flag's 0 (unbounded) to the broker's negative.
func unboundedIfZero(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// defaultGCPercent is the garbage collector's target when GOGC is not set: collect once the
// heap has grown by a quarter of what was live (Go's default: by all of it). Under produce load
// the live heap is mostly large pointer-free buffers bounded by budgets (request frames by
// --queued-max-request-bytes, WAL commit groups, partition segment tails), which marking
// skips, so collecting sooner costs little CPU and keeps peak RSS near what is live (at 25
// instead of 50, peak RSS under the bench's 6-partition produce load fell by ~20 MB, the
// broker CPU per GB within the runs' noise).
// GOMEMLIMIT, if set, is the runtime's own safety net on top.
const defaultGCPercent = 25

// afterStart runs once the broker serves. It sets defaultGCPercent only now: during start-up
// the heap is small and mostly the packages' init tables, and with a lower percentage (50
// when this was measured) the runtime collected once there (its minimum heap is 4 MB
// scaled by the percentage): a tenth of the start-up's CPU time in a profile, to free next to nothing, and the median start-up to the first
// ApiVersions fell from ~16 to ~12 ms without it. Open's WAL replay still collects at Go's
// default (100) meanwhile. (Handing the start-up's
// garbage back with one more collection was tried: it left idle RSS higher, as the
// collection's own buffers outweigh what it frees.)
func afterStart() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
		startGCTuner()
	}
}

// walTrim maps --wal-trim-interval 0 (never) to the broker's negative "never".
func walTrim(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// walPreallocConfig maps --wal-preallocate-bytes (0: none) to broker.Config.WALPreallocBytes
// (0: the default, negative: none).
func walPreallocConfig(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}
