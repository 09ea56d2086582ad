package main

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
)

type adminArgs struct {
	Action     string            `json:"action"`
	Groups     []string          `json:"groups"`
	Group      string            `json:"group"`
	Topic      string            `json:"topic"`
	Partitions []int32           `json:"partitions"`
	Partition  int32             `json:"partition"`
	Offset     int64             `json:"offset"`
	Names      []string          `json:"names"`
	Configs    map[string]string `json:"configs"`
	Count      int               `json:"count"`
}

// admin runs the admin actions; result shapes are documented in scenarios/README.md.
func (d *driver) admin(a adminArgs) (map[string]any, error) {
	adm, err := d.admin0()
	if err != nil {
		return nil, err
	}
	c, cancel := ctx()
	defer cancel()
	switch a.Action {
	case "list_groups":
		gs, err := adm.ListGroups(c)
		if err != nil {
			return nil, err
		}
		out := []any{}
		for _, g := range gs.Sorted() {
			out = append(out, map[string]any{"group": g.Group, "protocol_type": g.ProtocolType, "state": g.State})
		}
		return map[string]any{"groups": out}, nil
	case "describe_groups":
		gs, err := adm.DescribeGroups(c, a.Groups...)
		if err != nil {
			return nil, err
		}
		out := []any{}
		for _, g := range gs.Sorted() {
			members := []any{}
			for _, m := range g.Members {
				assigned := []any{}
				if ca, ok := m.Assigned.AsConsumer(); ok {
					for _, t := range ca.Topics {
						for _, p := range t.Partitions {
							assigned = append(assigned, map[string]any{"topic": t.Topic, "partition": p})
						}
					}
				}
				sort.Slice(assigned, func(i, j int) bool {
					x, y := assigned[i].(map[string]any), assigned[j].(map[string]any)
					return x["topic"].(string) < y["topic"].(string) ||
						x["topic"] == y["topic"] && x["partition"].(int32) < y["partition"].(int32)
				})
				var inst any
				if m.InstanceID != nil {
					inst = *m.InstanceID
				}
				members = append(members, map[string]any{"member_id": m.MemberID, "instance_id": inst,
					"client_id": m.ClientID, "assignment": assigned})
			}
			out = append(out, map[string]any{"group": g.Group, "state": g.State, "protocol_type": g.ProtocolType,
				"protocol": g.Protocol, "members": members, "error": nameOf(g.Err)})
		}
		return map[string]any{"groups": out}, nil
	case "describe_consumer_groups":
		gs, err := adm.DescribeConsumerGroups(c, a.Groups...)
		if err != nil {
			return nil, err
		}
		out := []any{}
		for _, id := range a.Groups {
			g, ok := gs[id]
			if !ok {
				continue
			}
			members := []any{}
			for _, m := range g.Members {
				assigned := []any{}
				for _, tp := range m.Assignment.Sorted() {
					for _, p := range tp.Partitions {
						assigned = append(assigned, map[string]any{"topic": tp.Topic, "partition": p})
					}
				}
				var inst any
				if m.InstanceID != nil {
					inst = *m.InstanceID
				}
				members = append(members, map[string]any{"member_id": m.MemberID, "instance_id": inst,
					"member_epoch": m.MemberEpoch, "assignment": assigned})
			}
			out = append(out, map[string]any{"group": g.Group, "state": g.State, "epoch": g.Epoch,
				"assignment_epoch": g.AssignmentEpoch, "assignor": g.AssignorName, "members": members,
				"error": nameOf(g.Err)})
		}
		return map[string]any{"groups": out}, nil
	case "delete_groups":
		rs, err := adm.DeleteGroups(c, a.Groups...)
		if err != nil {
			return nil, err
		}
		out := []any{}
		for _, r := range rs.Sorted() {
			out = append(out, map[string]any{"group": r.Group, "error": nameOf(r.Err)})
		}
		return map[string]any{"groups": out}, nil
	case "offset_delete":
		s := kadm.TopicsSet{}
		s.Add(a.Topic, a.Partitions...)
		rs, err := adm.DeleteOffsets(c, a.Group, s)
		if err != nil {
			return nil, err
		}
		out := []any{}
		for _, p := range a.Partitions {
			out = append(out, map[string]any{"partition": p, "error": nameOf(rs[a.Topic][p])})
		}
		return map[string]any{"partitions": out}, nil
	case "delete_records":
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: a.Topic, Partition: a.Partition, At: a.Offset})
		rs, err := adm.DeleteRecords(c, os)
		if err != nil {
			return nil, err
		}
		r, ok := rs.Lookup(a.Topic, a.Partition)
		if !ok {
			return nil, fmtErr("no DeleteRecords answer for the partition")
		}
		if r.Err != nil {
			return nil, r.Err
		}
		return map[string]any{"low_watermark": r.LowWatermark}, nil
	case "describe_log_dirs":
		// The partition's size summed over every broker's log directories (one broker here).
		all, err := adm.DescribeAllLogDirs(c, kadm.TopicsSet{a.Topic: {a.Partition: {}}})
		if err != nil {
			return nil, err
		}
		var size int64
		found := false
		for _, dirs := range all {
			if err := dirs.Error(); err != nil {
				return nil, err
			}
			if p, ok := dirs.LookupPartition(a.Topic, a.Partition); ok {
				size += p.Size
				found = true
			}
		}
		if !found {
			return nil, fmtErr("no log directory holds the partition")
		}
		return map[string]any{"size": size}, nil
	case "describe_configs":
		rcs, err := adm.DescribeTopicConfigs(c, a.Topic)
		if err != nil {
			return nil, err
		}
		rc, err := rcs.On(a.Topic, nil)
		if err != nil {
			return nil, err
		}
		if rc.Err != nil {
			return nil, rc.Err
		}
		want := map[string]bool{}
		for _, n := range a.Names {
			want[n] = true
		}
		out := []any{}
		for _, cfg := range rc.Configs {
			if len(want) > 0 && !want[cfg.Key] {
				continue
			}
			var v any
			if cfg.Value != nil {
				v = *cfg.Value
			}
			out = append(out, map[string]any{"name": cfg.Key, "value": v, "source": cfg.Source.String()})
		}
		sort.Slice(out, func(i, j int) bool {
			return out[i].(map[string]any)["name"].(string) < out[j].(map[string]any)["name"].(string)
		})
		return map[string]any{"configs": out}, nil
	case "alter_configs":
		var acs []kadm.AlterConfig
		for k, v := range a.Configs {
			acs = append(acs, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)})
		}
		rs, err := adm.AlterTopicConfigs(c, acs, a.Topic)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.Err != nil {
				return nil, r.Err
			}
		}
		return map[string]any{}, nil
	case "create_partitions":
		rs, err := adm.UpdatePartitions(c, a.Count, a.Topic)
		if err != nil {
			return nil, err
		}
		if r, ok := rs[a.Topic]; ok && r.Err != nil {
			return nil, r.Err
		}
		return map[string]any{}, nil
	case "describe_cluster":
		md, err := adm.BrokerMetadata(c)
		if err != nil {
			return nil, err
		}
		return map[string]any{"brokers": len(md.Brokers), "controller": md.Controller, "cluster_id": md.Cluster}, nil
	}
	return nil, &unsupported{"admin action " + a.Action}
}
