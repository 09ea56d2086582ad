package broker

// Config descriptions shared by DescribeConfigs, AlterConfigs and IncrementalAlterConfigs:
// the type of every topic config, the broker configs each one falls back to (its synonyms,
// as Kafka 4.0 lists them), and the broker configs klite reports. Topic configs themselves
// live on the topic (topic.go); dynamic broker configs set through the alter APIs live in
// adminState and the metadata log ({"type":"broker_configs","name":"<broker id or empty>",
// "configs":{...}}), replacing the previous set for that name.

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's ConfigSource values.
const (
	srcTopic          int8 = 1 // DYNAMIC_TOPIC_CONFIG
	srcDynamicBroker  int8 = 2 // DYNAMIC_BROKER_CONFIG
	srcDynamicDefault int8 = 3 // DYNAMIC_DEFAULT_BROKER_CONFIG
	srcStatic         int8 = 4 // STATIC_BROKER_CONFIG
	srcDefault        int8 = 5 // DEFAULT_CONFIG
)

// Kafka's ConfigType values.
const (
	ctBoolean int8 = 1
	ctString  int8 = 2
	ctInt     int8 = 3
	ctLong    int8 = 5
	ctDouble  int8 = 6
	ctList    int8 = 7
)

// topicConfigType is each topic config's type (Kafka 4.0's LogConfig definitions).
var topicConfigType = map[string]int8{
	"cleanup.policy": ctList, "compression.gzip.level": ctInt, "compression.lz4.level": ctInt,
	"compression.type": ctString, "compression.zstd.level": ctInt, "delete.retention.ms": ctLong,
	"file.delete.delay.ms": ctLong, "flush.messages": ctLong, "flush.ms": ctLong,
	"follower.replication.throttled.replicas": ctList, "index.interval.bytes": ctInt,
	"leader.replication.throttled.replicas": ctList, "local.retention.bytes": ctLong,
	"local.retention.ms": ctLong, "max.compaction.lag.ms": ctLong, "max.message.bytes": ctInt,
	"message.timestamp.after.max.ms": ctLong, "message.timestamp.before.max.ms": ctLong,
	"message.timestamp.type": ctString, "min.cleanable.dirty.ratio": ctDouble,
	"min.compaction.lag.ms": ctLong, "min.insync.replicas": ctInt, "preallocate": ctBoolean,
	"remote.log.copy.disable": ctBoolean, "remote.log.delete.on.disable": ctBoolean,
	"remote.storage.enable": ctBoolean, "retention.bytes": ctLong, "retention.ms": ctLong,
	"segment.bytes": ctInt, "segment.index.bytes": ctInt, "segment.jitter.ms": ctLong,
	"segment.ms": ctLong, "unclean.leader.election.enable": ctBoolean,
}

// topicDefaultSynonym is the broker config Kafka names as the DEFAULT_CONFIG synonym of a
// topic config (with the same default value). Configs absent here have no such synonym
// (their broker configs have no default, as log.retention.ms, or there are none).
var topicDefaultSynonym = map[string]string{
	"cleanup.policy": "log.cleanup.policy", "compression.gzip.level": "compression.gzip.level",
	"compression.lz4.level": "compression.lz4.level", "compression.type": "compression.type",
	"compression.zstd.level": "compression.zstd.level", "delete.retention.ms": "log.cleaner.delete.retention.ms",
	"file.delete.delay.ms": "log.segment.delete.delay.ms", "flush.messages": "log.flush.interval.messages",
	"index.interval.bytes": "log.index.interval.bytes", "local.retention.bytes": "log.local.retention.bytes",
	"local.retention.ms": "log.local.retention.ms", "max.compaction.lag.ms": "log.cleaner.max.compaction.lag.ms",
	"max.message.bytes": "message.max.bytes", "message.timestamp.after.max.ms": "log.message.timestamp.after.max.ms",
	"message.timestamp.before.max.ms": "log.message.timestamp.before.max.ms",
	"message.timestamp.type":          "log.message.timestamp.type", "min.cleanable.dirty.ratio": "log.cleaner.min.cleanable.ratio",
	"min.compaction.lag.ms": "log.cleaner.min.compaction.lag.ms", "min.insync.replicas": "min.insync.replicas",
	"preallocate": "log.preallocate", "retention.bytes": "log.retention.bytes", "segment.bytes": "log.segment.bytes",
	"segment.index.bytes": "log.index.size.max.bytes", "unclean.leader.election.enable": "unclean.leader.election.enable",
}

// topicBrokerSynonym is the dynamic broker config that sets a topic config's default: the
// DEFAULT_CONFIG synonym, or for these four the broker config without a default.
func topicBrokerSynonym(name string) string {
	switch name {
	case "retention.ms":
		return "log.retention.ms"
	case "segment.ms":
		return "log.roll.ms"
	case "flush.ms":
		return "log.flush.interval.ms"
	case "segment.jitter.ms":
		return "log.roll.jitter.ms"
	}
	return topicDefaultSynonym[name]
}

// brokerTopicSynonym maps a broker config back to the topic config it is the default of.
var brokerTopicSynonym = func() map[string]string {
	m := map[string]string{}
	for name := range topicConfigType {
		if bn := topicBrokerSynonym(name); bn != "" {
			m[bn] = name
		}
	}
	return m
}()

// checkConfigType checks a value against a config type with Kafka's messages.
func checkConfigType(name, value string, typ int8) (string, bool) {
	bad := func(kind string) (string, bool) {
		return "Invalid value " + value + " for configuration " + name + ": Not a number of type " + kind, false
	}
	v := strings.TrimSpace(value)
	switch typ {
	case ctInt:
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			return bad("INT")
		}
	case ctLong:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return bad("LONG")
		}
	case ctDouble:
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return bad("DOUBLE")
		}
	case ctBoolean:
		if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			return "Invalid value " + value + " for configuration " + name + ": Expected value to be either true or false", false
		}
	}
	return "", true
}

// topicConfigMinimum is the smallest value Kafka accepts for numeric topic configs.
var topicConfigMinimum = map[string]int64{
	"retention.ms": -1, "retention.bytes": -9223372036854775808, "max.message.bytes": 0,
	"segment.bytes": 14, "segment.ms": 1, "segment.jitter.ms": 0, "segment.index.bytes": 4,
	"flush.messages": 1, "flush.ms": 0, "delete.retention.ms": 0, "min.compaction.lag.ms": 0,
	"max.compaction.lag.ms": 1, "file.delete.delay.ms": 0, "min.insync.replicas": 1,
	"index.interval.bytes": 0, "message.timestamp.before.max.ms": 0,
	"message.timestamp.after.max.ms": 0, "local.retention.ms": -2, "local.retention.bytes": -2,
}

// checkTopicConfigs applies Kafka's type and range checks, then klite's own validation
// (validateTopicConfigs, as CreateTopics does).
func checkTopicConfigs(configs map[string]string) (string, bool) {
	names := make([]string, 0, len(configs))
	for k := range configs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := configs[k]
		typ, known := topicConfigType[k]
		if !known {
			return "Unknown topic config name: " + k, false
		}
		if msg, ok := checkConfigType(k, v, typ); !ok {
			return msg, false
		}
		if lo, ok := topicConfigMinimum[k]; ok {
			if n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64); n < lo {
				return "Invalid value " + v + " for configuration " + k + ": Value must be at least " + strconv.FormatInt(lo, 10), false
			}
		}
		invalid := func(val, why string) (string, bool) {
			return "Invalid value " + val + " for configuration " + k + ": " + why, false
		}
		switch k {
		case "message.timestamp.type":
			if v != "CreateTime" && v != "LogAppendTime" {
				return invalid(v, "String must be one of: CreateTime, LogAppendTime")
			}
		case "compression.type":
			switch v {
			case "uncompressed", "zstd", "lz4", "snappy", "gzip", "producer":
			default:
				return invalid(v, "String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer")
			}
		case "cleanup.policy":
			for _, it := range strings.Split(v, ",") {
				if it = strings.TrimSpace(it); it != "compact" && it != "delete" {
					return invalid(it, "String must be one of: compact, delete")
				}
			}
		case "min.cleanable.dirty.ratio":
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			javaDouble := strconv.FormatFloat(f, 'f', -1, 64)
			if !strings.Contains(javaDouble, ".") {
				javaDouble += ".0"
			}
			if f < 0 {
				return invalid(javaDouble, "Value must be at least 0")
			}
			if f > 1 {
				return invalid(javaDouble, "Value must be no more than 1")
			}
		}
	}
	return validateTopicConfigs(configs)
}

// topicConfigResources lists a topic's configs as DescribeConfigs reports them: the explicit
// value, else a dynamic broker-level default (this broker's, then the cluster-wide one), else
// Kafka's default; synonyms in Kafka's order.
func (b *Broker) topicConfigResources(set map[string]string, names []string, synonyms bool) []kmsg.DescribeConfigsResponseResourceConfig {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	perBroker := b.admin.brokerConfigs(b.selfName())
	clusterDefault := b.admin.brokerConfigs("")
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, e := range describeTopicConfigs(set) {
		if names != nil && !want[e.name] {
			continue
		}
		var syns []configSyn
		if e.source == srcTopic {
			syns = append(syns, configSyn{e.name, kmsg.StringPtr(e.value), srcTopic})
		}
		if bn := topicBrokerSynonym(e.name); bn != "" {
			syns = append(syns, b.brokerSynonymChain(bn, perBroker, clusterDefault, true)...)
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.Source = e.name, kmsg.StringPtr(e.value), kmsg.ConfigSource(e.source)
		if e.source != srcTopic && len(syns) > 0 { // a dynamic broker-level default applies
			if top := topBySource(syns); top.src == srcDynamicBroker || top.src == srcDynamicDefault {
				c.Value, c.Source = top.v, kmsg.ConfigSource(top.src)
			}
		}
		c.ConfigType = kmsg.ConfigType(topicConfigType[e.name])
		if c.ConfigType == 0 {
			c.ConfigType = kmsg.ConfigType(ctString)
		}
		if synonyms {
			c.ConfigSynonyms = synonymsOut(syns)
		}
		out = append(out, c)
	}
	return out
}

// brokerConfigDef describes one broker config klite reports.
type brokerConfigDef struct {
	typ       int8
	readOnly  bool // not dynamically updatable
	sensitive bool
	// value returns the current static value and its source (srcStatic or srcDefault);
	// ok false means null.
	value func(b *Broker) (v string, src int8, ok bool)
	// dflt is Kafka's default of a config klite may report as STATIC_BROKER_CONFIG: with
	// synonyms, Kafka 4.0 lists it (DEFAULT_CONFIG) before the static value. "" for none.
	dflt string
}

func defaultVal(v string) func(*Broker) (string, int8, bool) {
	return func(*Broker) (string, int8, bool) { return v, srcDefault, true }
}

func nullVal(*Broker) (string, int8, bool) { return "", srcDefault, false }

func staticVal(f func(b *Broker) string) func(*Broker) (string, int8, bool) {
	return func(b *Broker) (string, int8, bool) { return f(b), srcStatic, true }
}

// brokerConfigs are the broker configs klite reports, with Kafka 4.0's types, read-only
// flags and defaults; the ones klite takes from its flags are STATIC_BROKER_CONFIG.
var brokerConfigs = map[string]brokerConfigDef{
	"broker.id":                  {dflt: "-1", typ: ctInt, readOnly: true, value: staticVal(func(b *Broker) string { return strconv.Itoa(int(b.nodeID)) })},
	"node.id":                    {dflt: "-1", typ: ctInt, readOnly: true, value: staticVal(func(b *Broker) string { return strconv.Itoa(int(b.nodeID)) })},
	"advertised.listeners":       {typ: ctString, readOnly: true, value: staticVal(func(b *Broker) string { return "PLAINTEXT://" + joinHostPort(b.advHost, b.advPort) })},
	"log.dirs":                   {typ: ctString, readOnly: true, value: staticVal(func(b *Broker) string { return absDir(b.dataDir) })},
	"num.partitions":             {dflt: "1", typ: ctInt, readOnly: true, value: staticVal(func(b *Broker) string { return strconv.Itoa(int(b.cfg.DefaultPartitions)) })},
	"auto.create.topics.enable":  {dflt: "true", typ: ctBoolean, readOnly: true, value: staticVal(func(b *Broker) string { return strconv.FormatBool(b.cfg.AutoCreateTopics) })},
	"default.replication.factor": {typ: ctInt, readOnly: true, value: defaultVal("1")},
	"delete.topic.enable":        {typ: ctBoolean, readOnly: true, value: defaultVal("true")},
	"process.roles":              {typ: ctList, readOnly: true, value: staticVal(func(*Broker) string { return "broker,controller" })},
	"socket.request.max.bytes": {dflt: "104857600", typ: ctInt, readOnly: true, value: func(b *Broker) (string, int8, bool) {
		if b.cfg.MaxFrameBytes > 0 && b.cfg.MaxFrameBytes != 104857600 {
			return strconv.Itoa(int(b.cfg.MaxFrameBytes)), srcStatic, true
		}
		return "104857600", srcDefault, true
	}},
	"group.initial.rebalance.delay.ms": {dflt: "3000", typ: ctInt, readOnly: true, value: func(b *Broker) (string, int8, bool) {
		if d := b.cfg.Groups.InitialRebalanceDelay; d > 0 {
			return strconv.FormatInt(d.Milliseconds(), 10), srcStatic, true
		}
		return "0", srcDefault, true // klite's default (Kafka's is 3000)
	}},
	"group.min.session.timeout.ms": {dflt: "6000", typ: ctInt, readOnly: true, value: durationVal(func(b *Broker) time.Duration { return b.cfg.Groups.MinSessionTimeout }, "6000", time.Millisecond)},
	// KIP-848 consumer groups (broker/group/consumer*.go).
	"group.coordinator.rebalance.protocols": {typ: ctList, readOnly: true, value: defaultVal("classic,consumer")},
	"group.consumer.session.timeout.ms":     {typ: ctInt, readOnly: true, value: defaultVal("45000")},
	"group.consumer.heartbeat.interval.ms":  {typ: ctInt, readOnly: true, value: defaultVal("5000")},
	"group.max.session.timeout.ms":          {dflt: "1800000", typ: ctInt, readOnly: true, value: durationVal(func(b *Broker) time.Duration { return b.cfg.Groups.MaxSessionTimeout }, "1800000", time.Millisecond)},
	"offsets.retention.minutes":             {dflt: "10080", typ: ctInt, readOnly: true, value: durationVal(func(b *Broker) time.Duration { return b.cfg.Groups.OffsetsRetention }, "10080", time.Minute)},
	"transaction.max.timeout.ms":            {dflt: "900000", typ: ctInt, readOnly: true, value: durationVal(func(b *Broker) time.Duration { return b.cfg.TransactionMaxTimeout }, "900000", time.Millisecond)},
	"transactional.id.expiration.ms":        {typ: ctInt, readOnly: true, value: defaultVal("604800000")},
	"producer.id.expiration.ms":             {typ: ctInt, value: defaultVal("86400000")},
	"max.connections":                       {typ: ctInt, value: defaultVal("2147483647")},
	"message.max.bytes":                     {typ: ctInt, value: defaultVal("1048588")},
	"log.cleanup.policy":                    {typ: ctList, value: defaultVal("delete")},
	"log.retention.ms":                      {typ: ctLong, value: nullVal},
	"log.retention.minutes":                 {typ: ctInt, readOnly: true, value: nullVal},
	"log.retention.hours":                   {typ: ctInt, readOnly: true, value: defaultVal("168")},
	"log.retention.bytes":                   {typ: ctLong, value: defaultVal("-1")},
	"log.segment.bytes":                     {typ: ctInt, value: defaultVal("1073741824")},
	"log.roll.ms":                           {typ: ctLong, value: nullVal},
	"log.roll.hours":                        {typ: ctInt, readOnly: true, value: defaultVal("168")},
	"log.roll.jitter.ms":                    {typ: ctLong, value: nullVal},
	"log.roll.jitter.hours":                 {typ: ctInt, readOnly: true, value: defaultVal("0")},
	"log.flush.interval.messages":           {typ: ctLong, value: defaultVal("9223372036854775807")},
	"log.flush.interval.ms":                 {typ: ctLong, value: nullVal},
	// --retention-check-interval and --compaction-backoff; the cleaner's backoff is dynamic
	// in Kafka (and applied by the jobs loop: log_jobs.go).
	"log.retention.check.interval.ms":     {typ: ctLong, readOnly: true, dflt: "300000", value: durationVal(func(b *Broker) time.Duration { return b.cfg.RetentionCheckInterval }, "300000", time.Millisecond)},
	"log.cleaner.backoff.ms":              {typ: ctLong, dflt: "15000", value: durationVal(func(b *Broker) time.Duration { return b.cfg.CompactionBackoff }, "15000", time.Millisecond)},
	"log.flush.scheduler.interval.ms":     {typ: ctLong, readOnly: true, value: defaultVal("9223372036854775807")},
	"log.index.interval.bytes":            {typ: ctInt, value: defaultVal("4096")},
	"log.index.size.max.bytes":            {typ: ctInt, value: defaultVal("10485760")},
	"log.segment.delete.delay.ms":         {typ: ctLong, value: defaultVal("60000")},
	"log.message.timestamp.type":          {typ: ctString, value: defaultVal("CreateTime")},
	"log.message.timestamp.after.max.ms":  {typ: ctLong, value: defaultVal("3600000")},
	"log.message.timestamp.before.max.ms": {typ: ctLong, value: defaultVal("9223372036854775807")},
	"log.preallocate":                     {typ: ctBoolean, value: defaultVal("false")},
	"log.cleaner.delete.retention.ms":     {typ: ctLong, value: defaultVal("86400000")},
	"log.cleaner.min.compaction.lag.ms":   {typ: ctLong, value: defaultVal("0")},
	"log.cleaner.max.compaction.lag.ms":   {typ: ctLong, value: defaultVal("9223372036854775807")},
	"log.cleaner.min.cleanable.ratio":     {typ: ctDouble, value: defaultVal("0.5")},
	"log.local.retention.ms":              {typ: ctLong, value: defaultVal("-2")},
	"log.local.retention.bytes":           {typ: ctLong, value: defaultVal("-2")},
	"compression.type":                    {typ: ctString, value: defaultVal("producer")},
	"compression.gzip.level":              {typ: ctInt, value: defaultVal("-1")},
	"compression.lz4.level":               {typ: ctInt, value: defaultVal("9")},
	"compression.zstd.level":              {typ: ctInt, value: defaultVal("3")},
	"min.insync.replicas":                 {typ: ctInt, value: defaultVal("1")},
	"unclean.leader.election.enable":      {typ: ctBoolean, value: defaultVal("false")},
}

// adminState holds what the admin APIs persist besides topics: dynamic broker configs (by
// resource name: "" for the cluster-wide default, or this broker's ID) and the log start
// offsets moved by DeleteRecords (also kept in each partition; here for metadata snapshots).
type adminState struct {
	mu        sync.Mutex
	brokerCfg map[string]map[string]string
	logStarts map[*partition]int64
	// topicDefaults are the topic configs' effective dynamic broker-level defaults, by topic
	// config name (shared with every topic: topic.config reads it).
	topicDefaults atomic.Pointer[map[string]string]
	// maxConns is the effective max.connections (0 until set: unbounded).
	maxConns atomic.Int64
}

func (a *adminState) brokerConfigs(name string) map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.brokerCfg[name]
}

// setBrokerConfigs records a broker config set (persisted by the caller) and recomputes the
// topic defaults: this broker's (self) values win over the cluster-wide ("") ones.
func (a *adminState) setBrokerConfigs(name string, m map[string]string, self string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.brokerCfg == nil {
		a.brokerCfg = map[string]map[string]string{}
	}
	if len(m) == 0 {
		delete(a.brokerCfg, name)
	} else {
		a.brokerCfg[name] = m
	}
	td := map[string]string{}
	for _, src := range []string{"", self} {
		for bn, v := range a.brokerCfg[src] {
			if tn := brokerTopicSynonym[bn]; tn != "" {
				td[tn] = v
			}
		}
	}
	a.topicDefaults.Store(&td)
	a.maxConns.Store(effectiveMaxConnections(a.brokerCfg, self))
}

// describeBrokerConfigs lists the broker configs for DescribeConfigs: for the broker's own ID
// every known config (dynamic values overriding), for "" only the dynamic defaults.
func (b *Broker) describeBrokerConfigs(name string, names []string, synonyms bool) []kmsg.DescribeConfigsResponseResourceConfig {
	perBroker := map[string]string{}
	if name != "" {
		perBroker = b.admin.brokerConfigs(name)
	}
	defaults := b.admin.brokerConfigs("")
	all := map[string]bool{}
	if name != "" {
		for k := range brokerConfigs {
			all[k] = true
		}
		for k := range perBroker {
			all[k] = true
		}
	}
	for k := range defaults {
		all[k] = true
	}
	list := make([]string, 0, len(all))
	if names != nil {
		for _, n := range names {
			if all[n] || name != "" {
				list = append(list, n)
			}
		}
	} else {
		for k := range all {
			list = append(list, k)
		}
	}
	sort.Strings(list)
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, k := range list {
		def, known := brokerConfigs[k]
		var syns []configSyn
		if name != "" {
			syns = b.brokerSynonymChain(k, perBroker, defaults, true)
		} else {
			syns = b.brokerSynonymChain(k, nil, defaults, false)
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name = k
		switch {
		case len(syns) > 0:
			top := topBySource(syns)
			c.Value, c.Source = top.v, kmsg.ConfigSource(top.src)
		case name != "" && known: // null, or only synonyms before its own name (dropped)
			v, src, ok := def.value(b)
			c.Source = kmsg.ConfigSource(src)
			if ok {
				c.Value = kmsg.StringPtr(v)
			}
		default:
			continue
		}
		c.ReadOnly = known && def.readOnly
		c.IsSensitive = known && def.sensitive
		c.ConfigType = kmsg.ConfigType(ctString)
		if known {
			c.ConfigType = kmsg.ConfigType(def.typ)
		}
		if synonyms {
			c.ConfigSynonyms = synonymsOut(syns)
		}
		out = append(out, c)
	}
	return out
}

// checkBrokerResource resolves a BROKER resource name: "" (cluster default) or this broker's
// ID; alter selects Kafka's message for the alter APIs.
func (b *Broker) checkBrokerResource(name string, alter bool) (string, bool) {
	if name == "" {
		return "", true
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return "Broker id must be an integer, but it is: " + name, false
	}
	if int32(id) != b.nodeID {
		if alter {
			return "Unexpected broker id, expected " + strconv.Itoa(int(b.nodeID)) + ", but received " + name, false
		}
		return "Unexpected broker id, expected " + strconv.Itoa(int(b.nodeID)) + " or empty string, but received " + name, false
	}
	return "", true
}

// checkBrokerConfigs validates a dynamic broker config change: changed names that are
// read-only are refused as Kafka does, known ones in next are type-checked, unknown ones are
// accepted (and stored).
func checkBrokerConfigs(changed, next map[string]string) (string, bool) {
	var ro []string
	for k := range changed {
		if def, ok := brokerConfigs[k]; ok && def.readOnly {
			ro = append(ro, k)
		}
	}
	sort.Strings(ro)
	if len(ro) > 0 {
		return "Cannot update these configs dynamically: Set(" + strings.Join(ro, ", ") + ")", false
	}
	names := make([]string, 0, len(next))
	for k := range next {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if def, ok := brokerConfigs[k]; ok {
			if msg, ok := checkConfigType(k, next[k], def.typ); !ok {
				return msg, false
			}
		}
		if k == "max.connections" {
			if msg, ok := checkMaxConnections(next[k]); !ok {
				return msg, false
			}
		}
		if tn := brokerTopicSynonym[k]; tn != "" {
			if msg, ok := checkTopicConfigs(map[string]string{tn: next[k]}); !ok {
				return strings.ReplaceAll(msg, tn, k), false
			}
		}
	}
	return "", true
}

// setBrokerConfigs persists and applies a dynamic broker config set for name.
func (b *Broker) setBrokerConfigs(name string, configs map[string]string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.appendMetaLocked(metaRecord{Type: "broker_configs", Name: name, Configs: configs}); err != nil {
		return err
	}
	b.admin.setBrokerConfigs(name, configs, strconv.Itoa(int(b.nodeID)))
	b.srvMu.Lock()
	if b.srv != nil {
		b.srv.LimitsChanged() // max.connections may have been raised
	}
	b.srvMu.Unlock()
	return nil
}

// adminSnapshotLocked returns the metadata records that rebuild adminState. b.mu held.
func (b *Broker) adminSnapshotLocked() []metaRecord {
	var recs []metaRecord
	b.admin.mu.Lock()
	defer b.admin.mu.Unlock()
	for name, m := range b.admin.brokerCfg {
		recs = append(recs, metaRecord{Type: "broker_configs", Name: name, Configs: m})
	}
	live := map[*partition]int64{} // drops deleted topics' entries
	for _, t := range b.topics {
		for _, p := range t.partitions() {
			if off, ok := b.admin.logStarts[p]; ok && off > 0 {
				recs = append(recs, logStartRecord(p, off))
				live[p] = off
			}
		}
	}
	b.admin.logStarts = live
	return recs
}

// replayAdminMeta applies the admin record types during metadata replay.
func (b *Broker) replayAdminMeta(r metaRecord) error {
	switch r.Type {
	case "broker_configs":
		b.admin.setBrokerConfigs(r.Name, r.Configs, strconv.Itoa(int(b.nodeID)))
	case "log_start":
		id, err := parseTopicID(r.ID)
		if err != nil {
			return err
		}
		if t := b.topicsByID[id]; t != nil {
			if p := t.partition(r.Partition); p != nil {
				b.admin.noteLogStart(p, r.Offset)
				p.mu.Lock()
				p.advanceLogStartLocked(r.Offset)
				p.mu.Unlock()
			}
		}
	}
	return nil
}

func joinHostPort(h string, p int32) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + strconv.Itoa(int(p))
	}
	return h + ":" + strconv.Itoa(int(p))
}

// durationVal reports a duration setting in unit: the flag's value (static) when set, else
// Kafka's default.
func durationVal(get func(*Broker) time.Duration, dflt string, unit time.Duration) func(*Broker) (string, int8, bool) {
	return func(b *Broker) (string, int8, bool) {
		if d := get(b); d > 0 {
			return strconv.FormatInt(int64(d/unit), 10), srcStatic, true
		}
		return dflt, srcDefault, true
	}
}
