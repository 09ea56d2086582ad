package broker

// DescribeAcls (29), CreateAcls (30) and DeleteAcls (31), versions 1-3 as Kafka 4.0 (KIP-896
// removed v0). klite has no authorizer yet, so it answers as a Kafka broker without one
// (AclApis with authorizer None): DescribeAcls a top-level SECURITY_DISABLED, CreateAcls and
// DeleteAcls SECURITY_DISABLED for every creation and filter. Kafka's kafka-acls --list and
// librdkafka's admin tests expect exactly this from a broker without authorization.

import (
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
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	resp.ErrorCode = kerr.SecurityDisabled.Code
	resp.ErrorMessage = kmsg.StringPtr(noAuthorizer)
	respond(resp)
}

func handleCreateAcls(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response)) {
	r := req.(*kmsg.CreateACLsRequest)
	resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
	for range r.Creations {
		res := kmsg.NewCreateACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(noAuthorizer)
		resp.Results = append(resp.Results, res)
	}
	respond(resp)
}

func handleDeleteAcls(b *Broker, rc *ReqCtx, req kmsg.Request, respond func(kmsg.Response)) {
	r := req.(*kmsg.DeleteACLsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
	for range r.Filters {
		res := kmsg.NewDeleteACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(noAuthorizer)
		resp.Results = append(resp.Results, res)
	}
	respond(resp)
}
