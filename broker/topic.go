package broker

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/klite/klite/broker/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
)

// topic is a topic's metadata; its partitions hold the data state. The partition list and
// the configs are replaced whole (copy on write, under Broker.mu) so that request handlers
// read them without locks while CreatePartitions or AlterConfigs change them.
type topic struct {
	name     string
	id       [16]byte
	configsP atomic.Pointer[map[string]string] // only the configs set explicitly
	partsP   atomic.Pointer[[]*partition]
	// brokerDefaults are the topic config defaults set as dynamic broker configs
	// (configs.go), shared by all topics; nil for a validate-only topic.
	brokerDefaults *atomic.Pointer[map[string]string]
	// m counts the topic's traffic (broker/metrics); nil without metrics.
	m *metrics.Topic
}

// config returns a config's explicit value, else its dynamic broker-level default.
func (t *topic) config(name string) (string, bool) {
	if v, ok := t.configs()[name]; ok {
		return v, true
	}
	if t.brokerDefaults != nil {
		if m := t.brokerDefaults.Load(); m != nil {
			v, ok := (*m)[name]
			return v, ok
		}
	}
	return "", false
}

// configs returns the explicitly set configs; callers must not modify the map.
func (t *topic) configs() map[string]string {
	if m := t.configsP.Load(); m != nil {
		return *m
	}
	return nil
}

// setConfigs replaces the configs. Broker.mu held.
func (t *topic) setConfigs(m map[string]string) {
	if m == nil {
		m = map[string]string{}
	}
	t.configsP.Store(&m)
}

// partitions returns the partition list; callers must not modify it.
func (t *topic) partitions() []*partition {
	if p := t.partsP.Load(); p != nil {
		return *p
	}
	return nil
}

// partition returns partition idx or nil.
func (t *topic) partition(idx int32) *partition {
	ps := t.partitions()
	if idx < 0 || int(idx) >= len(ps) {
		return nil
	}
	return ps[idx]
}

// growPartitionsLocked adds partitions up to n. Broker.mu held (or load in progress).
func (t *topic) growPartitionsLocked(n int32) {
	old := t.partitions()
	if int32(len(old)) >= n {
		return
	}
	ps := make([]*partition, len(old), n)
	copy(ps, old)
	for i := int32(len(old)); i < n; i++ {
		ps = append(ps, newPartition(t, i))
	}
	t.partsP.Store(&ps)
}

// Topic config defaults (Kafka 4.0's).
const (
	defaultMaxMessageBytes = 1048588
	maxTopicNameLen        = 249
)

func (t *topic) maxMessageBytes() int32 {
	if v, ok := t.config("max.message.bytes"); ok {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && n >= 0 {
			return int32(n)
		}
	}
	return defaultMaxMessageBytes
}

// int64Config returns a numeric topic config, or its default.
func (t *topic) int64Config(name string) int64 {
	if v, ok := t.config(name); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	n, _ := strconv.ParseInt(topicConfigDefaults[name], 10, 64)
	return n
}

func (t *topic) logAppendTime() bool {
	v, _ := t.config("message.timestamp.type")
	return strings.EqualFold(v, "LogAppendTime")
}

// addTopicLocked adds a topic to the maps. b.mu held (or load in progress).
func (b *Broker) addTopicLocked(name string, id [16]byte, partitions int32, configs map[string]string) *topic {
	t := &topic{name: name, id: id, brokerDefaults: &b.admin.topicDefaults, m: b.metrics.Topic(name)}
	t.setConfigs(configs)
	t.growPartitionsLocked(partitions)
	b.topics[name] = t
	b.topicsByID[id] = t
	return t
}

// topic returns the named topic or nil.
func (b *Broker) topic(name string) *topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.topics[name]
}

// topicByID returns the topic with that ID or nil.
func (b *Broker) topicByID(id [16]byte) *topic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.topicsByID[id]
}

// partition returns a topic's partition, or nil and the Kafka error for a missing one.
func (b *Broker) partition(name string, idx int32) (*partition, *kerr.Error) {
	t := b.topic(name)
	if t == nil {
		return nil, kerr.UnknownTopicOrPartition
	}
	if p := t.partition(idx); p != nil {
		return p, nil
	}
	return nil, kerr.UnknownTopicOrPartition
}

// topicPartitions reports a topic's partition count (for the group coordinator).
func (b *Broker) topicPartitions(name string) (int32, bool) {
	t := b.topic(name)
	if t == nil {
		return 0, false
	}
	return int32(len(t.partitions())), true
}

// validTopicName applies Kafka's topic name rules.
func validTopicName(name string) (string, bool) {
	// Kafka's messages (org.apache.kafka.common.internals.Topic.validate, as its controller
	// words them), so tools print the same text.
	switch {
	case name == "":
		return "Topic name is invalid: the empty string is not allowed", false
	case name == "." || name == "..":
		return "Topic name is invalid: '" + name + "' is not allowed", false
	case len(name) > maxTopicNameLen:
		return fmt.Sprintf("Topic name is invalid: the length of '%s' is longer than the max allowed length %d", name, maxTopicNameLen), false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "Topic name is invalid: '" + name + "' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'", false
		}
	}
	return "", true
}

// createTopic creates and persists a topic. It returns the Kafka error and message on failure.
// checkCollision refuses a name colliding with an existing topic's (CreateTopics checks that
// itself, against the topics that existed before the request, as Kafka does).
func (b *Broker) createTopic(name string, partitions int32, configs map[string]string, validateOnly, checkCollision bool, admit func(partitions int32) (*kerr.Error, string)) (*topic, *kerr.Error, string) {
	if msg, ok := validTopicName(name); !ok {
		return nil, kerr.InvalidTopicException, msg
	}
	if partitions == -1 {
		partitions = b.cfg.DefaultPartitions
	}
	if partitions <= 0 {
		return nil, kerr.InvalidPartitions, "number of partitions must be larger than 0"
	}
	if msg, ok := checkTopicConfigs(configs); !ok { // Kafka's type/range checks (configs.go)
		return nil, kerr.InvalidConfig, msg
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, exists := b.topics[name]; exists {
		return nil, kerr.TopicAlreadyExists, "Topic '" + name + "' already exists."
	}
	if other := b.collidingTopicLocked(name); checkCollision && other != "" {
		return nil, kerr.InvalidTopicException, collisionMessage(name, other)
	}
	if admit != nil { // the controller mutation quota, last, as Kafka (quota_mutation.go)
		if e, msg := admit(partitions); e != nil {
			return nil, e, msg
		}
	}
	id := newUUID()
	t := &topic{name: name, id: id}
	t.setConfigs(configs)
	t.growPartitionsLocked(partitions)
	if validateOnly {
		t.id = [16]byte{} // nothing was created: no ID
		return t, nil, ""
	}
	if err := b.appendMetaLocked(t.record()); err != nil {
		b.log.Error("persisting topic failed", "topic", name, "err", err)
		return nil, kerr.KafkaStorageError, err.Error()
	}
	t = b.addTopicLocked(name, id, partitions, configs)
	if err := b.openLogs(t, true); err != nil {
		b.log.Error("opening partition logs failed", "topic", name, "err", err)
	}
	b.log.Info("topic created", "topic", name, "partitions", partitions)
	return t, nil, ""
}

func collisionMessage(name, other string) string {
	return "Topic '" + name + "' collides with existing topic: " + other
}

// collidingTopicLocked returns an existing topic whose name equals name once '.' and '_' are
// treated alike (Kafka refuses such a topic: their metric names would be the same), or "".
func (b *Broker) collidingTopicLocked(name string) string {
	if !strings.ContainsAny(name, "._") {
		return ""
	}
	norm := strings.ReplaceAll(name, ".", "_")
	var found string
	for other := range b.topics {
		if other != name && strings.ReplaceAll(other, ".", "_") == norm && (found == "" || other < found) {
			found = other
		}
	}
	return found
}

// deleteTopic removes a topic and its partition segments; its batches left in the WAL are
// trimmed with the WAL (replay skips batches of deleted topic IDs).
func (b *Broker) deleteTopic(t *topic) *kerr.Error {
	if kerrv := b.unregisterTopic(t); kerrv != nil {
		return kerrv
	}
	// The partition segments go now (after a crash before, the next start removes those of
	// deleted topics); the WAL is trimmed of the topic's tails.
	b.removeTopicData(t)
	return nil
}

// unregisterTopic persists a topic's deletion and drops it from the maps.
func (b *Broker) unregisterTopic(t *topic) *kerr.Error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.topicsByID[t.id] != t {
		return kerr.UnknownTopicOrPartition
	}
	// Noted first: a compaction inside appendMetaLocked must keep the deletion.
	b.deletedIDs[t.id] = true
	if err := b.appendMetaLocked(metaRecord{Type: "delete_topic", ID: t.record().ID}); err != nil {
		delete(b.deletedIDs, t.id)
		return kerr.KafkaStorageError
	}
	delete(b.topics, t.name)
	delete(b.topicsByID, t.id)
	b.metrics.DeleteTopic(t.name)
	for _, p := range t.partitions() {
		p.markDeleted()
	}
	b.log.Info("topic deleted", "topic", t.name)
	return nil
}

// removeTopicData deletes a deleted topic's partition segments, then trims the WAL.
func (b *Broker) removeTopicData(t *topic) {
	for _, p := range t.partitions() {
		if err := b.drain.Remove(p.key()); err != nil {
			b.log.Warn("removing a deleted partition's segments failed", "topic", t.name, "partition", p.idx, "err", err)
			b.purgeS3Topic(t.id) // the S3 tier's flusher deletes what S3 still holds, retrying
		}
	}
	b.removeDeadSegments()
}

// validateTopicConfigs checks config names against Kafka's and the values klite interprets.
func validateTopicConfigs(configs map[string]string) (string, bool) {
	for k, v := range configs {
		if _, known := topicConfigType[k]; !known {
			return "Unknown topic config name: " + k, false
		}
		switch k {
		case "compression.type":
			switch v {
			case "uncompressed", "zstd", "lz4", "snappy", "gzip", "producer":
			default:
				return "invalid value " + v + " for compression.type", false
			}
		case "preallocate", "unclean.leader.election.enable", "remote.storage.enable":
			if v != "true" && v != "false" {
				return "invalid value " + v + " for " + k, false
			}
		case "max.message.bytes":
			if n, err := strconv.ParseInt(v, 10, 32); err != nil || n < 0 {
				return "invalid value " + v + " for max.message.bytes", false
			}
		case "message.timestamp.type":
			if v != "CreateTime" && v != "LogAppendTime" {
				return "invalid value " + v + " for message.timestamp.type", false
			}
		case "cleanup.policy":
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "delete" && p != "compact" {
					return "invalid value " + v + " for cleanup.policy", false
				}
			}
		case "retention.ms", "retention.bytes", "segment.bytes", "segment.ms", "min.insync.replicas",
			"message.timestamp.before.max.ms", "message.timestamp.after.max.ms", "delete.retention.ms",
			"min.compaction.lag.ms", "max.compaction.lag.ms", "flush.messages", "flush.ms":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return "invalid value " + v + " for " + k, false
			}
		}
	}
	return "", true
}

// topicConfigDefaults are the topic config defaults of Kafka 4.0 (as a 4.0.2 broker
// describes them); klite reports these and enforces the ones it interprets.
var topicConfigDefaults = map[string]string{
	"cleanup.policy":                          "delete",
	"compression.gzip.level":                  "-1",
	"compression.lz4.level":                   "9",
	"compression.type":                        "producer",
	"compression.zstd.level":                  "3",
	"delete.retention.ms":                     "86400000",
	"file.delete.delay.ms":                    "60000",
	"flush.messages":                          "9223372036854775807",
	"flush.ms":                                "9223372036854775807",
	"follower.replication.throttled.replicas": "",
	"index.interval.bytes":                    "4096",
	"leader.replication.throttled.replicas":   "",
	"local.retention.bytes":                   "-2",
	"local.retention.ms":                      "-2",
	"max.compaction.lag.ms":                   "9223372036854775807",
	"max.message.bytes":                       "1048588",
	"message.timestamp.after.max.ms":          "3600000",
	"message.timestamp.before.max.ms":         "9223372036854775807",
	"message.timestamp.type":                  "CreateTime",
	"min.cleanable.dirty.ratio":               "0.5",
	"min.compaction.lag.ms":                   "0",
	"min.insync.replicas":                     "1",
	"preallocate":                             "false",
	"remote.log.copy.disable":                 "false",
	"remote.log.delete.on.disable":            "false",
	"remote.storage.enable":                   "false",
	"retention.bytes":                         "-1",
	"retention.ms":                            "604800000",
	"segment.bytes":                           "1073741824",
	"segment.index.bytes":                     "10485760",
	"segment.jitter.ms":                       "0",
	"segment.ms":                              "604800000",
	"unclean.leader.election.enable":          "false",
}

type configEntry struct {
	name, value string
	source      int8 // Kafka's ConfigSource: 1 dynamic topic config, 5 default
}

// describeTopicConfigs lists a topic's set configs and the remaining defaults, sorted by name.
func describeTopicConfigs(set map[string]string) []configEntry {
	var out []configEntry
	for k, v := range set {
		out = append(out, configEntry{k, v, 1})
	}
	for k, v := range topicConfigDefaults {
		if _, ok := set[k]; !ok {
			out = append(out, configEntry{k, v, 5})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// setTopicConfigs validates, persists and applies a topic's full set of explicit configs
// (for AlterConfigs and IncrementalAlterConfigs).
func (b *Broker) setTopicConfigs(t *topic, configs map[string]string) (*kerr.Error, string) {
	if msg, ok := validateTopicConfigs(configs); !ok {
		return kerr.InvalidConfig, msg
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.topicsByID[t.id] != t {
		return kerr.UnknownTopicOrPartition, ""
	}
	rec := t.record()
	rec.Configs = configs
	if err := b.appendMetaLocked(rec); err != nil {
		return kerr.KafkaStorageError, err.Error()
	}
	t.setConfigs(configs)
	cfg := t.logConfig()
	for _, p := range t.partitions() {
		b.logCfgs.Store(p.key(), cfg)
		if lg := p.log(); lg != nil {
			lg.SetConfig(cfg)
		}
	}
	return nil, ""
}

// growPartitions persists and applies a larger partition count (for CreatePartitions).
func (b *Broker) growPartitions(t *topic, n int32) (*kerr.Error, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.topicsByID[t.id] != t {
		return kerr.UnknownTopicOrPartition, ""
	}
	if cur := int32(len(t.partitions())); n <= cur {
		return kerr.InvalidPartitions, "topic currently has " + strconv.Itoa(int(cur)) + " partitions, which is higher than the requested " + strconv.Itoa(int(n)) + "."
	}
	rec := t.record()
	rec.Partitions = n
	if err := b.appendMetaLocked(rec); err != nil {
		return kerr.KafkaStorageError, err.Error()
	}
	t.growPartitionsLocked(n)
	if err := b.openLogs(t, true); err != nil {
		b.log.Error("opening partition logs failed", "topic", t.name, "err", err)
	}
	return nil, ""
}
