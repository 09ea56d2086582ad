// Package acl is klite's authorizer: ACL bindings, the filters of DescribeAcls and DeleteAcls,
// and the decision whether a principal from a host may perform an operation on a resource.
// It follows Kafka 4.0's StandardAuthorizer:
//
//   - super users may do everything;
//   - a binding applies to a resource of its type when its pattern is LITERAL with the
//     resource's name or "*", or PREFIXED with a prefix of the name; to a principal when its
//     principal is that principal or "User:*"; to a host when its host is that host or "*";
//   - any applying DENY binding whose operation is the requested one or ALL denies (deny wins);
//   - otherwise an applying ALLOW binding whose operation is the requested one, ALL, or one that
//     implies it allows: READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies
//     DESCRIBE_CONFIGS;
//   - otherwise it is denied (Kafka's allow.everyone.if.no.acl.found=false).
//
// The package is pure: storing bindings durably is the broker's job.
package acl

import (
	"errors"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClusterName is the only name of the CLUSTER resource.
const ClusterName = "kafka-cluster"

// Wildcard matches every name (LITERAL "*"), every principal ("User:*") and every host ("*").
const Wildcard = "*"

// Binding is one ACL: a resource pattern and an entry.
type Binding struct {
	ResourceType kmsg.ACLResourceType        `json:"resource_type"`
	ResourceName string                      `json:"resource_name"`
	PatternType  kmsg.ACLResourcePatternType `json:"pattern_type"`
	Principal    string                      `json:"principal"`
	Host         string                      `json:"host"`
	Operation    kmsg.ACLOperation           `json:"operation"`
	Permission   kmsg.ACLPermissionType      `json:"permission"`
}

// Filter selects bindings for DescribeAcls and DeleteAcls. Nil strings match anything;
// ANY enums match anything; PatternType MATCH selects the bindings that apply to the named
// resource (LITERAL with the name or "*", PREFIXED with a prefix of it).
type Filter struct {
	ResourceType kmsg.ACLResourceType
	ResourceName *string
	PatternType  kmsg.ACLResourcePatternType
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// Validate checks a binding to be created as Kafka's CreateAcls does; the error's text is the
// message for INVALID_REQUEST.
func (b Binding) Validate() error {
	switch b.ResourceType {
	case kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeCluster,
		kmsg.ACLResourceTypeTransactionalId, kmsg.ACLResourceTypeDelegationToken, kmsg.ACLResourceTypeUser:
	default:
		return errors.New("Invalid resourceType " + b.ResourceType.String())
	}
	switch b.PatternType {
	case kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed:
	default:
		return errors.New("Invalid patternType " + b.PatternType.String())
	}
	if b.Operation <= kmsg.ACLOperationAny || b.Operation > kmsg.ACLOperationDescribeTokens {
		return errors.New("Invalid operation " + b.Operation.String())
	}
	if b.Permission != kmsg.ACLPermissionTypeAllow && b.Permission != kmsg.ACLPermissionTypeDeny {
		return errors.New("Invalid permissionType " + b.Permission.String())
	}
	if b.ResourceName == "" {
		return errors.New("Invalid empty resource name")
	}
	if b.ResourceType == kmsg.ACLResourceTypeCluster && b.ResourceName != ClusterName {
		return errors.New("The only valid name for the CLUSTER resource is " + ClusterName)
	}
	if typ, name, ok := strings.Cut(b.Principal, ":"); !ok || typ == "" || name == "" {
		return errors.New("Invalid principal " + b.Principal)
	}
	if b.Host == "" {
		return errors.New("Invalid empty host")
	}
	// Bindings are stored as JSON, which cannot carry invalid UTF-8 unchanged.
	if !utf8.ValidString(b.ResourceName) || !utf8.ValidString(b.Principal) || !utf8.ValidString(b.Host) {
		return errors.New("Invalid UTF-8 in the ACL binding")
	}
	return nil
}

// Unknown reports whether a filter has an UNKNOWN element (Kafka refuses such filters).
func (f Filter) Unknown() bool {
	return f.ResourceType == kmsg.ACLResourceTypeUnknown || f.PatternType == kmsg.ACLResourcePatternTypeUnknown ||
		f.Operation == kmsg.ACLOperationUnknown || f.Permission == kmsg.ACLPermissionTypeUnknown
}

// Matches reports whether the filter selects the binding.
func (f Filter) Matches(b Binding) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != b.ResourceType {
		return false
	}
	if !f.matchesPattern(b) {
		return false
	}
	if f.Principal != nil && *f.Principal != b.Principal {
		return false
	}
	if f.Host != nil && *f.Host != b.Host {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && f.Operation != b.Operation {
		return false
	}
	return f.Permission == kmsg.ACLPermissionTypeAny || f.Permission == b.Permission
}

func (f Filter) matchesPattern(b Binding) bool {
	switch f.PatternType {
	case kmsg.ACLResourcePatternTypeAny, kmsg.ACLResourcePatternTypeMatch:
	default:
		if f.PatternType != b.PatternType {
			return false
		}
	}
	if f.ResourceName == nil {
		return true
	}
	name := *f.ResourceName
	if f.PatternType != kmsg.ACLResourcePatternTypeMatch {
		return name == b.ResourceName
	}
	return appliesTo(b, name)
}

// appliesTo reports whether the binding's pattern covers a resource named name.
func appliesTo(b Binding, name string) bool {
	switch b.PatternType {
	case kmsg.ACLResourcePatternTypeLiteral:
		return b.ResourceName == name || b.ResourceName == Wildcard
	case kmsg.ACLResourcePatternTypePrefixed:
		return strings.HasPrefix(name, b.ResourceName)
	}
	return false
}

// implies reports whether an ALLOW binding for op grants want.
func implies(op, want kmsg.ACLOperation) bool {
	if op == want || op == kmsg.ACLOperationAll {
		return true
	}
	switch want {
	case kmsg.ACLOperationDescribe:
		return op == kmsg.ACLOperationRead || op == kmsg.ACLOperationWrite || op == kmsg.ACLOperationDelete || op == kmsg.ACLOperationAlter
	case kmsg.ACLOperationDescribeConfigs:
		return op == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// SupportedOperations are the operations Kafka defines for a resource type, the bits of the
// authorized-operations fields of Metadata, DescribeCluster and DescribeGroups.
func SupportedOperations(rt kmsg.ACLResourceType) []kmsg.ACLOperation {
	switch rt {
	case kmsg.ACLResourceTypeTopic:
		return []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDescribe,
			kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs}
	case kmsg.ACLResourceTypeGroup:
		// Kafka 4.0 added group configs (KIP-848), hence the config operations.
		return []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete,
			kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs}
	case kmsg.ACLResourceTypeCluster:
		return []kmsg.ACLOperation{kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs,
			kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe}
	case kmsg.ACLResourceTypeTransactionalId:
		return []kmsg.ACLOperation{kmsg.ACLOperationDescribe, kmsg.ACLOperationWrite}
	case kmsg.ACLResourceTypeDelegationToken:
		return []kmsg.ACLOperation{kmsg.ACLOperationDescribe}
	case kmsg.ACLResourceTypeUser:
		return []kmsg.ACLOperation{kmsg.ACLOperationCreateTokens, kmsg.ACLOperationDescribeTokens}
	}
	return nil
}

// Authorizer holds the bindings and the super users. It is safe for concurrent use.
type Authorizer struct {
	mu         sync.RWMutex
	bindings   map[Binding]struct{}
	superUsers map[string]bool
}

// New returns an authorizer with no bindings; superUsers may do everything.
func New(superUsers []string) *Authorizer {
	a := &Authorizer{bindings: map[Binding]struct{}{}, superUsers: map[string]bool{}}
	for _, u := range superUsers {
		a.superUsers[u] = true
	}
	return a
}

// ParseSuperUsers splits Kafka's super.users syntax, "User:a;User:b", checking each principal.
func ParseSuperUsers(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ";") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if typ, name, ok := strings.Cut(p, ":"); !ok || typ == "" || name == "" {
			return nil, errors.New("super user " + p + " is not a principal of the form User:name")
		}
		out = append(out, p)
	}
	return out, nil
}

// Add adds bindings (adding one already present is a no-op, as in Kafka).
func (a *Authorizer) Add(bs ...Binding) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, b := range bs {
		a.bindings[b] = struct{}{}
	}
}

// Remove removes bindings.
func (a *Authorizer) Remove(bs ...Binding) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, b := range bs {
		delete(a.bindings, b)
	}
}

// Select returns the bindings the filter matches, in a stable order.
func (a *Authorizer) Select(f Filter) []Binding {
	a.mu.RLock()
	var out []Binding
	for b := range a.bindings {
		if f.Matches(b) {
			out = append(out, b)
		}
	}
	a.mu.RUnlock()
	Sort(out)
	return out
}

// All returns every binding in a stable order.
func (a *Authorizer) All() []Binding {
	return a.Select(Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny})
}

// Sort orders bindings by resource, then principal, host, operation and permission.
func Sort(bs []Binding) {
	sort.Slice(bs, func(i, j int) bool {
		x, y := bs[i], bs[j]
		switch {
		case x.ResourceType != y.ResourceType:
			return x.ResourceType < y.ResourceType
		case x.ResourceName != y.ResourceName:
			return x.ResourceName < y.ResourceName
		case x.PatternType != y.PatternType:
			return x.PatternType < y.PatternType
		case x.Principal != y.Principal:
			return x.Principal < y.Principal
		case x.Host != y.Host:
			return x.Host < y.Host
		case x.Operation != y.Operation:
			return x.Operation < y.Operation
		}
		return x.Permission < y.Permission
	})
}

// Authorize decides whether principal, connected from host, may perform op on the resource
// of type rt named name.
func (a *Authorizer) Authorize(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if a.superUsers[principal] {
		return true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	allowed := false
	for b := range a.bindings {
		if b.ResourceType != rt || !appliesTo(b, name) {
			continue
		}
		if b.Principal != principal && b.Principal != "User:"+Wildcard {
			continue
		}
		if b.Host != host && b.Host != Wildcard {
			continue
		}
		if b.Permission == kmsg.ACLPermissionTypeDeny {
			if b.Operation == op || b.Operation == kmsg.ACLOperationAll {
				return false
			}
			continue
		}
		if implies(b.Operation, op) {
			allowed = true
		}
	}
	return allowed
}

// AuthorizeAny reports whether principal may perform op on at least one resource of type rt:
// some ALLOW binding for it (or implying it) that is not covered by a DENY on a LITERAL "*"
// or an empty PREFIXED pattern. Kafka's authorizeByResourceType, used by InitProducerId for
// an idempotent producer without IDEMPOTENT_WRITE on the cluster.
func (a *Authorizer) AuthorizeAny(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	if a.superUsers[principal] {
		return true
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	applies := func(b Binding) bool {
		return b.ResourceType == rt && (b.Principal == principal || b.Principal == "User:"+Wildcard) &&
			(b.Host == host || b.Host == Wildcard)
	}
	denied := map[Binding]bool{} // DENY patterns, keyed by pattern only
	for b := range a.bindings {
		if applies(b) && b.Permission == kmsg.ACLPermissionTypeDeny && (b.Operation == op || b.Operation == kmsg.ACLOperationAll) {
			if (b.PatternType == kmsg.ACLResourcePatternTypeLiteral && b.ResourceName == Wildcard) ||
				(b.PatternType == kmsg.ACLResourcePatternTypePrefixed && b.ResourceName == "") {
				return false
			}
			denied[Binding{PatternType: b.PatternType, ResourceName: b.ResourceName}] = true
		}
	}
	for b := range a.bindings {
		if !applies(b) || b.Permission != kmsg.ACLPermissionTypeAllow || !implies(b.Operation, op) {
			continue
		}
		if denied[Binding{PatternType: b.PatternType, ResourceName: b.ResourceName}] {
			continue
		}
		if b.PatternType == kmsg.ACLResourcePatternTypeLiteral && deniedByPrefix(denied, b.ResourceName) {
			continue
		}
		return true
	}
	return false
}

func deniedByPrefix(denied map[Binding]bool, name string) bool {
	for d := range denied {
		if d.PatternType == kmsg.ACLResourcePatternTypePrefixed && strings.HasPrefix(name, d.ResourceName) {
			return true
		}
	}
	return false
}

// AuthorizedOperations is the bit field (1 << operation code) of the supported operations
// principal may perform on the resource.
func (a *Authorizer) AuthorizedOperations(principal, host string, rt kmsg.ACLResourceType, name string) int32 {
	var bits int32
	for _, op := range SupportedOperations(rt) {
		if a == nil || a.Authorize(principal, host, op, rt, name) {
			bits |= 1 << op
		}
	}
	return bits
}
