package broker

import (
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/klite/klite/broker/acl"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzACLMetaRecord feeds arbitrary metadata log records to the ACL replay: a record either
// fails to decode or applies a binding that the authorizer then evaluates without panicking;
// a binding read back is re-encoded to the same record.
func FuzzACLMetaRecord(f *testing.F) {
	bd := acl.Binding{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "t", PatternType: kmsg.ACLResourcePatternTypePrefixed,
		Principal: "User:a", Host: "*", Operation: kmsg.ACLOperationRead, Permission: kmsg.ACLPermissionTypeAllow}
	f.Add(encodeMeta(metaRecord{Type: "acl", ACL: &bd}))
	f.Add(encodeMeta(metaRecord{Type: "delete_acl", ACL: &bd}))
	f.Add([]byte(`{"type":"acl","acl":{"resource_type":"GROUP","operation":"ALL","permission":"DENY"}}`))
	f.Add([]byte(`{"type":"acl","acl":{"resource_type":99}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var r metaRecord
		if err := json.Unmarshal(raw, &r); err != nil || (r.Type != "acl" && r.Type != "delete_acl") {
			return
		}
		b := &Broker{acls: acl.New([]string{"User:admin"}), log: slog.New(slog.DiscardHandler)}
		if err := b.replayACLMeta(r); err != nil {
			return
		}
		if r.ACL != nil && r.ACL.Validate() == nil {
			b.acls.Authorize(r.ACL.Principal, r.ACL.Host, r.ACL.Operation, r.ACL.ResourceType, r.ACL.ResourceName)
			b.acls.AuthorizeAny(r.ACL.Principal, r.ACL.Host, r.ACL.Operation, r.ACL.ResourceType)
			var back metaRecord
			if err := json.Unmarshal(encodeMeta(r), &back); err != nil || back.ACL == nil || *back.ACL != *r.ACL {
				t.Fatalf("re-encoding %+v: %v %+v", r.ACL, err, back.ACL)
			}
		}
	})
}
