// IncrementalAlterConfigs (key 44), versions 0-1.
//
// Each resource's operations apply to its current explicit config set: SET (a null value is
// INVALID_REQUEST), DELETE (back to the default; deleting an unset or unknown name is fine),
// APPEND and SUBTRACT (LIST configs only, else INVALID_CONFIG; APPEND adds the items missing
// from the current value, or from the default when unset, SUBTRACT removes items). A config
// named twice in one resource, or a resource named twice, is INVALID_REQUEST. The result is
// validated, persisted and applied as AlterConfigs does (alter_configs.go), for TOPIC and
// BROKER resources; GROUP resources (KIP-848 group configs: consumer.session.timeout.ms and
// consumer.heartbeat.interval.ms in effect for the group's next heartbeats, the share.*
// configs stored only) are validated with Kafka 4.0's bounds and messages and kept in
// groups.log; ValidateOnly checks without changing anything.
// Differences from Kafka: as for AlterConfigs (broker configs other than topic defaults
// change nothing in klite; it has no named loggers, so BROKER_LOGGER operations are
// INVALID_CONFIG).
package broker

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	seen := map[[2]string]int{}
	for _, rr := range req.Resources {
		seen[[2]string{rr.ResourceType.String(), rr.ResourceName}]++
	}
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var e *kerr.Error
		var msg string
		switch {
		case seen[[2]string{rr.ResourceType.String(), rr.ResourceName}] > 1:
			e, msg = kerr.InvalidRequest, "Each resource must appear at most once."
		case b.authz != nil && !b.allowedConfigAlter(rc, rr.ResourceType, rr.ResourceName):
			e, msg = b.configAuthError(rc, kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName) // ACLs, as Kafka
		case rr.ResourceType == kmsg.ConfigResourceTypeBrokerLogger:
			e, msg = b.alterLoggers(rr)
		default:
			e, msg = b.alterConfigResource(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string, typeOf func(string) int8) (map[string]string, *kerr.Error, string) {
				return incrementalChange(rr.ResourceType, cur, rr.Configs, typeOf)
			})
		}
		if e != nil {
			sr.ErrorCode = e.Code
			sr.ErrorMessage = kmsg.StringPtr(msg)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	respond(resp)
}

// incrementalChange applies the operations to a copy of cur.
func incrementalChange(rtype kmsg.ConfigResourceType, cur map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig, typeOf func(string) int8) (map[string]string, *kerr.Error, string) {
	names := map[string]bool{}
	for _, op := range ops {
		if names[op.Name] {
			return nil, kerr.InvalidRequest, "Error due to duplicate config keys"
		}
		names[op.Name] = true
		if op.Value == nil && op.Op != kmsg.IncrementalAlterConfigOpDelete {
			return nil, kerr.InvalidRequest, "Null value not supported for : " + op.Name
		}
	}
	next := make(map[string]string, len(cur)+len(ops))
	for k, v := range cur {
		next[k] = v
	}
	for _, op := range ops {
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			next[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(next, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if typeOf(op.Name) != ctList {
				return nil, kerr.InvalidConfig, "Can't " + op.Op.String() + " to key " + op.Name + " because its type is not LIST."
			}
			old, ok := next[op.Name]
			if !ok && rtype == kmsg.ConfigResourceTypeTopic {
				old = topicConfigDefaults[op.Name]
			} else if !ok {
				if def, known := brokerConfigs[op.Name]; known {
					old, _, _ = def.value(nil)
				}
			}
			items := splitList(old)
			if op.Op == kmsg.IncrementalAlterConfigOpAppend {
				for _, it := range splitList(*op.Value) {
					if !containsStr(items, it) {
						items = append(items, it)
					}
				}
			} else {
				sub := splitList(*op.Value)
				kept := items[:0]
				for _, it := range items {
					if !containsStr(sub, it) {
						kept = append(kept, it)
					}
				}
				items = kept
			}
			next[op.Name] = strings.Join(items, ",")
		default:
			return nil, kerr.InvalidRequest, "Unknown operation " + op.Op.String()
		}
	}
	return next, nil, ""
}

// alterLoggers answers BROKER_LOGGER changes: klite has no named loggers.
func (b *Broker) alterLoggers(rr kmsg.IncrementalAlterConfigsRequestResource) (*kerr.Error, string) {
	if msg, ok := b.checkBrokerResource(rr.ResourceName, true); !ok || rr.ResourceName == "" {
		if msg == "" {
			msg = "Node id must be an integer, but it is: "
		}
		return kerr.InvalidRequest, msg
	}
	for _, op := range rr.Configs {
		return kerr.InvalidConfig, "Logger " + op.Name + " does not exist!"
	}
	return nil, ""
}

func splitList(s string) []string {
	var out []string
	for _, it := range strings.Split(s, ",") {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
