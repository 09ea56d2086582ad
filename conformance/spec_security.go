package conformance

// Loading a scenario's security sections: SASL, the security mode, ACLs and client quotas.

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
	"gopkg.in/yaml.v3"
)

// sasl reads an actor's {mechanism, user, password}.
func (l *loader) sasl(n *yaml.Node) (*SASLSpec, error) {
	f, err := l.fields(n, "mechanism", "user", "password")
	if err != nil {
		return nil, err
	}
	out := &SASLSpec{}
	for k, dst := range map[string]*string{"mechanism": &out.Mechanism, "user": &out.User, "password": &out.Password} {
		v, ok := f[k]
		if !ok {
			return nil, l.errf(n, "sasl needs %s", k)
		}
		if *dst, err = l.str(v); err != nil {
			return nil, err
		}
	}
	switch out.Mechanism {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return nil, l.errf(f["mechanism"], "sasl mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", out.Mechanism)
	}
	return out, nil
}

// security reads `security` and `scram_users`: a SASL scenario's actors all authenticate, and
// only a SASL scenario may use SASL.
func (l *loader) security(s *Spec, root *yaml.Node, fields map[string]*yaml.Node) error {
	if n, ok := fields["security"]; ok {
		v, err := l.str(n)
		if err != nil {
			return err
		}
		switch v {
		case "plaintext":
		case "sasl", "tls", "mtls", "sasl-ssl":
			s.Security = v
		default:
			return l.errf(n, "security %q: want plaintext, sasl, tls, mtls or sasl-ssl", v)
		}
	}
	for _, a := range s.Actors {
		if (a.SASL != nil) != s.NeedsSASL() {
			return &LoadError{File: l.file, Line: a.Line, Reason: fmt.Sprintf("actor %q: sasl settings go with `security: sasl`, on every actor", a.Name)}
		}
	}
	if err := l.acls(s, fields); err != nil {
		return err
	}
	n, ok := fields["scram_users"]
	if !ok {
		return nil
	}
	if !s.NeedsSASL() {
		return l.errf(n, "scram_users needs `security: sasl` or `sasl-ssl`")
	}
	if n.Kind != yaml.SequenceNode {
		return l.errf(n, "scram_users must be a list")
	}
	for _, c := range n.Content {
		f, err := l.fields(c, "user", "password", "mechanisms", "deleted")
		if err != nil {
			return err
		}
		u := ScramUserSpec{Line: c.Line}
		un, ok1 := f["user"]
		pn, ok2 := f["password"]
		mn, ok3 := f["mechanisms"]
		if !ok1 || !ok2 || !ok3 {
			return l.errf(c, "a scram user needs user, password and mechanisms")
		}
		if u.User, err = l.str(un); err != nil {
			return err
		}
		if u.Password, err = l.str(pn); err != nil {
			return err
		}
		if mn.Kind != yaml.SequenceNode || len(mn.Content) == 0 {
			return l.errf(mn, "mechanisms must be a non-empty list")
		}
		for _, m := range mn.Content {
			v, err := l.str(m)
			if err != nil {
				return err
			}
			if v != "SCRAM-SHA-256" && v != "SCRAM-SHA-512" {
				return l.errf(m, "scram mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", v)
			}
			u.Mechanisms = append(u.Mechanisms, v)
		}
		if dn, ok := f["deleted"]; ok {
			if err := dn.Decode(&u.Deleted); err != nil {
				return l.errf(dn, "deleted must be a boolean")
			}
		}
		s.ScramUsers = append(s.ScramUsers, u)
	}
	return nil
}

// acls reads `acls`: {resource, name, pattern (literal), principal, host (*), operation,
// permission (allow)}, enum names as Kafka's (topic, group, cluster, transactional_id; read,
// write, describe, ...), parsed by kmsg.
func (l *loader) acls(s *Spec, fields map[string]*yaml.Node) error {
	n, ok := fields["acls"]
	if !ok {
		return nil
	}
	if s.Security != "sasl" {
		return l.errf(n, "acls needs `security: sasl`")
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return l.errf(n, "acls must be a non-empty list")
	}
	for _, c := range n.Content {
		f, err := l.fields(c, "resource", "name", "pattern", "principal", "host", "operation", "permission")
		if err != nil {
			return err
		}
		get := func(k, def string) (string, error) {
			v, ok := f[k]
			if !ok {
				if def == "" {
					return "", l.errf(c, "an acl needs %s", k)
				}
				return def, nil
			}
			return l.str(v)
		}
		a := ACLSpec{Line: c.Line}
		var vals [7]string
		for i, k := range []string{"resource", "name", "pattern", "principal", "host", "operation", "permission"} {
			def := map[string]string{"pattern": "literal", "host": "*", "permission": "allow"}[k]
			if vals[i], err = get(k, def); err != nil {
				return err
			}
		}
		a.Name, a.Principal, a.Host = vals[1], vals[3], vals[4]
		var errs []error
		var e error
		a.Resource, e = kmsg.ParseACLResourceType(vals[0])
		errs = append(errs, e)
		a.Pattern, e = kmsg.ParseACLResourcePatternType(vals[2])
		errs = append(errs, e)
		a.Operation, e = kmsg.ParseACLOperation(vals[5])
		errs = append(errs, e)
		a.Permission, e = kmsg.ParseACLPermissionType(vals[6])
		errs = append(errs, e)
		if err := errors.Join(errs...); err != nil {
			return l.errf(c, "acl: %v", err)
		}
		s.ACLs = append(s.ACLs, a)
	}
	return nil
}

// NeedsSASL reports whether the cell's actors authenticate with SASL.
func (s *Spec) NeedsSASL() bool { return s.Security == "sasl" || s.Security == "sasl-ssl" }

// clientQuotas reads `client_quotas`: [{entity: {client-id: name|null, user: ...}, values:
// {producer_byte_rate: N, ...}}].
func (l *loader) clientQuotas(s *Spec, fields map[string]*yaml.Node) error {
	n, ok := fields["client_quotas"]
	if !ok {
		return nil
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return l.errf(n, "client_quotas must be a non-empty list")
	}
	for _, c := range n.Content {
		f, err := l.fields(c, "entity", "values")
		if err != nil {
			return err
		}
		en, ok1 := f["entity"]
		vn, ok2 := f["values"]
		if !ok1 || !ok2 || en.Kind != yaml.MappingNode || vn.Kind != yaml.MappingNode || len(en.Content) == 0 || len(vn.Content) == 0 {
			return l.errf(c, "a client quota needs an entity and values (non-empty mappings)")
		}
		q := QuotaSpec{Entity: map[string]*string{}, Values: map[string]float64{}, Line: c.Line}
		for i := 0; i+1 < len(en.Content); i += 2 {
			typ := en.Content[i].Value
			if typ != "user" && typ != "client-id" && typ != "ip" {
				return l.errf(en.Content[i], "quota entity type %q: want user, client-id or ip", typ)
			}
			if v := en.Content[i+1]; v.Tag != "!!null" {
				name, err := l.str(v)
				if err != nil {
					return err
				}
				q.Entity[typ] = &name
			} else {
				q.Entity[typ] = nil
			}
		}
		for i := 0; i+1 < len(vn.Content); i += 2 {
			var v float64
			if err := vn.Content[i+1].Decode(&v); err != nil {
				return l.errf(vn.Content[i+1], "quota value must be a number")
			}
			q.Values[vn.Content[i].Value] = v
		}
		s.ClientQuotas = append(s.ClientQuotas, q)
	}
	return nil
}
