package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestACLAPIsSecurityDisabled: without an authorizer the ACL APIs answer SECURITY_DISABLED,
// as Kafka 4.0 does, through kadm as a client sees it.
func TestACLAPIsSecurityDisabled(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	adm := tb.admin(t)
	ctx := ctxT(t, 15*time.Second)
	b := kadm.NewACLs().Allow("User:alice").Topics("t").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	created, err := adm.CreateACLs(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 1 || !errors.Is(created[0].Err, kerr.SecurityDisabled) {
		t.Fatalf("create: %+v", created)
	}
	dreq := kmsg.NewPtrDescribeACLsRequest()
	dreq.ResourceType, dreq.ResourcePatternType, dreq.Operation, dreq.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	dresp, err := dreq.RequestWith(ctx, tb.client(t))
	if err != nil {
		t.Fatal(err)
	}
	if dresp.ErrorCode != kerr.SecurityDisabled.Code || dresp.ErrorMessage == nil || len(dresp.Resources) != 0 {
		t.Fatalf("describe: %v %v", kerr.ErrorForCode(dresp.ErrorCode), dresp.ErrorMessage)
	}
	delReq := kmsg.NewPtrDeleteACLsRequest()
	for range 2 {
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourcePatternType, f.Operation, f.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		delReq.Filters = append(delReq.Filters, f)
	}
	delResp, err := delReq.RequestWith(ctx, tb.client(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(delResp.Results) != 2 || delResp.Results[0].ErrorCode != kerr.SecurityDisabled.Code || delResp.Results[1].ErrorCode != kerr.SecurityDisabled.Code {
		t.Fatalf("delete: %+v", delResp.Results)
	}
}
