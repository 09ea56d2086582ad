// DescribeConfigs (key 32), versions 1-4.
//
// TOPIC resources list Kafka 4.0's topic configs: the ones set on the topic with source
// DYNAMIC_TOPIC_CONFIG, the rest from a dynamic broker config (DYNAMIC_BROKER_CONFIG for this
// broker's, DYNAMIC_DEFAULT_BROKER_CONFIG for the cluster-wide one) or Kafka's defaults
// (DEFAULT_CONFIG), each with its type; with IncludeSynonyms, every level it falls back
// through, in Kafka's order (config_synonyms.go: log.retention.ms falls back to
// log.retention.hours=168 once it has a value). BROKER resources are named by this broker's ID (every config klite reports: static
// ones from its flags, dynamic ones set through the alter APIs, defaults) or "" (only the
// dynamic cluster-wide defaults). ConfigNames filters; unknown names are left out.
// BROKER_LOGGER for this broker answers an empty list. GROUP resources (KIP-848 group configs,
// any group name, existing or not) list Kafka 4.0's six group configs in Kafka's order, set
// ones with source GROUP_CONFIG; they live in the group coordinator (broker/group).
// Differences from Kafka: Documentation is always null; the broker resource lists about fifty
// configs (those klite has or interprets), not Kafka's ~290.
package broker

import (
	"github.com/klite/klite/broker/group"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(32, 1, 4, handleDescribeConfigs) }

// groupConfigResources lists a GROUP resource's configs as Kafka 4.0 does: every group config
// (in Kafka's order), the ones set for the group with source GROUP_CONFIG, the others with
// their default; names filters.
func groupConfigResources(set map[string]string, names []string, synonyms bool) []kmsg.DescribeConfigsResponseResourceConfig {
	out := []kmsg.DescribeConfigsResponseResourceConfig{}
	for _, d := range group.GroupConfigDefs {
		if names != nil && !containsStr(names, d.Name) {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.Source = d.Name, kmsg.StringPtr(d.Default), kmsg.ConfigSourceDefaultConfig
		if v, ok := set[d.Name]; ok {
			c.Value, c.Source = kmsg.StringPtr(v), kmsg.ConfigSourceGroupConfig
		}
		c.ConfigType = kmsg.ConfigType(ctString)
		if d.Int {
			c.ConfigType = kmsg.ConfigType(ctInt)
		}
		if synonyms {
			cs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			cs.Name, cs.Value, cs.Source = d.Name, c.Value, c.Source
			c.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{cs}
		}
		out = append(out, c)
	}
	return out
}

func handleDescribeConfigs(b *Broker, rc *ReqCtx, kreq kmsg.Request, respond func(kmsg.Response)) {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.ErrorMessage = kmsg.StringPtr("")
		fail := func(e *kerr.Error, msg string) {
			sr.ErrorCode = e.Code
			sr.ErrorMessage = kmsg.StringPtr(msg)
			sr.Configs = []kmsg.DescribeConfigsResponseResourceConfig{}
		}
		if e, msg := b.configAuthError(rc, kmsg.ACLOperationDescribeConfigs, rr.ResourceType, rr.ResourceName); e != nil {
			fail(e, msg) // ACLs, as Kafka
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if rr.ResourceName == "" {
				fail(kerr.InvalidTopicException, "Topic name is invalid: the empty string is not allowed")
				break
			}
			t := b.topic(rr.ResourceName)
			if t == nil {
				fail(kerr.UnknownTopicOrPartition, "")
				break
			}
			sr.Configs = b.topicConfigResources(t.configs(), rr.ConfigNames, req.IncludeSynonyms)
		case kmsg.ConfigResourceTypeBroker:
			if msg, ok := b.checkBrokerResource(rr.ResourceName, false); !ok {
				fail(kerr.InvalidRequest, msg)
				break
			}
			sr.Configs = b.describeBrokerConfigs(rr.ResourceName, rr.ConfigNames, req.IncludeSynonyms)
		case kmsg.ConfigResourceTypeBrokerLogger:
			if msg, ok := b.checkBrokerResource(rr.ResourceName, true); !ok || rr.ResourceName == "" {
				fail(kerr.InvalidRequest, msg)
				break
			}
		case kmsg.ConfigResourceTypeGroupConfig:
			if rr.ResourceName == "" {
				fail(kerr.InvalidRequest, "Group name must not be empty")
				break
			}
			set, err := b.groups.GroupConfigs(rr.ResourceName)
			if err != nil {
				fail(kerr.CoordinatorNotAvailable, "")
				break
			}
			sr.Configs = groupConfigResources(set, rr.ConfigNames, req.IncludeSynonyms)
		default:
			fail(kerr.InvalidRequest, "Unsupported resource type "+rr.ResourceType.String())
		}
		if sr.Configs == nil {
			sr.Configs = []kmsg.DescribeConfigsResponseResourceConfig{}
		}
		resp.Resources = append(resp.Resources, sr)
	}
	respond(resp)
}
