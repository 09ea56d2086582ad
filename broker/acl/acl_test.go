package acl

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	topicT   = kmsg.ACLResourceTypeTopic
	groupT   = kmsg.ACLResourceTypeGroup
	literal  = kmsg.ACLResourcePatternTypeLiteral
	prefixed = kmsg.ACLResourcePatternTypePrefixed
	allow    = kmsg.ACLPermissionTypeAllow
	deny     = kmsg.ACLPermissionTypeDeny
)

func bind(rt kmsg.ACLResourceType, name string, pt kmsg.ACLResourcePatternType, principal, host string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) Binding {
	return Binding{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: principal, Host: host, Operation: op, Permission: perm}
}

func TestAuthorize(t *testing.T) {
	a := New([]string{"User:admin"})
	a.Add(
		bind(topicT, "orders", literal, "User:alice", "*", kmsg.ACLOperationRead, allow),
		bind(topicT, "logs-", prefixed, "User:alice", "*", kmsg.ACLOperationWrite, allow),
		bind(topicT, "logs-secret", literal, "User:alice", "*", kmsg.ACLOperationAll, deny),
		bind(topicT, "*", literal, "User:*", "10.0.0.9", kmsg.ACLOperationAlterConfigs, allow),
		bind(groupT, "g", literal, "User:bob", "127.0.0.1", kmsg.ACLOperationRead, allow),
		bind(topicT, "orders", literal, "User:carol", "*", kmsg.ACLOperationRead, allow),
		bind(topicT, "orders", literal, "User:carol", "*", kmsg.ACLOperationDescribe, deny),
	)
	for _, c := range []struct {
		principal, host string
		op              kmsg.ACLOperation
		rt              kmsg.ACLResourceType
		name            string
		want            bool
	}{
		{"User:admin", "1.2.3.4", kmsg.ACLOperationDelete, topicT, "anything", true}, // super user
		{"User:alice", "1.2.3.4", kmsg.ACLOperationRead, topicT, "orders", true},
		{"User:alice", "1.2.3.4", kmsg.ACLOperationDescribe, topicT, "orders", true}, // READ implies DESCRIBE
		{"User:alice", "1.2.3.4", kmsg.ACLOperationWrite, topicT, "orders", false},
		{"User:alice", "1.2.3.4", kmsg.ACLOperationRead, topicT, "orders2", false}, // literal is exact
		{"User:alice", "1.2.3.4", kmsg.ACLOperationWrite, topicT, "logs-app", true},
		{"User:alice", "1.2.3.4", kmsg.ACLOperationDescribe, topicT, "logs-app", true},  // WRITE implies DESCRIBE
		{"User:alice", "1.2.3.4", kmsg.ACLOperationWrite, topicT, "logs-secret", false}, // deny wins
		{"User:alice", "1.2.3.4", kmsg.ACLOperationWrite, topicT, "logs", false},        // prefix longer than name
		{"User:bob", "10.0.0.9", kmsg.ACLOperationAlterConfigs, topicT, "x", true},      // User:* and * name
		{"User:bob", "10.0.0.9", kmsg.ACLOperationDescribeConfigs, topicT, "x", true},   // ALTER_CONFIGS implies DESCRIBE_CONFIGS
		{"User:bob", "10.0.0.8", kmsg.ACLOperationAlterConfigs, topicT, "x", false},     // host
		{"User:bob", "127.0.0.1", kmsg.ACLOperationRead, groupT, "g", true},
		{"User:bob", "127.0.0.1", kmsg.ACLOperationRead, topicT, "g", false}, // resource type
		{"User:bob", "127.0.0.1", kmsg.ACLOperationDelete, groupT, "g", false},
		{"User:carol", "1.2.3.4", kmsg.ACLOperationRead, topicT, "orders", true},
		{"User:carol", "1.2.3.4", kmsg.ACLOperationDescribe, topicT, "orders", false}, // deny DESCRIBE beats implied
		{"User:nobody", "1.2.3.4", kmsg.ACLOperationDescribe, topicT, "orders", false},
	} {
		if got := a.Authorize(c.principal, c.host, c.op, c.rt, c.name); got != c.want {
			t.Errorf("%s@%s %s %s %q = %v, want %v", c.principal, c.host, c.op, c.rt, c.name, got, c.want)
		}
	}
}

func TestAuthorizeAny(t *testing.T) {
	a := New(nil)
	if a.AuthorizeAny("User:a", "h", kmsg.ACLOperationWrite, topicT) {
		t.Fatal("no bindings: allowed")
	}
	a.Add(bind(topicT, "t", literal, "User:a", "*", kmsg.ACLOperationWrite, allow))
	if !a.AuthorizeAny("User:a", "h", kmsg.ACLOperationWrite, topicT) {
		t.Fatal("write on t: not allowed")
	}
	a.Add(bind(topicT, "", prefixed, "User:a", "*", kmsg.ACLOperationWrite, deny))
	if a.AuthorizeAny("User:a", "h", kmsg.ACLOperationWrite, topicT) {
		t.Fatal("deny on every topic: allowed")
	}
}

func TestFilter(t *testing.T) {
	a := New(nil)
	lit := bind(topicT, "orders", literal, "User:a", "*", kmsg.ACLOperationRead, allow)
	wild := bind(topicT, "*", literal, "User:b", "*", kmsg.ACLOperationWrite, deny)
	pre := bind(topicT, "ord", prefixed, "User:a", "h1", kmsg.ACLOperationRead, allow)
	grp := bind(groupT, "orders", literal, "User:a", "*", kmsg.ACLOperationRead, allow)
	a.Add(lit, wild, pre, grp, lit)
	s := func(v string) *string { return &v }
	any := Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	for _, c := range []struct {
		name string
		mod  func(*Filter)
		want int
	}{
		{"any", func(*Filter) {}, 4},
		{"topic", func(f *Filter) { f.ResourceType = topicT }, 3},
		{"literal orders", func(f *Filter) { f.PatternType, f.ResourceName = literal, s("orders") }, 2},
		{"any orders", func(f *Filter) { f.ResourceName = s("orders") }, 2},
		{"match orders", func(f *Filter) {
			f.ResourceType, f.PatternType, f.ResourceName = topicT, kmsg.ACLResourcePatternTypeMatch, s("orders")
		}, 3},
		{"match other", func(f *Filter) {
			f.ResourceType, f.PatternType, f.ResourceName = topicT, kmsg.ACLResourcePatternTypeMatch, s("x")
		}, 1},
		{"prefixed ord", func(f *Filter) { f.PatternType, f.ResourceName = prefixed, s("ord") }, 1},
		{"principal b", func(f *Filter) { f.Principal = s("User:b") }, 1},
		{"host h1", func(f *Filter) { f.Host = s("h1") }, 1},
		{"deny", func(f *Filter) { f.Permission = deny }, 1},
		{"read", func(f *Filter) { f.Operation = kmsg.ACLOperationRead }, 3},
	} {
		f := any
		c.mod(&f)
		if got := a.Select(f); len(got) != c.want {
			t.Errorf("%s: %d bindings %v, want %d", c.name, len(got), got, c.want)
		}
	}
	a.Remove(a.Select(Filter{ResourceType: groupT, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny})...)
	if got := a.All(); len(got) != 3 {
		t.Fatalf("after removing the group binding: %v", got)
	}
	if (Filter{ResourceType: kmsg.ACLResourceTypeUnknown}).Unknown() != true || any.Unknown() {
		t.Fatal("Unknown")
	}
}

func TestValidate(t *testing.T) {
	ok := bind(topicT, "t", literal, "User:a", "*", kmsg.ACLOperationRead, allow)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Binding){
		"any type":        func(b *Binding) { b.ResourceType = kmsg.ACLResourceTypeAny },
		"match pattern":   func(b *Binding) { b.PatternType = kmsg.ACLResourcePatternTypeMatch },
		"any operation":   func(b *Binding) { b.Operation = kmsg.ACLOperationAny },
		"any permission":  func(b *Binding) { b.Permission = kmsg.ACLPermissionTypeAny },
		"empty name":      func(b *Binding) { b.ResourceName = "" },
		"cluster name":    func(b *Binding) { b.ResourceType = kmsg.ACLResourceTypeCluster },
		"bad principal":   func(b *Binding) { b.Principal = "alice" },
		"empty host":      func(b *Binding) { b.Host = "" },
		"unknown op code": func(b *Binding) { b.Operation = 99 },
		"invalid UTF-8":   func(b *Binding) { b.ResourceName = "t\xff" },
	} {
		b := ok
		mod(&b)
		if b.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAuthorizedOperationsAndSuperUsers(t *testing.T) {
	a := New(nil)
	a.Add(bind(groupT, "g", literal, "User:a", "*", kmsg.ACLOperationRead, allow))
	want := int32(1<<kmsg.ACLOperationRead | 1<<kmsg.ACLOperationDescribe)
	if got := a.AuthorizedOperations("User:a", "h", groupT, "g"); got != want {
		t.Fatalf("ops %b, want %b", got, want)
	}
	var off *Authorizer
	if got := off.AuthorizedOperations("User:a", "h", groupT, "g"); got != want|1<<kmsg.ACLOperationDelete|1<<kmsg.ACLOperationDescribeConfigs|1<<kmsg.ACLOperationAlterConfigs {
		t.Fatalf("no authorizer: ops %b", got)
	}
	su, err := ParseSuperUsers(" User:admin ;User:ops;")
	if err != nil || len(su) != 2 || su[1] != "User:ops" {
		t.Fatalf("%v %v", su, err)
	}
	if _, err := ParseSuperUsers("admin"); err == nil {
		t.Fatal("accepted admin")
	}
}
