package broker

import (
	"encoding/json"
	"testing"

	"github.com/klite/klite/broker/quota"
)

// FuzzQuotaMetaRecord feeds arbitrary metadata log records to the client quota replay: a
// record either fails or applies a change, after which the store describes and resolves
// without panicking, and its snapshot re-encodes to records that replay to the same state.
func FuzzQuotaMetaRecord(f *testing.F) {
	f.Add(encodeMeta(quotaMetaRecord(quota.Change{Entity: quota.Entity{ClientID: quota.Named("app")}, Key: quota.ProducerByteRate, Value: 1024})))
	f.Add(encodeMeta(quotaMetaRecord(quota.Change{Entity: quota.Entity{User: quota.DefaultName, ClientID: quota.Named("c")}, Key: quota.ConsumerByteRate, Remove: true})))
	f.Add([]byte(`{"type":"client_quota","quota":{"entity":[{"type":"ip","name":"::1"}],"key":"connection_creation_rate","value":3}}`))
	f.Add([]byte(`{"type":"client_quota","quota":{"entity":[{"type":"group","name":"g"}],"key":"x"}}`))
	f.Add([]byte(`{"type":"client_quota"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var r metaRecord
		if err := json.Unmarshal(raw, &r); err != nil || r.Type != "client_quota" {
			return
		}
		b := &Broker{quotas: quota.NewStore()}
		if err := b.replayQuotaMeta(r); err != nil {
			return
		}
		if _, err := b.quotas.Describe(nil, false); err != nil {
			t.Fatal(err)
		}
		b.quotas.Resolve(quota.ProducerByteRate, "u", "c")
		again := &Broker{quotas: quota.NewStore()}
		for _, rec := range b.quotaSnapshot() {
			var back metaRecord
			if err := json.Unmarshal(encodeMeta(rec), &back); err != nil {
				t.Fatal(err)
			}
			if err := again.replayQuotaMeta(back); err != nil {
				t.Fatalf("snapshot record does not replay: %v", err)
			}
		}
		a, _ := b.quotas.Describe(nil, false)
		c, _ := again.quotas.Describe(nil, false)
		if len(a) != len(c) {
			t.Fatalf("snapshot replays to %d entries, want %d", len(c), len(a))
		}
	})
}
