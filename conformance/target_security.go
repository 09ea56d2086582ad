package conformance

// A cell's security set-up on a target: its SCRAM users and ACLs, made through the admin API
// before the cell's steps run.

import (
	"context"
	"fmt"
	"time"

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
	for deadline := time.Now().Add(15 * time.Second); ; {
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
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("setup: scram users not visible after 15s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
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
	for deadline := time.Now().Add(15 * time.Second); ; {
		dr, err := d.RequestWith(ctx, t.kcl)
		if err == nil && dr.ErrorCode == 0 {
			n := 0
			for _, r := range dr.Resources {
				n += len(r.ACLs)
			}
			if n >= len(acls) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("setup: ACLs not visible after 15s (%v)", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
