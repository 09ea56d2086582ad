package group

// Admin views of consumer groups: ConsumerGroupDescribe (key 69), and the rules other group
// APIs follow when they meet a group of the other type (Kafka 4.0's GroupMetadataManager).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerGroupDescribe describes consumer groups.
func (c *Coordinator) ConsumerGroupDescribe(ids []string, respond func([]kmsg.ConsumerGroupDescribeResponseGroup)) {
	eachGroup(c, ids, c.describeConsumer, func(id string) kmsg.ConsumerGroupDescribeResponseGroup {
		d := kmsg.NewConsumerGroupDescribeResponseGroup()
		d.Group, d.ErrorCode = id, kerr.CoordinatorNotAvailable.Code
		return d
	}, respond)
}

func (c *Coordinator) describeConsumer(id string) kmsg.ConsumerGroupDescribeResponseGroup {
	d := kmsg.NewConsumerGroupDescribeResponseGroup()
	d.Group = id
	g := c.groups[id]
	switch {
	case id == "": // as Kafka's group coordinator
		d.ErrorCode = kerr.InvalidGroupID.Code
		return d
	case g == nil:
		d.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "Group " + id + " not found."
		d.ErrorMessage = &msg
		return d
	case g.cg == nil && g.state == Empty && len(g.members) == 0 && len(g.offsets) == 0 && g.generation == 0:
		// Only MEMBER_ID_REQUIRED handed out: nothing is stored yet, and Kafka describes
		// from what is stored.
		d.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "Group " + id + " not found."
		d.ErrorMessage = &msg
		return d
	case g.cg == nil:
		d.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "Group " + id + " is not a consumer group."
		d.ErrorMessage = &msg
		return d
	}
	cg := g.cg
	d.State = cg.stateName()
	d.Epoch = cg.epoch
	d.AssignmentEpoch = cg.assignEpoch
	d.AssignorName = cg.assignorName(c.cfg.DefaultAssignor)
	for _, m := range cg.ordered() {
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.RackID = m.rackID
		dm.MemberEpoch = m.epoch
		dm.ClientID = m.clientID
		dm.ClientHost = m.host
		// The names subscribed to; the topics a regex resolved to are not shown.
		dm.SubscribedTopics = append([]string{}, m.names...)
		dm.SubscribedTopicRegex = m.regex
		if m.regex == nil {
			none := "" // Kafka 4.0 answers an empty string, not null
			dm.SubscribedTopicRegex = &none
		}
		dm.Assignment = c.describeAssignment(m.assigned)
		dm.TargetAssignment = c.describeAssignment(cg.target[m.id])
		dm.MemberType = 1 // a consumer-protocol member
		if m.classic != nil {
			dm.MemberType = 0 // a classic-protocol member
		}
		d.Members = append(d.Members, dm)
	}
	return d
}

func (c *Coordinator) describeAssignment(a assignment) kmsg.Assignment {
	out := kmsg.NewAssignment()
	out.TopicPartitions = []kmsg.AssignmentTopicPartition{}
	for _, t := range a.topics() {
		info, ok := c.topicInfo(t)
		if !ok {
			continue
		}
		tp := kmsg.NewAssignmentTopicPartition()
		tp.TopicID, tp.Topic = info.ID, t
		tp.Partitions = append([]int32(nil), a[t]...)
		out.TopicPartitions = append(out.TopicPartitions, tp)
	}
	return out
}

// stateName is the state ListGroups shows for any group type.
func (g *group) stateName() string {
	if g.cg != nil {
		return g.cg.stateName()
	}
	return g.state.String()
}

// validateConsumerCommit applies KIP-848's OffsetCommit rules to a consumer group: a commit
// without a member (epoch -1) only while the group is empty; otherwise the member must
// exist and send its current epoch (STALE_MEMBER_EPOCH if not). Kafka 4.0 refuses
// OffsetCommit below v9 from consumer-protocol members (UNSUPPORTED_VERSION).
func (g *group) validateConsumerCommit(version int16, memberID string, epoch int32) *kerr.Error {
	cg := g.cg
	if epoch < 0 && memberID == "" && len(cg.members) == 0 {
		return nil
	}
	m := cg.members[memberID]
	if m == nil {
		return kerr.UnknownMemberID
	}
	if m.classic != nil {
		// A classic member commits with its member epoch as generation.
		if epoch != m.epoch {
			return kerr.IllegalGeneration
		}
		return nil
	}
	if version < 9 {
		return kerr.UnsupportedVersion
	}
	if epoch != m.epoch {
		return kerr.StaleMemberEpoch
	}
	return nil
}

// validateConsumerFetch applies KIP-848's OffsetFetch rules (v9+ with a member ID): the
// member must exist and send its current epoch.
func (g *group) validateConsumerFetch(memberID *string, epoch int32) *kerr.Error {
	if g == nil || g.cg == nil || memberID == nil || epoch < 0 {
		return nil
	}
	m := g.cg.members[*memberID]
	if m == nil {
		return kerr.UnknownMemberID
	}
	if epoch != m.epoch {
		return kerr.StaleMemberEpoch
	}
	return nil
}
