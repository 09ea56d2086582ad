package conformance

// A cell's security set-up on a target: its SCRAM users and ACLs, made through the admin API
// before the cell's steps run.

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateScramUsers creates a cell's SCRAM users through the admin API (one request per
// mechanism: Kafka refuses a user twice in one request), deletes those marked deleted, and
// waits until DescribeUserScramCredentials shows the result.
func (t *Target) CreateScramUsers(ctx context.Context, users []ScramUserSpec, interp func(string) string) error {
	for _, u := range users {
		name := interp(u.User)
		for _, m := range u.Mechanisms {
			up := kadm.UpsertSCRAM{User: name, Mechanism: scramMech(m), Iterations: 4096, Password: interp(u.Password)}
			res, err := t.admin.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{up})
			if err == nil {
				err = res.Error()
			}
			if err != nil {
				return fmt.Errorf("setup: scram user %s (%s): %v", name, m, err)
			}
		}
		if !u.Deleted {
			continue
		}
		for _, m := range u.Mechanisms {
			res, err := t.admin.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: name, Mechanism: scramMech(m)}}, nil)
			if err == nil {
				err = res.Error()
			}
			if err != nil {
				return fmt.Errorf("setup: deleting scram user %s (%s): %v", name, m, err)
			}
		}
	}
	// Kafka applies the change through its metadata log: wait until it is visible.
	return awaitSetup(ctx, "scram users not visible", func() (bool, error) {
		ready := true
		for _, u := range users {
			name := interp(u.User)
			d, err := t.admin.DescribeUserSCRAMs(ctx, name)
			got := 0
			if err == nil && d[name].Err == nil {
				got = len(d[name].CredInfos)
			}
			if want := len(u.Mechanisms); u.Deleted && got != 0 || !u.Deleted && got != want {
				ready = false
			}
		}
		return ready, nil
	})
}

func scramMech(m string) kadm.ScramMechanism {
	if m == "SCRAM-SHA-512" {
		return kadm.ScramSha512
	}
	return kadm.ScramSha256
}

// CreateACLs creates a cell's ACL bindings as the super user and waits until DescribeAcls
// shows them all (Kafka applies them through its metadata log).
func (t *Target) CreateACLs(ctx context.Context, acls []ACLSpec, interp func(string) string) error {
	req := kmsg.NewPtrCreateACLsRequest()
	for _, a := range acls {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = a.Resource, interp(a.Name), a.Pattern
		c.Principal, c.Host, c.Operation, c.PermissionType = interp(a.Principal), a.Host, a.Operation, a.Permission
		req.Creations = append(req.Creations, c)
	}
	resp, err := req.RequestWith(ctx, t.kcl)
	if err != nil {
		return fmt.Errorf("setup: CreateAcls: %v", err)
	}
	for i, r := range resp.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return fmt.Errorf("setup: acl at line %d: %v", acls[i].Line, err)
		}
	}
	d := kmsg.NewPtrDescribeACLsRequest()
	d.ResourceType, d.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	d.Operation, d.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	return awaitSetup(ctx, "ACLs not visible", func() (bool, error) {
		dr, err := d.RequestWith(ctx, t.kcl)
		if err != nil || dr.ErrorCode != 0 {
			return false, err
		}
		n := 0
		for _, r := range dr.Resources {
			n += len(r.ACLs)
		}
		return n >= len(acls), nil
	})
}
