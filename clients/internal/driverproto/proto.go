// Package driverproto is the shared plumbing of the Go conformance drivers that live in their own
// modules (sarama, confluent-kafka-go, kafka-go): it reads JSON-line commands from stdin,
// dispatches them to a Handler and writes one JSON answer per line on stdout (clients/README.md).
package driverproto

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Cmd is one command line: its id, op and the raw line for op-specific decoding.
type Cmd struct {
	ID  int64           `json:"id"`
	Op  string          `json:"op"`
	Raw json.RawMessage `json:"-"`
}

// Decode unmarshals the whole command line into v (an op's argument struct).
func (c *Cmd) Decode(v any) error { return json.Unmarshal(c.Raw, v) }

// Answer is an op's answer without its id.
type Answer map[string]any

// OK answers success with the given result fields (nil for none).
func OK(fields map[string]any) Answer {
	a := Answer{"ok": true}
	for k, v := range fields {
		a[k] = v
	}
	return a
}

// Err answers a failed op with a Kafka error name and the library's text.
func Err(name, msg string) Answer { return Answer{"ok": false, "error": name, "message": msg} }

// Unsupported answers an op (or variant) that the library cannot do.
func Unsupported(reason string) Answer { return Answer{"unsupported": true, "reason": reason} }

// Handler runs one command. Close is called on the close op and at end of input.
type Handler interface {
	Handle(c *Cmd) Answer
	Close()
}

// Run reads commands from in until close or EOF, answering each on out.
func Run(in io.Reader, out io.Writer, h Handler) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	w := bufio.NewWriter(out)
	write := func(id int64, a Answer) {
		a["id"] = id
		b, err := json.Marshal(a)
		if err != nil {
			b, _ = json.Marshal(Answer{"id": id, "ok": false, "error": "CLIENT_ERROR", "message": "encoding answer: " + err.Error()})
		}
		w.Write(b)
		w.WriteByte('\n')
		w.Flush()
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		c := &Cmd{Raw: append(json.RawMessage(nil), line...)}
		if err := json.Unmarshal(line, c); err != nil {
			write(c.ID, Err("CLIENT_ERROR", "bad command: "+err.Error()))
			continue
		}
		slog.Debug("command", "id", c.ID, "op", c.Op)
		if c.Op == "close" {
			h.Close()
			write(c.ID, OK(nil))
			return
		}
		write(c.ID, safeHandle(h, c))
	}
	h.Close()
}

func safeHandle(h Handler, c *Cmd) (a Answer) {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("panic in op", "op", c.Op, "panic", r)
			a = Err("CLIENT_ERROR", fmt.Sprintf("driver panic: %v", r))
		}
	}()
	return h.Handle(c)
}

// Main sets up stderr logging and runs h on stdin/stdout; it returns when done (exit 0).
func Main(h Handler) {
	lvl := slog.LevelInfo
	if os.Getenv("DRIVER_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
	Run(os.Stdin, os.Stdout, h)
}

// CodeName is the protocol name of a Kafka error code ("" for 0).
func CodeName(code int16) string {
	if code == 0 {
		return ""
	}
	if e := kerr.TypedErrorForCode(code); e != nil && (e.Code == code) {
		return e.Message
	}
	return "UNKNOWN_SERVER_ERROR"
}

// NameOrNil is CodeName as a JSON value: nil for success.
func NameOrNil(code int16) any {
	if code == 0 {
		return nil
	}
	return CodeName(code)
}

// ---- argument types shared by the drivers ----

// SASL is hello's optional sasl object.
type SASL struct {
	Mechanism string `json:"mechanism"`
	User      string `json:"user"`
	Password  string `json:"password"`
}

// TLS is hello's optional tls object: PEM file paths; CertFile and KeyFile only for mTLS.
type TLS struct {
	CAFile   string `json:"ca_file"`
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
}

// Config is a crypto/tls configuration that trusts the CA and presents the client
// certificate when there is one.
func (t *TLS) Config() (*tls.Config, error) {
	ca, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("tls ca_file %s: no certificate", t.CAFile)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Hello is hello's arguments.
type Hello struct {
	Bootstrap string `json:"bootstrap"`
	ClientID  string `json:"client_id"`
	SASL      *SASL  `json:"sasl"`
	TLS       *TLS   `json:"tls"`
}

// CreateTopic is create_topic's arguments.
type CreateTopic struct {
	Topic             string            `json:"topic"`
	Partitions        *int32            `json:"partitions"`
	ReplicationFactor *int16            `json:"replication_factor"`
	Configs           map[string]string `json:"configs"`
	ValidateOnly      bool              `json:"validate_only"`
}

// Parts returns partitions with its default 1.
func (c *CreateTopic) Parts() int32 {
	if c.Partitions == nil {
		return 1
	}
	return *c.Partitions
}

// RF returns replication_factor with its default 1.
func (c *CreateTopic) RF() int16 {
	if c.ReplicationFactor == nil {
		return 1
	}
	return *c.ReplicationFactor
}

// Metadata is metadata's arguments.
type Metadata struct {
	Topics          []string `json:"topics"`
	AllowAutoCreate bool     `json:"allow_auto_create"`
}

// Header is one record header; Value nil is a null header value.
type Header struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

// InRecord is one record to produce.
type InRecord struct {
	Key       *string  `json:"key"`
	Value     *string  `json:"value"`
	Headers   []Header `json:"headers"`
	Partition *int32   `json:"partition"`
	Timestamp *int64   `json:"timestamp"`
}

// Produce is produce's arguments.
type Produce struct {
	Topic         string     `json:"topic"`
	Records       []InRecord `json:"records"`
	Acks          *int       `json:"acks"`
	Compression   string     `json:"compression"`
	Idempotent    bool       `json:"idempotent"`
	Transactional bool       `json:"transactional"`
}

// AcksOr returns acks, default -1 (all).
func (p *Produce) AcksOr() int {
	if p.Acks == nil {
		return -1
	}
	return *p.Acks
}

// Codec returns compression with its default "none".
func (p *Produce) Codec() string {
	if p.Compression == "" {
		return "none"
	}
	return p.Compression
}

// ProduceResult is one record's delivery report.
type ProduceResult struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
	Timestamp int64 `json:"timestamp"`
	Error     any   `json:"error"`
}

// From is a start position: earliest, latest or an absolute offset.
type From struct {
	Earliest bool
	Latest   bool
	Offset   int64 // valid when neither flag is set
}

// UnmarshalJSON accepts "earliest", "latest" or an integer.
func (f *From) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		switch s {
		case "earliest", "":
			*f = From{Earliest: true}
		case "latest":
			*f = From{Latest: true}
		default:
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("bad from %q", s)
			}
			*f = From{Offset: n}
		}
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("bad from %s", b)
	}
	*f = From{Offset: n}
	return nil
}

// Consume is consume's arguments.
type Consume struct {
	Topic             string  `json:"topic"`
	Partitions        []int32 `json:"partitions"`
	From              *From   `json:"from"`
	MaxRecords        int     `json:"max_records"`
	TimeoutMs         int     `json:"timeout_ms"`
	Isolation         string  `json:"isolation"`
	FetchMaxBytes     *int32  `json:"fetch_max_bytes"`
	PartitionMaxBytes *int32  `json:"partition_max_bytes"`
	FetchMaxWaitMs    *int32  `json:"fetch_max_wait_ms"`
	FetchMinBytes     *int32  `json:"fetch_min_bytes"`
}

// Start returns from with its default earliest.
func (c *Consume) Start() From {
	if c.From == nil {
		return From{Earliest: true}
	}
	return *c.From
}

// ReadCommitted reports whether isolation is read_committed.
func ReadCommitted(isolation string) bool { return isolation == "read_committed" }

// OutRecord is one consumed record.
type OutRecord struct {
	Topic         string   `json:"topic"`
	Partition     int32    `json:"partition"`
	Offset        int64    `json:"offset"`
	Key           *string  `json:"key"`
	Value         *string  `json:"value"`
	Headers       []Header `json:"headers"`
	Timestamp     int64    `json:"timestamp"`
	TimestampType *string  `json:"timestamp_type"`
}

// Bytes turns library bytes into a JSON byte field (nil stays null).
func Bytes(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

// BytesIn turns a JSON byte field into library bytes (null stays nil).
func BytesIn(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

// TSType names a timestamp type.
func TSType(name string) *string { return &name }

// Spec is list_offsets' spec: earliest, latest, max_timestamp or {"timestamp": T}.
type Spec struct {
	Kind      string // "earliest", "latest", "max_timestamp", "timestamp"
	Timestamp int64
}

// UnmarshalJSON accepts a name or {"timestamp": T}.
func (s *Spec) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		*s = Spec{Kind: name}
		return nil
	}
	var o struct {
		Timestamp *int64 `json:"timestamp"`
	}
	if err := json.Unmarshal(b, &o); err != nil || o.Timestamp == nil {
		return fmt.Errorf("bad spec %s", b)
	}
	*s = Spec{Kind: "timestamp", Timestamp: *o.Timestamp}
	return nil
}

// ListOffsets is list_offsets' arguments.
type ListOffsets struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Spec      Spec   `json:"spec"`
	Isolation string `json:"isolation"`
}

// GroupSubscribe is group_subscribe's arguments.
type GroupSubscribe struct {
	Group              string   `json:"group"`
	Topics             []string `json:"topics"`
	Assignor           string   `json:"assignor"`
	InstanceID         string   `json:"instance_id"`
	SessionTimeoutMs   int      `json:"session_timeout_ms"`
	RebalanceTimeoutMs int      `json:"rebalance_timeout_ms"`
	HeartbeatMs        int      `json:"heartbeat_interval_ms"`
	AutoCommit         bool     `json:"auto_commit"`
	From               string   `json:"from"`
	Isolation          string   `json:"isolation"`
	GroupProtocol      string   `json:"group_protocol"` // "" or "classic", or "consumer" (KIP-848)
	TopicRegex         string   `json:"topic_regex"`    // subscribe by regex instead of Topics
}

// GroupPoll is group_poll's arguments.
type GroupPoll struct {
	MaxRecords int `json:"max_records"`
	TimeoutMs  int `json:"timeout_ms"`
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// CommitOffset is one offset to commit.
type CommitOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Metadata  string `json:"metadata"`
}

// GroupCommit is group_commit's arguments.
type GroupCommit struct {
	Offsets []CommitOffset `json:"offsets"`
	Group   string         `json:"group"` // optional; a group the actor is not a member of: commit standalone
}

// GroupCommitted is group_committed's arguments.
type GroupCommitted struct {
	Group      string  `json:"group"`
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// CommittedOffset is one answer row of group_committed.
type CommittedOffset struct {
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Metadata  string `json:"metadata"`
	Error     any    `json:"error"`
}

// TxnInit is txn_init's arguments.
type TxnInit struct {
	TransactionalID      string `json:"transactional_id"`
	TransactionTimeoutMs int    `json:"transaction_timeout_ms"`
}

// TxnSendOffsets is txn_send_offsets' arguments.
type TxnSendOffsets struct {
	Group   string         `json:"group"`
	Offsets []CommitOffset `json:"offsets"`
}

// Admin is admin's arguments (the union of every action's parameters).
type Admin struct {
	Action     string            `json:"action"`
	Groups     []string          `json:"groups"`
	Group      string            `json:"group"`
	Topic      string            `json:"topic"`
	Partitions []int32           `json:"partitions"`
	Partition  int32             `json:"partition"`
	Offset     int64             `json:"offset"`
	Names      []string          `json:"names"`
	Configs    map[string]string `json:"configs"`
	Count      int32             `json:"count"`
}

// Ms returns v milliseconds, or def when v is 0 or less.
func Ms(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

var configSources = []string{"UNKNOWN", "DYNAMIC_TOPIC_CONFIG", "DYNAMIC_BROKER_CONFIG",
	"DYNAMIC_DEFAULT_BROKER_CONFIG", "STATIC_BROKER_CONFIG", "DEFAULT_CONFIG",
	"DYNAMIC_BROKER_LOGGER_CONFIG", "CLIENT_METRICS_CONFIG", "GROUP_CONFIG"}

// ConfigSourceName is the protocol name of a DescribeConfigs config source.
func ConfigSourceName(s int8) string {
	if s < 0 || int(s) >= len(configSources) {
		return "UNKNOWN"
	}
	return configSources[s]
}

// SortByString sorts rows by one string field.
func SortByString(rows []map[string]any, key string) {
	sort.Slice(rows, func(i, j int) bool { return rows[i][key].(string) < rows[j][key].(string) })
}

// SortTopicPartitions sorts tps by topic, then partition.
func SortTopicPartitions(tps []TopicPartition) {
	sort.Slice(tps, func(i, j int) bool {
		return tps[i].Topic < tps[j].Topic || tps[i].Topic == tps[j].Topic && tps[i].Partition < tps[j].Partition
	})
}

// ---- dispatch of the ops whose argument handling is the same in every driver ----

// Ops holds a driver's functions for the ops whose arguments every driver decodes the same
// way; a nil function leaves that op to the driver's own switch.
type Ops struct {
	Metadata       func(Metadata) Answer
	Produce        func(Produce) Answer
	ProduceFor     func(ProduceFor) Answer
	Consume        func(Consume) Answer
	ListOffsets    func(ListOffsets) Answer
	GroupSubscribe func(GroupSubscribe) Answer
	GroupCommitted func(GroupCommitted) Answer
	TxnInit        func(TxnInit) Answer
	Admin          func(Admin) Answer

	// The group ops, all four set or none: Subscribed names the actor's live subscription (ok
	// false without one), GroupPoll and GroupCommit run on it, and StandaloneCommit commits
	// for a group the actor is not a member of.
	Subscribed       func() (group string, ok bool)
	GroupPoll        func(GroupPoll) Answer
	GroupCommit      func(GroupCommit) Answer
	StandaloneCommit func(GroupCommit) Answer
}

// Dispatch runs c through o; handled is false when o has no function for c.Op. Produce, consume
// and list_offsets answer CLIENT_ERROR on arguments that do not decode; the others run with what
// did decode.
func (o *Ops) Dispatch(c *Cmd) (a Answer, handled bool) {
	switch {
	case c.Op == "metadata" && o.Metadata != nil:
		return loose(c, o.Metadata), true
	case c.Op == "produce" && o.Produce != nil:
		return strict(c, o.Produce), true
	case c.Op == "produce_for" && o.ProduceFor != nil:
		return strict(c, o.ProduceFor), true
	case c.Op == "consume" && o.Consume != nil:
		return strict(c, o.Consume), true
	case c.Op == "list_offsets" && o.ListOffsets != nil:
		return strict(c, o.ListOffsets), true
	case c.Op == "group_subscribe" && o.GroupSubscribe != nil:
		return loose(c, o.GroupSubscribe), true
	case c.Op == "group_committed" && o.GroupCommitted != nil:
		return loose(c, o.GroupCommitted), true
	case c.Op == "txn_init" && o.TxnInit != nil:
		return loose(c, o.TxnInit), true
	case c.Op == "admin" && o.Admin != nil:
		return loose(c, o.Admin), true
	case c.Op == "group_poll" && o.Subscribed != nil:
		return loose(c, func(a GroupPoll) Answer {
			if _, ok := o.Subscribed(); !ok {
				return Err("CLIENT_ERROR", "no group subscription")
			}
			return o.GroupPoll(a)
		}), true
	case c.Op == "group_commit" && o.Subscribed != nil:
		return loose(c, func(a GroupCommit) Answer {
			group, ok := o.Subscribed()
			if a.Group != "" && (!ok || group != a.Group) {
				return o.StandaloneCommit(a)
			}
			if !ok {
				return Err("CLIENT_ERROR", "no group subscription")
			}
			return o.GroupCommit(a)
		}), true
	}
	return nil, false
}

func strict[A any](c *Cmd, f func(A) Answer) Answer {
	var a A
	if err := c.Decode(&a); err != nil {
		return Err("CLIENT_ERROR", err.Error())
	}
	return f(a)
}

func loose[A any](c *Cmd, f func(A) Answer) Answer {
	var a A
	c.Decode(&a)
	return f(a)
}

// SortCommitted sorts group_committed rows by partition.
func SortCommitted(rows []CommittedOffset) {
	sort.Slice(rows, func(i, j int) bool { return rows[i].Partition < rows[j].Partition })
}

// ---- produce_for (clients/README.md) ----

// ProduceFor are produce_for's arguments.
type ProduceFor struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	RecordBytes int    `json:"record_bytes"`
	WarmupMs    int    `json:"warmup_ms"`
	DurationMs  int    `json:"duration_ms"`
	Acks        *int   `json:"acks"`
	InFlight    int    `json:"in_flight"`
}

// AcksOr returns acks, -1 when not given.
func (p *ProduceFor) AcksOr() int {
	if p.Acks == nil {
		return -1
	}
	return *p.Acks
}

// RateMeter runs produce_for's clock: it says how long to keep sending, bounds the records
// awaiting acknowledgement, and counts the value bytes acknowledged in the measured period.
type RateMeter struct {
	args          ProduceFor
	Value         []byte
	start         time.Time
	warmEnd, end  time.Time
	slots         chan struct{}
	mu            sync.Mutex
	acked, failed int64
	counted       int64
	firstErr      string
}

// NewRateMeter starts the clock (defaults: 1000-byte records, 64 in flight, 5 s measured).
func NewRateMeter(a ProduceFor) *RateMeter {
	if a.RecordBytes <= 0 {
		a.RecordBytes = 1000
	}
	if a.InFlight <= 0 {
		a.InFlight = 64
	}
	if a.DurationMs <= 0 {
		a.DurationMs = 5000
	}
	v := []byte(strings.Repeat("0123456789abcdef", a.RecordBytes/16+1)[:a.RecordBytes])
	m := &RateMeter{args: a, Value: v, start: time.Now(), slots: make(chan struct{}, a.InFlight)}
	m.warmEnd = m.start.Add(time.Duration(a.WarmupMs) * time.Millisecond)
	m.end = m.warmEnd.Add(time.Duration(a.DurationMs) * time.Millisecond)
	return m
}

// Next waits for room for one more record; false once the period is over.
func (m *RateMeter) Next() bool {
	left := time.Until(m.end)
	if left <= 0 {
		return false
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case m.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

// Ack records one record's outcome (call once per record Next admitted).
func (m *RateMeter) Ack(err error) {
	now := time.Now()
	<-m.slots
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.failed++
		if m.firstErr == "" {
			m.firstErr = err.Error()
		}
		return
	}
	m.acked++
	if !now.Before(m.warmEnd) && !now.After(m.end) {
		m.counted += int64(len(m.Value))
	}
}

// Answer is the op's result, with the largest throttle time the library reported.
func (m *RateMeter) Answer(throttleMs int64) Answer {
	m.mu.Lock()
	defer m.mu.Unlock()
	res := map[string]any{
		"records":          m.acked,
		"errors":           m.failed,
		"bytes_per_sec":    float64(m.counted) / (float64(m.args.DurationMs) / 1000),
		"throttle_time_ms": throttleMs,
		"throttled":        throttleMs > 0,
	}
	if m.firstErr != "" {
		res["message"] = m.firstErr
	}
	return OK(res)
}
