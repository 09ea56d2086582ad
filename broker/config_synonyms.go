package broker

// Kafka 4.0's synonym chains for DescribeConfigs with include_synonyms.
//
// A broker config has synonyms: other names that set the same thing (log.retention.ms,
// log.retention.minutes, log.retention.hours; Kafka's DynamicBrokerConfig.brokerConfigSynonyms).
// Kafka lists, for each source in precedence order, every synonym name that has a value there:
// dynamic per-broker, then the dynamic cluster-wide default, then Kafka's default and the
// static value (Kafka 4.0 lists the default before a static value), and then drops the entries
// before the first one named as the config asked. So an unset log.retention.ms (no default)
// shows no synonyms, while a dynamic log.retention.ms=7200000 is followed by
// log.retention.hours=168 (DEFAULT_CONFIG). A topic config's chain is its broker synonym's,
// after the topic's own value when set.

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// configSyn is one synonym: a config name, its value (nil: null) and source.
type configSyn struct {
	name string
	v    *string
	src  int8
}

// brokerSynonymNames is Kafka's brokerConfigSynonyms: the names that set the same broker config.
func brokerSynonymNames(name string) []string {
	switch name {
	case "log.roll.ms", "log.roll.hours":
		return []string{"log.roll.ms", "log.roll.hours"}
	case "log.roll.jitter.ms", "log.roll.jitter.hours":
		return []string{"log.roll.jitter.ms", "log.roll.jitter.hours"}
	case "log.flush.interval.ms":
		return []string{"log.flush.interval.ms", "log.flush.scheduler.interval.ms"}
	case "log.retention.ms", "log.retention.minutes", "log.retention.hours":
		return []string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"}
	}
	return []string{name}
}

// brokerSynonymChain lists the synonyms of broker config name as Kafka does; perBroker is nil
// for the cluster-default resource "" (which shows only dynamic defaults).
func (b *Broker) brokerSynonymChain(name string, perBroker, defaults map[string]string, withStatic bool) []configSyn {
	names := brokerSynonymNames(name)
	var out []configSyn
	for _, n := range names {
		if v, ok := perBroker[n]; ok {
			out = append(out, configSyn{n, kmsg.StringPtr(v), srcDynamicBroker})
		}
	}
	for _, n := range names {
		if v, ok := defaults[n]; ok {
			out = append(out, configSyn{n, kmsg.StringPtr(v), srcDynamicDefault})
		}
	}
	if withStatic {
		for _, n := range names {
			out = append(out, b.staticSynonyms(n)...)
		}
	}
	for i, s := range out { // Kafka's dropWhile(name != asked)
		if s.name == name {
			return out[i:]
		}
	}
	return nil
}

// staticSynonyms are a broker config's default and static entries (a null default: none).
func (b *Broker) staticSynonyms(name string) []configSyn {
	def, ok := brokerConfigs[name]
	if !ok {
		if tn := brokerTopicSynonym[name]; tn != "" && topicDefaultSynonym[tn] == name {
			return []configSyn{{name, kmsg.StringPtr(topicConfigDefaults[tn]), srcDefault}}
		}
		return nil
	}
	v, src, ok := def.value(b)
	if !ok {
		return nil
	}
	if src == srcStatic {
		var out []configSyn
		if def.dflt != "" {
			out = append(out, configSyn{name, kmsg.StringPtr(def.dflt), srcDefault})
		}
		return append(out, configSyn{name, kmsg.StringPtr(v), srcStatic})
	}
	return []configSyn{{name, kmsg.StringPtr(v), srcDefault}}
}

// topBySource is the synonym that gives the value: the one of highest precedence (lowest
// source number), wherever Kafka lists it.
func topBySource(syns []configSyn) configSyn {
	top := syns[0]
	for _, s := range syns[1:] {
		if s.src < top.src {
			top = s
		}
	}
	return top
}

func synonymsOut(syns []configSyn) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	out := []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{}
	for _, s := range syns {
		cs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		cs.Name, cs.Value, cs.Source = s.name, s.v, kmsg.ConfigSource(s.src)
		out = append(out, cs)
	}
	return out
}

// selfName is this broker's resource name.
func (b *Broker) selfName() string { return strconv.Itoa(int(b.nodeID)) }
