package broker

// Authorization: with --acl-enabled every API Kafka authorizes asks broker/acl whether the
// connection's principal, from its remote IP, may perform the operation, and answers
// TOPIC/GROUP/TRANSACTIONAL_ID/CLUSTER_AUTHORIZATION_FAILED where Kafka 4.0's KafkaApis does
// (each handler's file says where). Without it b.authz is nil and everything is allowed.

import (
	"github.com/klite/klite/broker/acl"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ACLConfig turns on authorization.
type ACLConfig struct {
	Enabled bool
	// SuperUsers may do everything ("User:admin"); see acl.ParseSuperUsers.
	SuperUsers []string
}

func (b *Broker) initACL() {
	b.acls = acl.New(b.cfg.ACL.SuperUsers)
	if b.cfg.ACL.Enabled {
		b.authz = b.acls
	}
}

func (b *Broker) allowed(rc *ReqCtx, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if b.authz == nil {
		return true
	}
	return b.authz.Authorize(rc.Principal, rc.ClientHost, op, rt, name)
}

func (b *Broker) allowedTopic(rc *ReqCtx, op kmsg.ACLOperation, topic string) bool {
	return b.allowed(rc, op, kmsg.ACLResourceTypeTopic, topic)
}

func (b *Broker) allowedGroup(rc *ReqCtx, op kmsg.ACLOperation, group string) bool {
	return b.allowed(rc, op, kmsg.ACLResourceTypeGroup, group)
}

func (b *Broker) allowedTxnID(rc *ReqCtx, op kmsg.ACLOperation, id string) bool {
	return b.allowed(rc, op, kmsg.ACLResourceTypeTransactionalId, id)
}

func (b *Broker) allowedCluster(rc *ReqCtx, op kmsg.ACLOperation) bool {
	return b.allowed(rc, op, kmsg.ACLResourceTypeCluster, acl.ClusterName)
}

// allowedAny is Kafka's authorizeByResourceType: may the principal op at least one resource?
func (b *Broker) allowedAny(rc *ReqCtx, op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	if b.authz == nil {
		return true
	}
	return b.authz.AuthorizeAny(rc.Principal, rc.ClientHost, op, rt)
}

// authorizedOps is the authorized-operations bit field for a resource: every supported
// operation without authorization, as Kafka without an authorizer.
func (b *Broker) authorizedOps(rc *ReqCtx, rt kmsg.ACLResourceType, name string) int32 {
	return b.authz.AuthorizedOperations(rc.Principal, rc.ClientHost, rt, name)
}

// configAuthError checks op (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a config resource as Kafka:
// topics on the topic, groups on the group, broker and logger configs on the cluster. It
// returns the error and Kafka's message for it, or nil.
func (b *Broker) configAuthError(rc *ReqCtx, op kmsg.ACLOperation, rt kmsg.ConfigResourceType, name string) (*kerr.Error, string) {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		if !b.allowedTopic(rc, op, name) {
			return kerr.TopicAuthorizationFailed, "Topic authorization failed."
		}
	case kmsg.ConfigResourceTypeGroupConfig:
		if !b.allowedGroup(rc, op, name) {
			return kerr.GroupAuthorizationFailed, "Group authorization failed."
		}
	default:
		if !b.allowedCluster(rc, op) {
			return kerr.ClusterAuthorizationFailed, "Cluster authorization failed."
		}
	}
	return nil, ""
}

func (b *Broker) allowedConfigAlter(rc *ReqCtx, rt kmsg.ConfigResourceType, name string) bool {
	e, _ := b.configAuthError(rc, kmsg.ACLOperationAlterConfigs, rt, name)
	return e == nil
}
