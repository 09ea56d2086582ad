package broker

// Metadata log records. Each MetaLog record is one JSON object with a "type" field:
//
//	{"type":"cluster","cluster_id":"..."}                           once, on first start
//	{"type":"topic","name":"t","id":"<hex>","partitions":3,"configs":{...}}  create or update
//	{"type":"delete_topic","id":"<hex>"}  kept in snapshots: WAL replay skips only known deletions
//	{"type":"pid_block","end":2000}  producer IDs below end may have been handed out
//	{"type":"log_start","id":"<hex>","partition":0,"offset":4}  DeleteRecords (delete_records.go)
//	{"type":"broker_configs","name":"","configs":{...}}  dynamic broker configs (configs.go)
//	{"type":"scram","name":"alice","mechanism":"SCRAM-SHA-256",...}  SCRAM credential (scram.go)
//	{"type":"delete_scram","name":"alice","mechanism":"SCRAM-SHA-256"}
//	{"type":"acl","acl":{"resource_type":"TOPIC","resource_name":"t","pattern_type":"LITERAL",
//	  "principal":"User:alice","host":"*","operation":"READ","permission":"ALLOW"}}  (acls.go)
//	{"type":"delete_acl","acl":{...}}
//	{"type":"log","name":"groups"}  the coordinator log meta/groups.log (or txns) was created (meta_logs.go)
//	{"type":"client_quota","quota":{"entity":[{"type":"user","name":null}],"key":"producer_byte_rate",
//	  "value":1024}}  set or (with "remove":true) remove one quota key (client_quotas.go)
//
// Replaying them in order rebuilds topics, configs, the cluster ID and the producer ID
// allocator; offsets and producer sequence state come from the WAL. JSON keeps the log
// readable with standard tools; it is small (one record per topic change).

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/klite/klite/broker/acl"
	"github.com/klite/klite/broker/storage"
)

type metaRecord struct {
	Type       string            `json:"type"`
	ClusterID  string            `json:"cluster_id,omitempty"`
	Name       string            `json:"name,omitempty"`
	ID         string            `json:"id,omitempty"`
	Partitions int32             `json:"partitions,omitempty"`
	Configs    map[string]string `json:"configs,omitempty"`
	End        int64             `json:"end,omitempty"`
	Partition  int32             `json:"partition,omitempty"`
	Offset     int64             `json:"offset,omitempty"`
	// SCRAM credentials (scram.go); byte fields are base64 in JSON.
	Mechanism  string `json:"mechanism,omitempty"`
	Salt       []byte `json:"salt,omitempty"`
	Iterations int    `json:"iterations,omitempty"`
	StoredKey  []byte `json:"stored_key,omitempty"`
	ServerKey  []byte `json:"server_key,omitempty"`
	// ACL binding (acls.go).
	ACL *acl.Binding `json:"acl,omitempty"`
	// Client quota change (client_quotas.go).
	Quota *quotaRecord `json:"quota,omitempty"`
}

// pidBlockSize is how many producer IDs one pid_block record reserves.
const pidBlockSize = 1000

// metaCompactBytes is the metadata log size above which it is rewritten as a snapshot.
const metaCompactBytes = 4 << 20

func encodeMeta(r metaRecord) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // only plain types: cannot fail
	}
	return b
}

// replayMeta rebuilds topics, cluster ID and the producer ID high mark from the metadata log.
func (b *Broker) replayMeta() error {
	return b.meta.Replay(func(raw []byte) error {
		var r metaRecord
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("metadata log record: %w", err)
		}
		switch r.Type {
		case "cluster":
			b.clusterID = r.ClusterID
		case "topic":
			id, err := parseTopicID(r.ID)
			if err != nil {
				return err
			}
			if r.Partitions < 0 || r.Partitions > maxTopicPartitions {
				// Never written by klite (CreateTopics and CreatePartitions stay under the
				// cap): damage, refused before it allocates a partition table that large.
				return fmt.Errorf("%w: %s: the record of topic %q (ID %s) has %d partitions; a topic has at most %d",
					storage.ErrCorrupt, filepath.Join(b.dataDir, "meta.log"), r.Name, r.ID, r.Partitions, maxTopicPartitions)
			}
			if t := b.topicsByID[id]; t != nil {
				t.setConfigs(r.Configs)
				t.growPartitionsLocked(r.Partitions)
				return nil
			}
			b.addTopicLocked(r.Name, id, r.Partitions, r.Configs)
		case "delete_topic":
			id, err := parseTopicID(r.ID)
			if err != nil {
				return err
			}
			if t := b.topicsByID[id]; t != nil {
				delete(b.topicsByID, id)
				delete(b.topics, t.name)
				b.metrics.DeleteTopic(t.name)
			}
			b.deletedIDs[id] = true
		case "pid_block":
			b.pidBlockEnd = max(b.pidBlockEnd, r.End)
			b.nextPID = b.pidBlockEnd
		case "log_start", "broker_configs":
			return b.replayAdminMeta(r)
		case "scram", "delete_scram":
			return b.replayScramMeta(r)
		case "acl", "delete_acl":
			return b.replayACLMeta(r)
		case "client_quota":
			return b.replayQuotaMeta(r)
		case "log":
			if b.createdLogs == nil {
				b.createdLogs = map[string]bool{}
			}
			b.createdLogs[r.Name] = true
		default:
			// A record type this build does not know was written by a newer klite. Skipping
			// it would lose that state silently (and the next compaction would drop it for
			// good): refuse instead. Upgrades only go forward (README, Operations).
			return fmt.Errorf("metadata log record of unknown type %q: written by a newer klite version? This build cannot read it; run the newer version (downgrades are not supported)", r.Type)
		}
		return nil
	})
}

// metaSnapshot returns the minimal records that rebuild the current metadata. b.mu held.
func (b *Broker) metaSnapshotLocked() [][]byte {
	recs := [][]byte{encodeMeta(metaRecord{Type: "cluster", ClusterID: b.clusterID})}
	// Deleted topic IDs stay known (their batches may still be in the WAL; replay skips
	// them, while batches of an unknown ID are corruption). Before the topics: an ID
	// noted as deleted by a delete whose append failed is live again right after.
	for id := range b.deletedIDs {
		recs = append(recs, encodeMeta(metaRecord{Type: "delete_topic", ID: hex.EncodeToString(id[:])}))
	}
	for _, t := range b.topics {
		recs = append(recs, encodeMeta(t.record()))
	}
	for _, r := range b.adminSnapshotLocked() {
		recs = append(recs, encodeMeta(r))
	}
	for _, r := range b.scramSnapshotLocked() {
		recs = append(recs, encodeMeta(r))
	}
	for _, r := range b.aclSnapshotLocked() {
		recs = append(recs, encodeMeta(r))
	}
	for name := range b.createdLogs {
		recs = append(recs, encodeMeta(metaRecord{Type: "log", Name: name}))
	}
	for _, r := range b.quotaSnapshot() {
		recs = append(recs, encodeMeta(r))
	}
	recs = append(recs, encodeMeta(metaRecord{Type: "pid_block", End: b.pidBlockEnd}))
	return recs
}

// appendMeta durably appends records, compacting the log when it has grown. b.mu held.
func (b *Broker) appendMetaLocked(recs ...metaRecord) error {
	raw := make([][]byte, len(recs))
	for i, r := range recs {
		raw[i] = encodeMeta(r)
	}
	if err := b.meta.AppendBatch(raw); err != nil {
		return err
	}
	if b.meta.Size() > metaCompactBytes {
		if err := b.meta.Compact(b.metaSnapshotLocked()); err != nil {
			b.log.Warn("metadata log compaction failed", "err", err)
		}
	}
	return nil
}

func (t *topic) record() metaRecord {
	return metaRecord{Type: "topic", Name: t.name, ID: hex.EncodeToString(t.id[:]), Partitions: int32(len(t.partitions())), Configs: t.configs()}
}

func parseTopicID(s string) ([16]byte, error) {
	var id [16]byte
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != 16 {
		return id, fmt.Errorf("metadata log: bad topic id %q", s)
	}
	copy(id[:], raw)
	return id, nil
}

// newUUID returns a random (version 4) UUID; Kafka topic IDs are never all zero.
func newUUID() [16]byte {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		panic(err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// NewClusterID returns a cluster ID in Kafka's format: a UUID in unpadded URL-safe base64.
func NewClusterID() string {
	u := newUUID()
	return base64.RawURLEncoding.EncodeToString(u[:])
}
