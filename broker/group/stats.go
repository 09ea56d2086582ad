package group

// Stat is one group as the metrics see it (broker/metrics_collect.go): state, size and
// committed offsets, taken on the coordinator loop at scrape time.
type Stat struct {
	ID, Type, State string
	Members         int
	Offsets         []CommittedOffset
}

// CommittedOffset is a group's committed offset of one partition.
type CommittedOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Stats snapshots every group; respond gets nil if the coordinator is closed.
func (c *Coordinator) Stats(respond func([]Stat)) {
	if !c.post(func() {
		out := make([]Stat, 0, len(c.groups))
		for _, g := range c.groups {
			s := Stat{ID: g.id, Type: g.typeName(), State: g.stateName(), Members: len(g.members)}
			if g.cg != nil {
				s.Members = len(g.cg.members)
			}
			s.Offsets = make([]CommittedOffset, 0, len(g.offsets))
			for k, o := range g.offsets {
				s.Offsets = append(s.Offsets, CommittedOffset{Topic: k.topic, Partition: k.partition, Offset: o.offset})
			}
			out = append(out, s)
		}
		c.reply(func() { respond(out) })
	}) {
		respond(nil)
	}
}
