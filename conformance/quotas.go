package conformance

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SetClientQuotas sets a cell's client quotas (AlterClientQuotas) and waits until
// DescribeClientQuotas shows every one of them (Kafka applies them through its metadata log,
// and its quota managers from the same image).
func (t *Target) SetClientQuotas(ctx context.Context, quotas []QuotaSpec, interp func(string) string) error {
	req := kmsg.NewPtrAlterClientQuotasRequest()
	var checks []kmsg.DescribeClientQuotasRequest
	for _, q := range quotas {
		e := kmsg.NewAlterClientQuotasRequestEntry()
		d := kmsg.NewDescribeClientQuotasRequest()
		d.Strict = true
		types := make([]string, 0, len(q.Entity))
		for typ := range q.Entity {
			types = append(types, typ)
		}
		sort.Strings(types)
		for _, typ := range types {
			ed := kmsg.NewAlterClientQuotasRequestEntryEntity()
			cd := kmsg.NewDescribeClientQuotasRequestComponent()
			ed.Type, cd.EntityType, cd.MatchType = typ, typ, kmsg.QuotasMatchTypeDefault
			if n := q.Entity[typ]; n != nil {
				name := interp(*n)
				ed.Name, cd.Match, cd.MatchType = &name, &name, kmsg.QuotasMatchTypeExact
			}
			e.Entity = append(e.Entity, ed)
			d.Components = append(d.Components, cd)
		}
		for k, v := range q.Values {
			op := kmsg.NewAlterClientQuotasRequestEntryOp()
			op.Key, op.Value = k, v
			e.Ops = append(e.Ops, op)
		}
		req.Entries = append(req.Entries, e)
		checks = append(checks, d)
	}
	resp, err := req.RequestWith(ctx, t.kcl)
	if err != nil {
		return fmt.Errorf("setup: AlterClientQuotas: %v", err)
	}
	for _, e := range resp.Entries {
		if err := kerr.ErrorForCode(e.ErrorCode); err != nil {
			msg := ""
			if e.ErrorMessage != nil {
				msg = *e.ErrorMessage
			}
			return fmt.Errorf("setup: client quota: %v %s", err, msg)
		}
	}
	return awaitSetup(ctx, "client quotas not visible", func() (bool, error) {
		visible := 0
		for i := range checks {
			dr, err := checks[i].RequestWith(ctx, t.kcl)
			if err == nil && dr.ErrorCode == 0 && len(dr.Entries) == 1 && len(dr.Entries[0].Values) >= len(quotas[i].Values) {
				visible++
			}
		}
		return visible == len(checks), nil
	})
}
