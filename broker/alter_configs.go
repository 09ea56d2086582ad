// AlterConfigs (key 33), versions 0-2 (the legacy API: each resource's config set replaces
// the whole previous set of explicitly set configs).
//
// TOPIC resources are validated as CreateTopics validates configs (unknown names and bad
// values give INVALID_CONFIG with Kafka's messages), persisted in the metadata log and in
// effect for the next request (max.message.bytes, message.timestamp.type, ...); an unknown
// topic is UNKNOWN_TOPIC_OR_PARTITION. BROKER resources ("" for the cluster-wide default or
// this broker's ID) store dynamic broker configs: read-only ones are refused with
// INVALID_REQUEST ("Cannot update these configs dynamically"), unknown names are stored, as
// Kafka does. Those that are topic config defaults (log.retention.ms, message.max.bytes,
// log.message.timestamp.type, ...) apply to every topic that does not set the topic config,
// this broker's value winning over the cluster-wide one, as in Kafka. ValidateOnly checks without changing anything. A resource named twice, a
// config named twice, or a null value is INVALID_REQUEST.
// Differences from Kafka: broker configs other than topic defaults are stored and described
// but change nothing in klite; BROKER_LOGGER is refused (klite has no named loggers).
package broker

import (
	"github.com/klite/klite/broker/group"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	seen := map[[2]string]int{}
	for _, rr := range req.Resources {
		seen[[2]string{rr.ResourceType.String(), rr.ResourceName}]++
	}
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var e *kerr.Error
		var msg string
		if seen[[2]string{rr.ResourceType.String(), rr.ResourceName}] > 1 {
			e, msg = kerr.InvalidRequest, "Each resource must appear at most once."
		} else if ae, amsg := b.configAuthError(rc, kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName); ae != nil {
			e, msg = ae, amsg // ACLs, as Kafka's controller
		} else {
			e, msg = b.alterConfigResource(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(cur map[string]string, typeOf func(string) int8) (map[string]string, *kerr.Error, string) {
				next := map[string]string{}
				for _, c := range rr.Configs {
					if _, dup := next[c.Name]; dup {
						return nil, kerr.InvalidRequest, "Error due to duplicate config keys"
					}
					if c.Value == nil {
						return nil, kerr.InvalidRequest, "Null value not supported for : " + c.Name
					}
					next[c.Name] = *c.Value
				}
				return next, nil, ""
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

// configChange computes a resource's new explicit config set from its current one; typeOf
// gives a config's type (0 when unknown).
type configChange func(cur map[string]string, typeOf func(string) int8) (map[string]string, *kerr.Error, string)

// alterConfigResource resolves a resource, applies change, validates and (unless
// validateOnly) persists the result. Shared by AlterConfigs and IncrementalAlterConfigs.
func (b *Broker) alterConfigResource(typ kmsg.ConfigResourceType, name string, validateOnly bool, change configChange) (*kerr.Error, string) {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if name == "" {
			return kerr.InvalidRequest, "Default topic resources are not allowed."
		}
		t := b.topic(name)
		if t == nil {
			// Kafka's controller validates the configs (names, values) before it looks the
			// topic up: a bad config on a missing topic is INVALID_CONFIG (or INVALID_REQUEST).
			next, e, msg := change(map[string]string{}, func(n string) int8 { return topicConfigType[n] })
			if e != nil {
				return e, msg
			}
			if msg, ok := checkTopicConfigs(next); !ok {
				return kerr.InvalidConfig, msg
			}
			return kerr.UnknownTopicOrPartition, "The topic '" + name + "' does not exist."
		}
		cur := t.configs()
		next, e, msg := change(cur, func(n string) int8 { return topicConfigType[n] })
		if e != nil {
			return e, msg
		}
		if msg, ok := checkTopicConfigs(next); !ok {
			return kerr.InvalidConfig, msg
		}
		if validateOnly {
			return nil, ""
		}
		if e, msg := b.setTopicConfigs(t, next); e != nil {
			return e, msg
		}
		b.log.Info("topic configs altered", "topic", name, "configs", next)
		return nil, ""
	case kmsg.ConfigResourceTypeBroker:
		if msg, ok := b.checkBrokerResource(name, true); !ok {
			return kerr.InvalidRequest, msg
		}
		cur := b.admin.brokerConfigs(name)
		next, e, msg := change(cur, func(n string) int8 { return brokerConfigs[n].typ })
		if e != nil {
			return e, msg
		}
		// Only the names being changed must be dynamic; an unchanged set is fine.
		changed := map[string]string{}
		for k, v := range next {
			if old, ok := cur[k]; !ok || old != v {
				changed[k] = v
			}
		}
		for k := range cur {
			if _, ok := next[k]; !ok {
				changed[k] = ""
			}
		}
		if msg, ok := checkBrokerConfigs(changed, next); !ok {
			return kerr.InvalidRequest, msg
		}
		if validateOnly {
			return nil, ""
		}
		if err := b.setBrokerConfigs(name, next); err != nil {
			return kerr.KafkaStorageError, err.Error()
		}
		b.log.Info("broker configs altered", "resource", name, "configs", next)
		return nil, ""
	case kmsg.ConfigResourceTypeGroupConfig:
		if name == "" {
			return kerr.InvalidRequest, "Default group resources are not allowed."
		}
		e, msg := b.groups.AlterGroupConfigs(name, validateOnly, func(cur map[string]string) (map[string]string, *kerr.Error, string) {
			return change(cur, groupConfigType)
		})
		if e == nil && !validateOnly {
			b.log.Info("group configs altered", "group", name)
		}
		return e, msg
	case kmsg.ConfigResourceTypeBrokerLogger:
		return kerr.InvalidRequest, "Unknown resource type 8"
	default:
		return kerr.InvalidRequest, "Unknown resource type " + typ.String()
	}
}

// groupConfigType is a group config's type for the incremental operations.
func groupConfigType(name string) int8 {
	for _, d := range group.GroupConfigDefs {
		if d.Name == name {
			if d.Int {
				return ctInt
			}
			return ctString
		}
	}
	return 0
}
