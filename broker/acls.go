package broker

// DescribeAcls (29), CreateAcls (30) and DeleteAcls (31), versions 1-3 as Kafka 4.0 (KIP-896
// removed v0). Without --acl-enabled klite answers as a Kafka broker without an authorizer:
// DescribeAcls a top-level SECURITY_DISABLED, CreateAcls and DeleteAcls SECURITY_DISABLED for
// every creation and filter (kafka-acls --list and librdkafka's admin tests expect exactly this).
//
// With --acl-enabled the bindings live in broker/acl's Authorizer and are stored as "acl" and
// "delete_acl" records in the metadata log (meta.go), appended before the answer. As Kafka's
// AclApis: DescribeAcls needs DESCRIBE on the cluster, CreateAcls and DeleteAcls ALTER
// (CLUSTER_AUTHORIZATION_FAILED otherwise); a creation Kafka would refuse gets INVALID_REQUEST
// with Kafka's message, a filter with an UNKNOWN element INVALID_REQUEST.

import (
	"fmt"

	"github.com/klite/klite/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(29, 1, 3, handleDescribeAcls)
	register(30, 1, 3, handleCreateAcls)
	register(31, 1, 3, handleDeleteAcls)
}

// noAuthorizer is Kafka's message for the ACL APIs without an authorizer.
const noAuthorizer = "No Authorizer is configured."

func handleDescribeAcls(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response)) {
	r := req.(*kmsg.DescribeACLsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeACLsResponse)
	f := acl.Filter{ResourceType: r.ResourceType, ResourceName: r.ResourceName, PatternType: r.ResourcePatternType,
		Principal: r.Principal, Host: r.Host, Operation: r.Operation, Permission: r.PermissionType}
	switch {
	case b.authz == nil:
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(noAuthorizer)
	case !b.allowedCluster(rc, kmsg.ACLOperationDescribe):
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	case f.Unknown():
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr("The filter must not contain any UNKNOWN elements")
	default:
		var cur *kmsg.DescribeACLsResponseResource
		for _, bd := range b.authz.Select(f) { // sorted by resource first
			if cur == nil || cur.ResourceType != bd.ResourceType || cur.ResourceName != bd.ResourceName || cur.ResourcePatternType != bd.PatternType {
				res := kmsg.NewDescribeACLsResponseResource()
				res.ResourceType, res.ResourceName, res.ResourcePatternType = bd.ResourceType, bd.ResourceName, bd.PatternType
				resp.Resources = append(resp.Resources, res)
				cur = &resp.Resources[len(resp.Resources)-1]
			}
			a := kmsg.NewDescribeACLsResponseResourceACL()
			a.Principal, a.Host, a.Operation, a.PermissionType = bd.Principal, bd.Host, bd.Operation, bd.Permission
			cur.ACLs = append(cur.ACLs, a)
		}
	}
	respond(resp)
}

func handleCreateAcls(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response)) {
	r := req.(*kmsg.CreateACLsRequest)
	resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(r.Creations))
	var add []acl.Binding
	var addAt []int
	for i, c := range r.Creations {
		res := &resp.Results[i]
		*res = kmsg.NewCreateACLsResponseResult()
		bd := acl.Binding{ResourceType: c.ResourceType, ResourceName: c.ResourceName, PatternType: c.ResourcePatternType,
			Principal: c.Principal, Host: c.Host, Operation: c.Operation, Permission: c.PermissionType}
		switch {
		case b.authz == nil:
			res.ErrorCode, res.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(noAuthorizer)
		case !b.allowedCluster(rc, kmsg.ACLOperationAlter):
			res.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		default:
			if err := bd.Validate(); err != nil {
				res.ErrorCode, res.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(err.Error())
				continue
			}
			add, addAt = append(add, bd), append(addAt, i)
		}
	}
	if len(add) > 0 {
		if err := b.persistACLs("acl", add); err != nil {
			for _, i := range addAt {
				resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.UnknownServerError.Code, kmsg.StringPtr("storing the ACL failed")
			}
		}
	}
	respond(resp)
}

func handleDeleteAcls(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response)) {
	r := req.(*kmsg.DeleteACLsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(r.Filters))
	// One lock for the whole request, so two concurrent deletes do not both report a binding.
	b.aclMu.Lock()
	defer b.aclMu.Unlock()
	seen := map[acl.Binding]bool{}
	var del []acl.Binding
	for i, rf := range r.Filters {
		res := &resp.Results[i]
		*res = kmsg.NewDeleteACLsResponseResult()
		f := acl.Filter{ResourceType: rf.ResourceType, ResourceName: rf.ResourceName, PatternType: rf.ResourcePatternType,
			Principal: rf.Principal, Host: rf.Host, Operation: rf.Operation, Permission: rf.PermissionType}
		switch {
		case b.authz == nil:
			res.ErrorCode, res.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(noAuthorizer)
		case !b.allowedCluster(rc, kmsg.ACLOperationAlter):
			res.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		case f.Unknown():
			res.ErrorCode, res.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr("The filter must not contain any UNKNOWN elements")
		default:
			for _, bd := range b.authz.Select(f) {
				m := kmsg.NewDeleteACLsResponseResultMatchingACL()
				m.ResourceType, m.ResourceName, m.ResourcePatternType = bd.ResourceType, bd.ResourceName, bd.PatternType
				m.Principal, m.Host, m.Operation, m.PermissionType = bd.Principal, bd.Host, bd.Operation, bd.Permission
				res.MatchingACLs = append(res.MatchingACLs, m)
				if !seen[bd] {
					seen[bd] = true
					del = append(del, bd)
				}
			}
		}
	}
	if len(del) > 0 {
		if err := b.persistACLsLocked("delete_acl", del); err != nil {
			for i := range resp.Results {
				if resp.Results[i].ErrorCode == 0 {
					resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.UnknownServerError.Code, kmsg.StringPtr("storing the deletion failed")
					resp.Results[i].MatchingACLs = nil
				}
			}
		}
	}
	respond(resp)
}

// persistACLs appends acl or delete_acl records for bindings, then applies them.
func (b *Broker) persistACLs(typ string, bs []acl.Binding) error {
	b.aclMu.Lock()
	defer b.aclMu.Unlock()
	return b.persistACLsLocked(typ, bs)
}

func (b *Broker) persistACLsLocked(typ string, bs []acl.Binding) error {
	recs := make([]metaRecord, len(bs))
	for i := range bs {
		recs[i] = metaRecord{Type: typ, ACL: &bs[i]}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.appendMetaLocked(recs...); err != nil {
		b.log.Error("storing ACLs failed", "err", err)
		return err
	}
	b.applyACLs(typ, bs)
	return nil
}

func (b *Broker) applyACLs(typ string, bs []acl.Binding) {
	if typ == "acl" {
		b.acls.Add(bs...)
	} else {
		b.acls.Remove(bs...)
	}
}

// replayACLMeta applies an acl or delete_acl record. Records are replayed even with ACLs
// off (into an authorizer that is then dropped), so turning --acl-enabled on later finds them.
func (b *Broker) replayACLMeta(r metaRecord) error {
	if r.ACL == nil {
		return nil
	}
	if err := r.ACL.Validate(); err != nil { // never written by klite; skip rather than fail to start
		b.log.Warn("metadata log: ignoring an invalid ACL binding", "binding", fmt.Sprintf("%+v", *r.ACL), "err", err)
		return nil
	}
	b.applyACLs(r.Type, []acl.Binding{*r.ACL})
	return nil
}

// aclSnapshotLocked returns the records that rebuild the bindings. b.mu held.
func (b *Broker) aclSnapshotLocked() []metaRecord {
	var out []metaRecord
	for _, bd := range b.acls.All() {
		out = append(out, metaRecord{Type: "acl", ACL: &bd})
	}
	return out
}
