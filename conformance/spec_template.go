package conformance

// Loading a step's templates: the value templates of args and expect, and their
// directives (see scenarios/README.md).

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// template validates a YAML subtree (directives, ${name} references, $var uses) and returns
// it as a plain value (map[string]any, []any, string, int64, float64, bool, nil).
func (l *loader) template(n *yaml.Node, expect bool) (any, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return l.template(n.Alias, expect)
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, l.errf(n, "bad scalar: %v", err)
		}
		if s, ok := v.(string); ok {
			for _, m := range interpRe.FindAllStringSubmatch(s, -1) {
				if !l.names[m[1]] {
					return nil, l.errf(n, "${%s} is not a declared topic or name", m[1])
				}
			}
		}
		return canon(v), nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := l.template(c, expect)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		dollar := 0
		for i := 0; i+1 < len(n.Content); i += 2 {
			if strings.HasPrefix(n.Content[i].Value, "$") {
				dollar++
			}
		}
		if dollar > 0 && dollar*2 != len(n.Content) {
			return nil, l.errf(n, "a directive ($...) must not be mixed with plain keys")
		}
		var merged []map[string]any
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, vn := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				// `<<: *anchor` merges another mapping; explicit keys win.
				mv, err := l.template(vn, expect)
				if err != nil {
					return nil, err
				}
				mm, ok := mv.(map[string]any)
				if !ok {
					return nil, l.errf(vn, "<< must merge a mapping")
				}
				merged = append(merged, mm)
				continue
			}
			if _, dup := out[k.Value]; dup {
				return nil, l.errf(k, "duplicate key %q", k.Value)
			}
			if dollar > 0 {
				if err := l.directive(k, vn, expect, len(n.Content)/2); err != nil {
					return nil, err
				}
			}
			v, err := l.template(vn, expect)
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		for _, mm := range merged {
			for k, v := range mm {
				if _, ok := out[k]; !ok {
					out[k] = v
				}
			}
		}
		return out, nil
	}
	return nil, l.errf(n, "unsupported YAML node")
}

func (l *loader) directive(k, v *yaml.Node, expect bool, keys int) error {
	d := k.Value
	switch {
	case generators[d]:
		if keys != 1 {
			return l.errf(k, "%s must be alone in its mapping", d)
		}
	case matchers[d]:
		if !expect {
			return l.errf(k, "%s is a matcher: only allowed under expect", d)
		}
	default:
		return l.errf(k, "unknown directive %s", d)
	}
	switch d {
	case "$bytes":
		if v.Kind == yaml.MappingNode {
			f, err := l.fields(v, "n", "seed")
			if err != nil {
				return err
			}
			if nn, ok := f["n"]; !ok {
				return l.errf(v, "$bytes needs n")
			} else if _, err := l.posInt(nn); err != nil {
				return err
			}
		} else if _, err := l.posInt(v); err != nil {
			return err
		}
	case "$records":
		f, err := l.fields(v, "count", "first", "key", "value", "size", "partition", "timestamp", "headers", "offset_from")
		if err != nil {
			return err
		}
		if c, ok := f["count"]; !ok {
			return l.errf(v, "$records needs count")
		} else if _, err := l.posInt(c); err != nil {
			return err
		}
	case "$var":
		name := v.Value
		if v.Kind == yaml.MappingNode {
			f, err := l.fields(v, "name", "add")
			if err != nil {
				return err
			}
			nn, ok := f["name"]
			if !ok {
				return l.errf(v, "$var needs name")
			}
			name = nn.Value
		}
		if !l.vars[name] {
			return l.errf(v, "variable %q is not saved by an earlier step", name)
		}
	case "$now":
		if v.Tag != "!!int" {
			return l.errf(v, "$now takes an offset in milliseconds (integer)")
		}
	case "$gte", "$gt", "$lte", "$lt":
		if v.Tag != "!!int" && v.Tag != "!!float" && v.Kind != yaml.MappingNode {
			return l.errf(v, "%s takes a number", d)
		}
	case "$oneOf", "$contains", "$unordered":
		if v.Kind != yaml.SequenceNode && v.Kind != yaml.MappingNode {
			return l.errf(v, "%s takes a list (or a generator of one, e.g. $var)", d)
		}
	case "$any", "$ignore":
		if v.Tag != "!!bool" {
			return l.errf(v, "%s takes true", d)
		}
	}
	return nil
}
