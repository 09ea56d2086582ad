package group

// Topic helpers of consumer groups: partition counts for the assignor, regex subscriptions
// (resolved by the broker, RE2 syntax, as Kafka resolves RE2J ones), and the translation
// between topic IDs on the wire and the names the coordinator keeps.

import (
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// refreshPartitions reads the partition counts of the subscribed topics; true if they
// changed since the last assignment.
func (c *Coordinator) refreshPartitions(cg *cgroup) bool {
	now := map[string]int32{}
	for t := range cg.subscribedTopics() {
		if info, ok := c.topicInfo(t); ok {
			now[t] = info.Partitions
		}
	}
	changed := len(now) != len(cg.partitions)
	for t, n := range now {
		if cg.partitions[t] != n {
			changed = true
		}
	}
	cg.partitions = now
	return changed
}

func (c *Coordinator) topicInfo(name string) (TopicInfo, bool) {
	if c.cfg.TopicInfo == nil {
		return TopicInfo{}, false
	}
	return c.cfg.TopicInfo(name)
}

// resolveRegex lists the topics a (valid, already checked) regex matches in full.
func (c *Coordinator) resolveRegex(regex string) []string {
	re, err := regexp.Compile("^(?:" + regex + ")$")
	if err != nil || c.cfg.TopicNames == nil {
		return nil
	}
	var out []string
	for _, n := range c.cfg.TopicNames() {
		if re.MatchString(n) {
			out = append(out, n)
		}
	}
	return sortedSet(out)
}

// applyRegex records a regex's resolved topics and updates the subscriptions of the members
// using it; true if any changed.
func (c *Coordinator) applyRegex(g *group, regex string, topics []string) bool {
	cg := g.cg
	cg.regexes[regex] = topics
	changed := false
	for _, m := range cg.members {
		if m.regex != nil && *m.regex == regex {
			if subs := cg.memberSubs(m); !equalStrings(subs, m.subscribed) {
				m.subscribed = subs
				changed = true
			}
		}
	}
	return changed
}

// regexRefreshInterval is the least time between two resolutions of a group's regexes
// (Kafka's REGEX_BATCH_REFRESH_INTERVAL_MS).
const regexRefreshInterval = 10 * time.Second

// maybeRefreshRegexes queues a resolution of the group's regexes, as Kafka 4.0 decides on a
// heartbeat: when some member subscribes by regex, none is queued, the last one
// is over 10 s old (or there was none), and either a regex in use is unresolved or topics
// may have been created since. (Kafka only re-resolves when its metadata image has new
// topics; resolving again when nothing changed changes nothing, so klite does not track
// that.) The resolution runs once the current burst is written and bumps the group epoch
// if members' subscriptions change.
func (c *Coordinator) maybeRefreshRegexes(g *group) {
	cg := g.cg
	used := map[string]bool{}
	for _, o := range cg.members {
		if o.regex != nil {
			used[*o.regex] = true
		}
	}
	if len(used) == 0 || cg.refreshing {
		return
	}
	if !cg.resolvedAt.IsZero() && !c.clock.Now().After(cg.resolvedAt.Add(regexRefreshInterval)) {
		return
	}
	cg.refreshing = true
	c.onDurable = append(c.onDurable, func(error) {
		cg.refreshing = false
		if c.groups[g.id] != g || g.cg != cg {
			return
		}
		changed := false
		for re := range cg.regexes {
			if !used[re] {
				delete(cg.regexes, re)
			}
		}
		for _, o := range cg.members {
			if o.regex != nil && !used[*o.regex] {
				used[*o.regex] = true // brought by a heartbeat since
			}
		}
		for re := range used {
			if c.applyRegex(g, re, c.resolveRegex(re)) {
				changed = true
			}
		}
		cg.resolvedAt = c.clock.Now()
		if changed {
			cg.epoch++
			c.refreshPartitions(cg)
			c.log.Debug("consumer group regexes resolved", "group", g.id, "regexes", len(used), "epoch", cg.epoch)
			c.persistConsumer(g, nil)
		}
	})
}

func sortedSet(ss []string) []string {
	set := map[string]bool{}
	for _, s := range ss {
		set[s] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// ownedFromRequest converts the partitions a member reports owning (by topic ID) to names;
// topics the coordinator does not know are left out.
func (c *Coordinator) ownedFromRequest(ts []kmsg.ConsumerGroupHeartbeatRequestTopic) assignment {
	out := assignment{}
	if len(ts) == 0 {
		return out
	}
	names := map[[16]byte]string{}
	if c.cfg.TopicNameByID != nil {
		for _, t := range ts {
			if n, ok := c.cfg.TopicNameByID(t.TopicID); ok {
				names[t.TopicID] = n
			}
		}
	}
	for _, t := range ts {
		n, ok := names[t.TopicID]
		if !ok {
			continue
		}
		for _, p := range t.Partitions {
			out.add(n, p)
		}
	}
	return out
}

func (c *Coordinator) assignmentResponse(a assignment) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	r := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	r.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, t := range a.topics() {
		info, ok := c.topicInfo(t)
		if !ok {
			continue
		}
		at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		at.TopicID = info.ID
		at.Partitions = append([]int32(nil), a[t]...)
		r.Topics = append(r.Topics, at)
	}
	return &r
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalNStr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func itoa(n int) string { return strconv.Itoa(n) }
