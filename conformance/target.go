package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// Target is a broker the scenarios run against.
type Target struct {
	Name    string // "klite", "klite-s3" (target_s3.go) or "kafka"
	Addr    string // host:port once started
	Version string
	APIs    []APIVersion
	cmd     *exec.Cmd
	done    chan struct{}
	dir     string
	log     *tailBuffer
	admin   *kadm.Client
	kcl     *kgo.Client
	ownDir  bool

	root     string
	saslAddr string    // kafka: its SASL_PLAINTEXT listener (run-kafka.sh)
	saslOpts []kgo.Opt // the harness's own clients authenticate on a SASL target
	shared   bool      // a view of another target's process: Stop leaves the process alone
	saslMu   sync.Mutex
	sasl     *Target // the SASL variant, started on first use
	acl      *Target // the SASL variant with ACLs enforced, started on first use

	// TLS: the PEM files of a TLS target (tls.go); connOpts dial it; tlsVariants by kind.
	TLS         *TLSFiles
	connOpts    []kgo.Opt
	tlsVariants map[string]*Target
	tlsKafka    *Target           // kafka: the process with the TLS listeners
	tlsAddrs    map[string]string // kafka: its listener per kind

	release func() // klite-s3: lets go of the shared moto server (Stop)
}

// SASL credentials of the bootstrap user on SASL targets (run-kafka.sh has the same).
const (
	SASLAdminUser     = "admin"
	SASLAdminPassword = "admin-secret"
)

// APIVersion is one line of an ApiVersions answer.
type APIVersion struct {
	Key  int16  `json:"key"`
	Name string `json:"name"`
	Min  int16  `json:"min"`
	Max  int16  `json:"max"`
}

// TargetNames are the targets the harness knows, in table order.
var TargetNames = []string{"klite", S3TargetName, "kafka"}

// kliteTestEnv is the klite target's environment on top of the harness's: the retention check
// and the compaction backoff of run-kafka.sh's Kafka (log.retention.check.interval.ms and
// log.cleaner.backoff.ms, 1 s each).
var kliteTestEnv = []string{"KLITE_RETENTION_CHECK_INTERVAL=1s", "KLITE_COMPACTION_BACKOFF=1s",
	"KLITE_OFFSETS_TOPIC_PARTITIONS=1", "KLITE_TRANSACTION_STATE_LOG_PARTITIONS=1"}

// StartTarget starts a target (or attaches to an external address when addr is set).
func StartTarget(ctx context.Context, root, name, addr string) (*Target, error) {
	return startTarget(ctx, root, name, addr, "")
}

// SASLVariant returns the target for `security: sasl` scenarios, starting it on first use, so
// the plaintext matrix never pays for it: for kafka, the SASL_PLAINTEXT listener of the same
// process; for klite, a second klite with --sasl-enabled (PLAIN and both SCRAMs).
func (t *Target) SASLVariant(ctx context.Context) (*Target, error) {
	t.saslMu.Lock()
	defer t.saslMu.Unlock()
	if t.sasl != nil {
		return t.sasl, nil
	}
	var v *Target
	switch {
	case t.Name == "kafka" && t.saslAddr != "":
		v = &Target{Name: t.Name, Addr: t.saslAddr, Version: t.Version, APIs: t.APIs, cmd: t.cmd, done: t.done, log: t.log, shared: true}
		v.saslOpts = saslAdminOpts()
		if err := v.connectAdmin(); err != nil {
			return nil, err
		}
	case isKlite(t.Name) && t.cmd != nil:
		var err error
		if v, err = startTarget(ctx, t.root, t.Name, "", "sasl"); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s target at %s: SASL scenarios need a target the harness starts", t.Name, t.Addr)
	}
	t.sasl = v
	return v, nil
}

// ACLVariant returns the target for scenarios with `acls`, starting it on first use: a SASL
// target that enforces ACLs, with the harness's admin as super user and no ACL meaning denied.
// For kafka a second process with StandardAuthorizer (run-kafka.sh, KAFKA_ACL=1), reached on
// its SASL listener; for klite a klite with --sasl-enabled --acl-enabled --super-users User:admin.
func (t *Target) ACLVariant(ctx context.Context) (*Target, error) {
	t.saslMu.Lock()
	defer t.saslMu.Unlock()
	if t.acl != nil {
		return t.acl, nil
	}
	if t.cmd == nil {
		return nil, fmt.Errorf("%s target at %s: ACL scenarios need a target the harness starts", t.Name, t.Addr)
	}
	v, err := startTarget(ctx, t.root, t.Name, "", "acl")
	if err != nil {
		return nil, err
	}
	t.acl = v
	return v, nil
}

func saslAdminOpts() []kgo.Opt {
	return []kgo.Opt{kgo.SASL(plain.Auth{User: SASLAdminUser, Pass: SASLAdminPassword}.AsMechanism())}
}

// startTarget starts a target; mode is "" (plaintext), "sasl", "acl" (SASL with ACLs), or a TLS
// kind: "tls", "mtls", "sasl-ssl" (klite; kafka takes "tls" and serves every kind).
func startTarget(ctx context.Context, root, name, addr string, mode string) (*Target, error) {
	t := &Target{Name: name, log: &tailBuffer{max: 16 << 10}, root: root}
	tlsMode := mode == "tls" || mode == "mtls" || mode == "sasl-ssl"
	if (mode == "sasl" || mode == "acl" || mode == "sasl-ssl") && isKlite(name) {
		t.saslOpts = saslAdminOpts()
	}
	if addr != "" {
		t.Addr = addr
		t.Version = name + " (external at " + addr + ")"
		return t, t.await(ctx, 30*time.Second)
	}
	dir, err := os.MkdirTemp("", "klite-conformance-"+name+"-")
	if err != nil {
		return nil, err
	}
	t.dir, t.ownDir = dir, true
	if tlsMode {
		if t.TLS, err = writeTLSFiles(dir); err != nil {
			return nil, err
		}
		if isKlite(name) {
			if err := t.setTLSOpts(mode); err != nil {
				return nil, err
			}
		}
	}
	var args, s3env []string
	var wait time.Duration
	switch name {
	case "klite", S3TargetName:
		bin := filepath.Join(root, "bin", "klite")
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("klite target: %s missing; run `make build`", bin)
		}
		port, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		t.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		// Node 1, as the Kafka target (run-kafka.sh), so node IDs in answers and tool output
		// compare as they are; two quota samples, as the Kafka target: the quotas scenario
		// measures a throttled producer over a few seconds, which Kafka's default of 11
		// samples, with its initial burst of ten windows' worth, does not allow.
		args = []string{bin, "--listen", t.Addr, "--data-dir", filepath.Join(dir, "data"), "--node-id", "1",
			"--quota-window-num", "2"}
		if mode == "sasl" || mode == "acl" || mode == "sasl-ssl" {
			args = append(args, "--sasl-enabled", "--sasl-mechanism", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
				"--sasl-user", SASLAdminUser, "--sasl-password", SASLAdminPassword)
		}
		if tlsMode {
			args = append(args, "--tls-cert", t.TLS.ServerCert, "--tls-key", t.TLS.ServerKey)
		}
		if mode == "mtls" {
			args = append(args, "--tls-client-ca", t.TLS.CA)
		}
		if mode == "acl" {
			args = append(args, "--acl-enabled", "--super-users", "User:"+SASLAdminUser)
		}
		t.Version = "klite " + gitDescribe(root)
		wait = 20 * time.Second
		if name == S3TargetName {
			s3args, env, release, err := s3TargetArgs(mode)
			if err != nil {
				return nil, err
			}
			args, s3env, t.release = append(args, s3args...), env, release
			t.Version += " on S3 (moto " + motoVersion(root) + ")"
		}
	case "kafka":
		if _, err := exec.LookPath("java"); err != nil {
			return nil, fmt.Errorf("kafka target: java not found on PATH; install a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless) and run `make kafka-jars`")
		}
		jars, _ := filepath.Glob(filepath.Join(root, ".cache", "kafka", "libs", "kafka_2.13-*.jar"))
		if len(jars) == 0 {
			return nil, fmt.Errorf("kafka target: Kafka jars missing in .cache/kafka/libs; run `make kafka-jars` (needs Maven: apt-get install maven)")
		}
		port, err := freePorts(6)
		if err != nil {
			return nil, err
		}
		t.tlsAddrs = map[string]string{"tls": fmt.Sprintf("127.0.0.1:%d", port+3),
			"sasl-ssl": fmt.Sprintf("127.0.0.1:%d", port+4), "mtls": fmt.Sprintf("127.0.0.1:%d", port+5)}
		t.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		t.saslAddr = fmt.Sprintf("127.0.0.1:%d", port+2)
		args = []string{"bash", filepath.Join(root, "conformance", "kafka", "run-kafka.sh"), fmt.Sprint(port), dir}
		t.Version = "Apache Kafka " + strings.TrimSuffix(strings.TrimPrefix(filepath.Base(jars[0]), "kafka_2.13-"), ".jar")
		wait = 120 * time.Second
	default:
		return nil, fmt.Errorf("unknown target %q (known: %s)", name, strings.Join(TargetNames, ", "))
	}
	t.cmd = exec.Command(args[0], args[1:]...)
	t.cmd.Dir = root
	if isKlite(name) {
		// Retention and compaction act within seconds, as on the Kafka target (run-kafka.sh), so
		// the retention-* and compaction scenarios finish quickly. Environment variables rather
		// than flags: a klite without these flags ignores unknown KLITE_* variables.
		t.cmd.Env = append(append(os.Environ(), kliteTestEnv...), s3env...)
	}
	if mode == "acl" && name == "kafka" {
		t.cmd.Env = append(os.Environ(), "KAFKA_ACL=1")
	}
	if tlsMode && name == "kafka" {
		t.cmd.Env = append(os.Environ(), "KAFKA_TLS_DIR="+dir)
	}
	t.cmd.Stdout, t.cmd.Stderr = t.log, t.log
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := t.cmd.Start(); err != nil {
		if t.release != nil {
			t.release()
		}
		return nil, fmt.Errorf("%s target: %v", name, err)
	}
	t.done = make(chan struct{})
	go func() { t.cmd.Wait(); close(t.done) }()
	if err := t.await(ctx, wait); err != nil {
		t.Stop()
		return nil, err
	}
	if mode == "acl" && name == "kafka" { // clients and the harness use the SASL listener
		t.kcl.Close()
		t.Addr, t.saslOpts = t.saslAddr, saslAdminOpts()
		if err := t.connectAdmin(); err != nil {
			t.Stop()
			return nil, err
		}
	}
	return t, nil
}

// await polls ApiVersions until the target answers, then records its API table.
func (t *Target) await(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	var last error
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		if t.done != nil {
			select {
			case <-t.done:
				return fmt.Errorf("%s target exited before answering ApiVersions (%s); output tail:\n%s",
					t.Name, t.cmd.ProcessState, t.log.String())
			default:
			}
		}
		if err := t.fetchAPIVersions(ctx); err == nil {
			return t.connectAdmin()
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s target at %s did not answer ApiVersions within %v: %v; output tail:\n%s",
		t.Name, t.Addr, wait, last, t.log.String())
}

func (t *Target) fetchAPIVersions(ctx context.Context) error {
	conn, err := net.DialTimeout("tcp", t.Addr, time.Second)
	if err != nil {
		return err
	}
	conn.Close()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(t.Addr), kgo.RequestRetries(0)}, t.connOpts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "klite-conformance", "1"
	resp, err := req.RequestWith(rctx, cl)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	t.APIs = t.APIs[:0]
	for _, k := range resp.ApiKeys {
		t.APIs = append(t.APIs, APIVersion{Key: k.ApiKey, Name: kmsg.NameForKey(k.ApiKey), Min: k.MinVersion, Max: k.MaxVersion})
	}
	sort.Slice(t.APIs, func(i, j int) bool { return t.APIs[i].Key < t.APIs[j].Key })
	return nil
}

func (t *Target) connectAdmin() error {
	opts := append([]kgo.Opt{kgo.SeedBrokers(t.Addr), kgo.ClientID("klite-conformance-setup")}, t.connOpts...)
	cl, err := kgo.NewClient(append(opts, t.saslOpts...)...)
	if err != nil {
		return err
	}
	t.kcl, t.admin = cl, kadm.NewClient(cl)
	return nil
}

// CreateTopics creates a cell's topics and waits until every partition has a leader.
func (t *Target) CreateTopics(ctx context.Context, topics []TopicSpec, unique map[string]string) error {
	for _, ts := range topics {
		name := unique[ts.Name]
		cfg := map[string]*string{}
		for k, v := range ts.Configs {
			cfg[k] = kadm.StringPtr(v)
		}
		// A loaded single-node KRaft Kafka can briefly fence its own broker (then it answers
		// INVALID_REPLICATION_FACTOR: no broker available) or time out: retry for a while.
		var last error
		for attempt, until := 0, time.Now().Add(20*time.Second); ; attempt++ {
			resp, err := t.admin.CreateTopic(ctx, int32(ts.Partitions), 1, cfg, name)
			switch {
			case err != nil:
				last = err
			case resp.Err == nil || errors.Is(resp.Err, kerr.TopicAlreadyExists) && attempt > 0:
				last = nil
			default:
				last = fmt.Errorf("%v (%s)", resp.Err, resp.ErrMessage)
			}
			retriable := err != nil || resp.Err != nil && (errors.Is(resp.Err, kerr.InvalidReplicationFactor) ||
				errors.Is(resp.Err, kerr.RequestTimedOut) || errors.Is(resp.Err, kerr.NotController))
			if last == nil || !retriable || time.Now().After(until) || ctx.Err() != nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if last != nil {
			return fmt.Errorf("setup: create topic %s: %v", name, last)
		}
	}
	var names []string
	for _, ts := range topics {
		names = append(names, unique[ts.Name])
	}
	return awaitSetup(ctx, fmt.Sprintf("topics %v not ready", names), func() (bool, error) {
		md, err := t.admin.Metadata(ctx, names...)
		ready := err == nil
		if ready {
			for _, ts := range topics {
				td, ok := md.Topics[unique[ts.Name]]
				if !ok || td.Err != nil || len(td.Partitions) != ts.Partitions {
					ready = false
					break
				}
				for _, p := range td.Partitions {
					if p.Leader < 0 || p.Err != nil {
						ready = false
					}
				}
			}
		}
		if ready {
			// Kafka publishes a new partition's leader in Metadata before its replica manager
			// leads it (produce then gets NOT_LEADER_OR_FOLLOWER, and a client that resends a
			// whole multi-partition request duplicates the records that did land): ListOffsets
			// is answered by the replica manager, so wait until it answers every partition.
			err = partitionsLed(ctx, t.admin, names, topics, unique)
			ready = err == nil
		}
		return ready, err
	})
}

// setupWait is how long a cell's set-up waits for what it created to be visible (Kafka
// applies topics, users, ACLs and quotas through its metadata log).
const setupWait = 15 * time.Second

// awaitSetup calls ready every 100 ms until it reports true, for at most setupWait; what
// names the awaited state in the error, with the last error ready returned, if any.
func awaitSetup(ctx context.Context, what string, ready func() (bool, error)) error {
	deadline := time.Now().Add(setupWait)
	for {
		ok, err := ready()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("setup: %s after %s (last error: %v)", what, setupWait, err)
			}
			return fmt.Errorf("setup: %s after %s", what, setupWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// partitionsLed checks that ListOffsets answers every partition of the topics without error.
func partitionsLed(ctx context.Context, adm *kadm.Client, names []string, topics []TopicSpec, unique map[string]string) error {
	offs, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return err
	}
	for _, ts := range topics {
		name := unique[ts.Name]
		for p := int32(0); p < int32(ts.Partitions); p++ {
			o, ok := offs.Lookup(name, p)
			if !ok {
				return fmt.Errorf("ListOffsets: no answer for %s/%d", name, p)
			}
			if o.Err != nil {
				return fmt.Errorf("ListOffsets %s/%d: %v", name, p, o.Err)
			}
		}
	}
	return nil
}

// Exited reports whether a target this run started has died, with the tail of its output.
func (t *Target) Exited() (string, bool) {
	if t.done == nil {
		return "", false
	}
	select {
	case <-t.done:
		return fmt.Sprintf("%s target exited (%s); output tail:\n%s", t.Name, t.cmd.ProcessState, t.log.String()), true
	default:
		return "", false
	}
}

// Stop stops a started target and removes its data.
// PID is the process ID of a target the harness started (0 for an external one). klite-bench
// reads the CPU time and memory of its process tree from /proc.
func (t *Target) PID() int {
	if t.cmd == nil || t.cmd.Process == nil {
		return 0
	}
	return t.cmd.Process.Pid
}

// Dir is the working directory of a target the harness started: its data lives under it.
func (t *Target) Dir() string { return t.dir }

func (t *Target) Stop() {
	t.saslMu.Lock()
	if t.sasl != nil {
		t.sasl.Stop()
	}
	if t.acl != nil {
		t.acl.Stop()
	}
	for _, v := range t.tlsVariants {
		v.Stop()
	}
	if t.tlsKafka != nil {
		t.tlsKafka.Stop()
	}
	t.saslMu.Unlock()
	if t.kcl != nil {
		t.kcl.Close()
	}
	if t.shared {
		return
	}
	if t.cmd != nil && t.cmd.Process != nil {
		syscall.Kill(-t.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-t.done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
			<-t.done
		}
	}
	if t.ownDir {
		os.RemoveAll(t.dir)
	}
	if t.release != nil {
		t.release()
	}
}

// freePorts finds a loopback port p such that p..p+n-1 are free. It looks below Linux's
// ephemeral range (32768-60999) first: there no outgoing connection holds a port, so a run of
// n ports stays free even while a busy machine (benchmarks with thousands of connections)
// uses up much of the ephemeral range; then it falls back to ports the kernel picks.
func freePorts(n int) (int, error) {
	tryRun := func(p int) bool {
		var held []net.Listener
		defer func() {
			for _, l := range held {
				l.Close()
			}
		}()
		for i := 0; i < n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+i))
			if err != nil {
				return false
			}
			held = append(held, l)
		}
		return true
	}
	for attempt := 0; attempt < 200; attempt++ {
		p := 20000 + rand.IntN(12000)
		if tryRun(p) {
			return p, nil
		}
	}
	for attempt := 0; attempt < 50; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if tryRun(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free run of %d loopback ports", n)
}

// gitDescribe names the checkout's commit, "-dirty" when files other than the harness's
// own outputs differ from it: the wire and tools runs rewrite their committed results
// before the matrix runs, which does not make the build under test a different one.
func gitDescribe(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always").Output()
	if err != nil {
		return "(dev build)"
	}
	desc := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--",
		".", ":(exclude)conformance/results", ":(exclude)COMPATIBILITY.md").Output()
	if err != nil || len(bytes.TrimSpace(st)) > 0 {
		desc += "-dirty"
	}
	return "dev build " + desc
}
