package acl

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzAuthorize checks the authorizer's invariants on arbitrary bindings and requests: super
// users are always allowed; an ALLOW for exactly the request allows it; adding a DENY ALL that
// applies denies it; and no input panics.
func FuzzAuthorize(f *testing.F) {
	f.Add("orders", uint8(3), "ord", uint8(4), uint8(3), "User:a", "1.2.3.4", "orders-x")
	f.Add("*", uint8(3), "", uint8(3), uint8(8), "User:*", "*", "")
	f.Fuzz(func(t *testing.T, name string, pt uint8, other string, otherPT uint8, op uint8, principal, host, resource string) {
		a := New([]string{"User:super"})
		operation := kmsg.ACLOperation(op % 15)
		a.Add(Binding{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: other, PatternType: kmsg.ACLResourcePatternType(otherPT % 5),
			Principal: principal, Host: host, Operation: operation, Permission: kmsg.ACLPermissionTypeAllow})
		a.Add(Binding{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: name, PatternType: kmsg.ACLResourcePatternType(pt % 5),
			Principal: "User:*", Host: "*", Operation: kmsg.ACLOperationRead, Permission: kmsg.ACLPermissionTypeAllow})
		a.AuthorizeAny(principal, host, operation, kmsg.ACLResourceTypeTopic)
		a.AuthorizedOperations(principal, host, kmsg.ACLResourceTypeTopic, resource)
		if !a.Authorize("User:super", host, operation, kmsg.ACLResourceTypeTopic, resource) {
			t.Fatal("super user denied")
		}
		exact := Binding{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: resource, PatternType: kmsg.ACLResourcePatternTypeLiteral,
			Principal: principal, Host: host, Operation: kmsg.ACLOperationWrite, Permission: kmsg.ACLPermissionTypeAllow}
		a.Add(exact)
		if principal != "User:super" && !a.Authorize(principal, host, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, resource) {
			t.Fatalf("exact ALLOW %+v does not allow", exact)
		}
		deny := exact
		deny.Operation, deny.Permission = kmsg.ACLOperationAll, kmsg.ACLPermissionTypeDeny
		a.Add(deny)
		if principal != "User:super" && a.Authorize(principal, host, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic, resource) {
			t.Fatalf("DENY ALL %+v does not deny", deny)
		}
	})
}
