package broker

// DescribeClientQuotas (48) and AlterClientQuotas (49), versions 0-1 as Kafka 4.0, with its
// entity types (user, client-id, ip; a null name is the type's default) and keys
// (producer_byte_rate, consumer_byte_rate, request_percentage, controller_mutation_rate;
// connection_creation_rate for ip), validated and matched as Kafka does (broker/quota).
// Describe needs DESCRIBE_CONFIGS on the cluster, Alter ALTER_CONFIGS (with --acl-enabled).
//
// Accepted changes are appended to the metadata log (meta.go) before the answer, one record
// per changed key, as Kafka's ClientQuotaRecord:
//
//	{"type":"client_quota","quota":{"entity":[{"type":"client-id","name":"app"}],
//	  "key":"producer_byte_rate","value":1024}}
//	{"type":"client_quota","quota":{"entity":[{"type":"user","name":null}],
//	  "key":"consumer_byte_rate","remove":true}}
//
// Enforcement (quota_throttle.go) reads the same store.

import (
	"fmt"

	"github.com/klite/klite/broker/quota"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(48, 0, 1, handleDescribeClientQuotas)
	register(49, 0, 1, handleAlterClientQuotas)
}

// quotaRecord is the "quota" field of a client_quota metadata record.
type quotaRecord struct {
	Entity []quotaRecordPart `json:"entity"`
	Key    string            `json:"key"`
	Value  float64           `json:"value,omitempty"`
	Remove bool              `json:"remove,omitempty"`
}

type quotaRecordPart struct {
	Type string  `json:"type"`
	Name *string `json:"name"` // null: the default entity
}

func quotaMetaRecord(c quota.Change) metaRecord {
	r := &quotaRecord{Key: c.Key, Value: c.Value, Remove: c.Remove}
	for _, p := range c.Entity.Parts() {
		r.Entity = append(r.Entity, quotaRecordPart{Type: p.Type, Name: p.Name})
	}
	return metaRecord{Type: "client_quota", Quota: r}
}

// replayQuotaMeta applies a client_quota record during metadata replay.
func (b *Broker) replayQuotaMeta(r metaRecord) error {
	if r.Quota == nil {
		return fmt.Errorf("metadata log: client_quota record without quota")
	}
	raw := make(quota.RawEntity, len(r.Quota.Entity))
	for i, p := range r.Quota.Entity {
		raw[i] = quota.Part{Type: p.Type, Name: p.Name}
	}
	e, problem := raw.Fold()
	if problem != "" {
		return fmt.Errorf("metadata log: client_quota record: %s", problem)
	}
	b.quotas.Apply(quota.Change{Entity: e, Key: r.Quota.Key, Value: r.Quota.Value, Remove: r.Quota.Remove})
	return nil
}

// quotaSnapshot returns the records that rebuild the stored quotas.
func (b *Broker) quotaSnapshot() []metaRecord {
	var out []metaRecord
	for _, c := range b.quotas.Snapshot() {
		out = append(out, quotaMetaRecord(c))
	}
	return out
}

// clusterAuthFailedMsg is the message of Kafka's ClusterAuthorizationException by default.
const clusterAuthFailedMsg = "Cluster authorization failed."

func handleDescribeClientQuotas(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response)) {
	r := req.(*kmsg.DescribeClientQuotasRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	if !b.allowedCluster(rc, kmsg.ACLOperationDescribeConfigs) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(clusterAuthFailedMsg)
		respond(resp)
		return
	}
	comps := make([]quota.Component, len(r.Components))
	for i, c := range r.Components {
		comps[i] = quota.Component{Type: c.EntityType, MatchType: int8(c.MatchType), Match: c.Match}
	}
	entries, err := b.quotas.Describe(comps, r.Strict)
	if err != nil {
		de := err.(*quota.DescribeError)
		resp.ErrorCode = kerr.InvalidRequest.Code
		if de.UnsupportedType {
			resp.ErrorCode = kerr.UnsupportedVersion.Code
		}
		resp.ErrorMessage = kmsg.StringPtr(de.Msg)
		respond(resp)
		return
	}
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{} // Kafka answers [] for no match
	for _, e := range entries {
		entry := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, p := range e.Entity.Parts() {
			ed := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			ed.Type, ed.Name = p.Type, p.Name
			entry.Entity = append(entry.Entity, ed)
		}
		for _, k := range e.Keys() {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = k, e.Values[k]
			entry.Values = append(entry.Values, v)
		}
		resp.Entries = append(resp.Entries, entry)
	}
	respond(resp)
}

func handleAlterClientQuotas(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response)) {
	r := req.(*kmsg.AlterClientQuotasRequest)
	resp := r.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	alts := make([]quota.Alteration, len(r.Entries))
	for i, e := range r.Entries {
		for _, p := range e.Entity {
			alts[i].Entity = append(alts[i].Entity, quota.Part{Type: p.Type, Name: p.Name})
		}
		for _, op := range e.Ops {
			alts[i].Ops = append(alts[i].Ops, quota.Op{Key: op.Key, Value: op.Value, Remove: op.Remove})
		}
	}
	addEntry := func(parts []quota.Part, code int16, msg *string) {
		entry := kmsg.NewAlterClientQuotasResponseEntry()
		entry.ErrorCode, entry.ErrorMessage = code, msg
		for _, p := range parts {
			ed := kmsg.NewAlterClientQuotasResponseEntryEntity()
			ed.Type, ed.Name = p.Type, p.Name
			entry.Entity = append(entry.Entity, ed)
		}
		resp.Entries = append(resp.Entries, entry)
	}
	if !b.allowedCluster(rc, kmsg.ACLOperationAlterConfigs) {
		// Kafka's getErrorResponse: every entry as sent, the same error.
		for _, a := range alts {
			addEntry(a.Entity, kerr.ClusterAuthorizationFailed.Code, kmsg.StringPtr(clusterAuthFailedMsg))
		}
		respond(resp)
		return
	}
	b.mu.Lock()
	results, changes := b.quotas.Plan(alts)
	var appendErr error
	if !r.ValidateOnly && len(changes) > 0 {
		recs := make([]metaRecord, len(changes))
		for i, c := range changes {
			recs[i] = quotaMetaRecord(c)
		}
		if appendErr = b.appendMetaLocked(recs...); appendErr == nil {
			b.quotas.Apply(changes...)
		}
	}
	b.mu.Unlock()
	if appendErr != nil {
		b.log.Error("persisting client quotas failed", "err", appendErr)
	}
	for _, res := range results {
		code, msg := int16(0), (*string)(nil)
		switch {
		case res.Err != "":
			code, msg = kerr.InvalidRequest.Code, kmsg.StringPtr(res.Err)
		case appendErr != nil:
			code, msg = kerr.UnknownServerError.Code, kmsg.StringPtr("persisting the quota failed")
		}
		addEntry(res.Parts, code, msg)
	}
	respond(resp)
}
