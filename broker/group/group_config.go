package group

// Group configs (KIP-848; DescribeConfigs and IncrementalAlterConfigs on GROUP resources),
// as Kafka 4.0's GroupConfig: per-group overrides of the consumer session timeout and
// heartbeat interval (and the share-group configs, stored and shown only). They exist
// independently of the group, as Kafka keeps them in the cluster metadata; here they are
// record type 6 of groups.log (see consumer_record.go for the layout).

import (
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// GroupConfigDef describes one group config.
type GroupConfigDef struct {
	Name    string
	Default string
	Int     bool // INT, else STRING
}

// GroupConfigDefs are Kafka 4.0's group configs, in the order Kafka lists them.
var GroupConfigDefs = []GroupConfigDef{
	{"consumer.session.timeout.ms", "45000", true},
	{"share.auto.offset.reset", "latest", false},
	{"share.record.lock.duration.ms", "30000", true},
	{"consumer.heartbeat.interval.ms", "5000", true},
	{"share.session.timeout.ms", "45000", true},
	{"share.heartbeat.interval.ms", "5000", true},
}

// Bounds of the consumer group configs (Kafka 4.0's broker defaults for
// group.consumer.{min,max}.{session.timeout,heartbeat.interval}.ms and the share equivalents).
var groupConfigBounds = map[string][2]int64{
	"consumer.session.timeout.ms":    {45000, 60000},
	"consumer.heartbeat.interval.ms": {5000, 15000},
	"share.session.timeout.ms":       {45000, 60000},
	"share.heartbeat.interval.ms":    {5000, 15000},
	"share.record.lock.duration.ms":  {15000, 60000},
}

var boundNames = map[string][2]string{
	"consumer.session.timeout.ms":    {"group.consumer.min.session.timeout.ms", "group.consumer.max.session.timeout.ms"},
	"consumer.heartbeat.interval.ms": {"group.consumer.min.heartbeat.interval.ms", "group.consumer.max.heartbeat.interval.ms"},
	"share.session.timeout.ms":       {"group.share.min.session.timeout.ms", "group.share.max.session.timeout.ms"},
	"share.heartbeat.interval.ms":    {"group.share.min.heartbeat.interval.ms", "group.share.max.heartbeat.interval.ms"},
	"share.record.lock.duration.ms":  {"group.share.min.record.lock.duration.ms", "group.share.max.record.lock.duration.ms"},
}

func groupConfigDef(name string) (GroupConfigDef, bool) {
	for _, d := range GroupConfigDefs {
		if d.Name == name {
			return d, true
		}
	}
	return GroupConfigDef{}, false
}

// validateGroupConfigs applies Kafka's checks (INVALID_CONFIG with its messages).
func validateGroupConfigs(m map[string]string) (*kerr.Error, string) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := m[k]
		def, ok := groupConfigDef(k)
		if !ok {
			return kerr.InvalidConfig, "Unknown group config name: " + k
		}
		if !def.Int {
			if k == "share.auto.offset.reset" && v != "latest" && v != "earliest" {
				return kerr.InvalidConfig, "Invalid value " + v + " for configuration " + k + ": String must be one of: latest, earliest"
			}
			continue
		}
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return kerr.InvalidConfig, "Invalid value " + v + " for configuration " + k + ": Not a number of type INT"
		}
		if b, ok := groupConfigBounds[k]; ok {
			if n < b[0] {
				return kerr.InvalidConfig, k + " must be greater than or equal to " + boundNames[k][0]
			}
			if n > b[1] {
				return kerr.InvalidConfig, k + " must be less than or equal to " + boundNames[k][1]
			}
		}
	}
	return nil, ""
}

// GroupConfigs returns the configs set for a group (not the defaults).
func (c *Coordinator) GroupConfigs(id string) (map[string]string, error) {
	ch := make(chan map[string]string, 1)
	if !c.post(func() {
		out := map[string]string{}
		for k, v := range c.groupConfigs[id] {
			out[k] = v
		}
		c.reply(func() { ch <- out })
	}) {
		return nil, ErrClosed
	}
	select {
	case m := <-ch:
		return m, nil
	case <-c.done:
		return nil, ErrClosed
	}
}

// AlterGroupConfigs replaces a group's config set with change(current) once it validates,
// and persists it (unless validateOnly). It returns Kafka's error and message.
func (c *Coordinator) AlterGroupConfigs(id string, validateOnly bool, change func(cur map[string]string) (map[string]string, *kerr.Error, string)) (*kerr.Error, string) {
	type result struct {
		e   *kerr.Error
		msg string
	}
	ch := make(chan result, 1)
	if !c.post(func() {
		answer := func(e *kerr.Error, msg string) { c.reply(func() { ch <- result{e, msg} }) }
		cur := map[string]string{}
		for k, v := range c.groupConfigs[id] {
			cur[k] = v
		}
		next, e, msg := change(cur)
		if e == nil {
			e, msg = validateGroupConfigs(next)
		}
		if e != nil || validateOnly {
			answer(e, msg)
			return
		}
		c.persist(encodeGroupConfig(id, next), func(err error) {
			if err != nil {
				answer(kerr.KafkaStorageError, err.Error())
				return
			}
			c.setGroupConfigs(id, next)
			answer(nil, "")
		})
	}) {
		return kerr.CoordinatorNotAvailable, ""
	}
	select {
	case r := <-ch:
		return r.e, r.msg
	case <-c.done:
		return kerr.CoordinatorNotAvailable, ""
	}
}

func (c *Coordinator) setGroupConfigs(id string, m map[string]string) {
	if len(m) == 0 {
		delete(c.groupConfigs, id)
		return
	}
	if c.groupConfigs == nil {
		c.groupConfigs = map[string]map[string]string{}
	}
	c.groupConfigs[id] = m
}

// groupDuration is a group's consumer.* config in effect (its override, else the default).
func (c *Coordinator) groupDuration(id, name string, def time.Duration) time.Duration {
	if v, ok := c.groupConfigs[id][name]; ok {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil {
			return time.Duration(n) * time.Millisecond
		}
	}
	return def
}

func (c *Coordinator) sessionTimeout(g *group) time.Duration {
	return c.groupDuration(g.id, "consumer.session.timeout.ms", c.cfg.ConsumerSessionTimeout)
}

func (c *Coordinator) heartbeatInterval(g *group) time.Duration {
	return c.groupDuration(g.id, "consumer.heartbeat.interval.ms", c.cfg.HeartbeatInterval)
}
