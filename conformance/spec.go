// Package conformance runs scenario specs (scenarios/*.yaml) through client drivers
// (clients/<name>/) against targets (klite, real Kafka), checks expectations, compares
// observations across targets and writes COMPATIBILITY.md. The spec format is documented in
// scenarios/README.md; the driver protocol in clients/README.md.
package conformance

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
	"gopkg.in/yaml.v3"
)

// Spec is one loaded, validated scenario.
type Spec struct {
	File        string
	Digest      string // of the file's bytes: results of different versions are not compared
	Name        string
	Description string
	TimeoutMs   int
	Topics      []TopicSpec
	Names       []string // unique names other than topics (groups, transactional ids)
	Actors      []ActorSpec
	Steps       []*Step
	// Security is the listener the cell needs: "" (plaintext), "tls" (SSL), "mtls" (SSL with
	// client certificates), "sasl-ssl" (SASL_SSL) or "sasl" (a SASL_PLAINTEXT
	// listener with PLAIN and SCRAM and the bootstrap user admin / admin-secret; target.go).
	Security string
	// ScramUsers are created by the harness's admin client (AlterUserScramCredentials)
	// before the steps.
	ScramUsers []ScramUserSpec
	// ACLs, with security: sasl, run the cell on the target's ACL variant (an authorizer with
	// the admin as super user and no ACL meaning denied) and are created by the harness's
	// admin (CreateAcls) after the topics, before the steps.
	ACLs []ACLSpec
	// ClientQuotas are set by the harness's admin (AlterClientQuotas) after the topics,
	// before the steps.
	ClientQuotas []QuotaSpec
}

// QuotaSpec is a client quota the harness sets: Entity maps an entity type (user,
// client-id, ip) to a name (a template) or nil for the type's default entity.
type QuotaSpec struct {
	Entity map[string]*string
	Values map[string]float64
	Line   int
}

// ACLSpec is an ACL binding the harness creates; Name and Principal are templates.
type ACLSpec struct {
	Resource   kmsg.ACLResourceType
	Name       string
	Pattern    kmsg.ACLResourcePatternType
	Principal  string
	Host       string
	Operation  kmsg.ACLOperation
	Permission kmsg.ACLPermissionType
	Line       int
}

// ScramUserSpec is a SCRAM user the harness creates; strings are templates (${name}).
type ScramUserSpec struct {
	User, Password string
	Mechanisms     []string // SCRAM-SHA-256, SCRAM-SHA-512
	Deleted        bool     // created, then deleted again before the steps
	Line           int
}

// SASLSpec is an actor's SASL settings, passed to its driver's hello; strings are templates.
type SASLSpec struct {
	Mechanism, User, Password string
}

// TopicSpec is a topic the harness creates (with its own admin client) before the steps run.
type TopicSpec struct {
	Name       string
	Partitions int
	Configs    map[string]string
	Line       int
}

// ActorSpec is one driver process of the cell's client.
type ActorSpec struct {
	Name     string
	ClientID string
	SASL     *SASLSpec
	Line     int
}

// Step is one driver call, or a block of calls run in parallel.
type Step struct {
	Line      int
	Label     string
	Actor     string
	Op        string
	Args      any // template: expanded at run time
	Expect    any // pattern; nil means {ok: true}
	Save      map[string]string
	Diff      DiffSpec
	TimeoutMs int
	Retry     int // attempts (>= 1) until the expectation holds
	DelayMs   int
	Optional  bool // an unsupported answer skips the step instead of making the cell n/a
	Parallel  []*Step
}

// DiffSpec says which parts of an answer differential mode compares across targets.
type DiffSpec struct {
	Off    bool     // not compared at all
	Ignore []string // paths dropped before comparing
	Only   []string // if set, only these paths are compared
	Sort   []string // lists at these paths are sorted before comparing (order is not a contract)
}

// LoadError is a spec problem with its position.
type LoadError struct {
	File   string
	Line   int
	Reason string
}

func (e *LoadError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason) }

var (
	nameRe   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	interpRe = regexp.MustCompile(`\$\{([^}]*)\}`)
	lineRe   = regexp.MustCompile(`line (\d+)`)
	// knownOps is the driver vocabulary of clients/README.md.
	knownOps = map[string]bool{
		"create_topic": true, "delete_topic": true, "metadata": true, "produce": true,
		"consume": true, "produce_for": true, "list_offsets": true, "group_subscribe": true, "group_poll": true,
		"group_commit": true, "group_committed": true, "group_leave": true, "txn_init": true,
		"txn_begin": true, "txn_commit": true, "txn_abort": true, "txn_send_offsets": true,
		"admin": true,
	}
	generators = map[string]bool{"$bytes": true, "$records": true, "$var": true, "$now": true}
	matchers   = map[string]bool{
		"$any": true, "$ignore": true, "$gte": true, "$gt": true, "$lte": true, "$lt": true,
		"$oneOf": true, "$len": true, "$each": true, "$contains": true, "$unordered": true,
		"$not": true, "$ne": true,
	}
)

// LoadDir loads every scenarios/*.yaml in dir, sorted by name. All errors are returned together.
func LoadDir(dir string) ([]*Spec, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var specs []*Spec
	var errs []string
	for _, f := range files {
		s, err := LoadFile(f)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		specs = append(specs, s)
	}
	if len(errs) > 0 {
		return specs, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return specs, nil
}

// LoadFile reads and validates one spec.
func LoadFile(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

type loader struct {
	file  string
	names map[string]bool // declared unique names (topics + names)
	vars  map[string]bool // variables saved by earlier steps
	acts  map[string]bool
}

func (l *loader) errf(n *yaml.Node, format string, a ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &LoadError{File: l.file, Line: line, Reason: fmt.Sprintf(format, a...)}
}

// Parse validates a spec held in memory; file is used in error messages and for the name check.
func Parse(file string, data []byte) (*Spec, error) {
	l := &loader{file: file, names: map[string]bool{}, vars: map[string]bool{}, acts: map[string]bool{}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		line := 0
		if m := lineRe.FindStringSubmatch(err.Error()); m != nil {
			fmt.Sscan(m[1], &line)
		}
		return nil, &LoadError{File: file, Line: line, Reason: "invalid YAML: " + err.Error()}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, l.errf(&doc, "empty spec")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, l.errf(root, "spec must be a mapping")
	}
	sum := sha256.Sum256(data)
	s := &Spec{File: file, TimeoutMs: 60000, Digest: hex.EncodeToString(sum[:6])}
	fields, err := l.fields(root, "name", "description", "timeout_ms", "topics", "names", "actors", "steps",
		"security", "scram_users", "acls", "client_quotas")
	if err != nil {
		return nil, err
	}
	n, ok := fields["name"]
	if !ok {
		return nil, l.errf(root, "missing name")
	}
	if s.Name, err = l.str(n); err != nil {
		return nil, err
	}
	if base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)); base != s.Name {
		return nil, l.errf(n, "name %q must equal the file name %q", s.Name, base)
	}
	if n, ok := fields["description"]; ok {
		if s.Description, err = l.str(n); err != nil {
			return nil, err
		}
	}
	if n, ok := fields["timeout_ms"]; ok {
		if s.TimeoutMs, err = l.posInt(n); err != nil {
			return nil, err
		}
	}
	if n, ok := fields["topics"]; ok {
		if err := l.topics(s, n); err != nil {
			return nil, err
		}
	}
	if n, ok := fields["names"]; ok {
		if n.Kind != yaml.SequenceNode {
			return nil, l.errf(n, "names must be a list of identifiers")
		}
		for _, c := range n.Content {
			name, err := l.ident(c)
			if err != nil {
				return nil, err
			}
			if l.names[name] {
				return nil, l.errf(c, "name %q declared twice", name)
			}
			l.names[name] = true
			s.Names = append(s.Names, name)
		}
	}
	an, ok := fields["actors"]
	if !ok {
		return nil, l.errf(root, "missing actors")
	}
	if err := l.actors(s, an); err != nil {
		return nil, err
	}
	if err := l.security(s, root, fields); err != nil {
		return nil, err
	}
	if err := l.clientQuotas(s, fields); err != nil {
		return nil, err
	}
	sn, ok := fields["steps"]
	if !ok {
		return nil, l.errf(root, "missing steps")
	}
	if sn.Kind != yaml.SequenceNode || len(sn.Content) == 0 {
		return nil, l.errf(sn, "steps must be a non-empty list")
	}
	for _, c := range sn.Content {
		st, err := l.step(c, false)
		if err != nil {
			return nil, err
		}
		s.Steps = append(s.Steps, st)
	}
	return s, nil
}

// fields returns a mapping's keys, rejecting unknown and duplicate ones.
func (l *loader) fields(n *yaml.Node, allowed ...string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, l.errf(n, "expected a mapping with keys %s", strings.Join(allowed, ", "))
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias // YAML anchors (&x / *x) reuse a block, e.g. the same args for two actors
		}
		found := false
		for _, a := range allowed {
			if a == k.Value {
				found = true
			}
		}
		if !found {
			return nil, l.errf(k, "unknown key %q (allowed: %s)", k.Value, strings.Join(allowed, ", "))
		}
		if _, dup := out[k.Value]; dup {
			return nil, l.errf(k, "duplicate key %q", k.Value)
		}
		out[k.Value] = v
	}
	return out, nil
}

func (l *loader) str(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", l.errf(n, "expected a string")
	}
	return n.Value, nil
}

func (l *loader) ident(n *yaml.Node) (string, error) {
	s, err := l.str(n)
	if err != nil {
		return "", err
	}
	if !nameRe.MatchString(s) {
		return "", l.errf(n, "%q is not an identifier (lower case letters, digits, _)", s)
	}
	return s, nil
}

func (l *loader) posInt(n *yaml.Node) (int, error) {
	var v int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil || v <= 0 {
		return 0, l.errf(n, "expected a positive integer, got %q", n.Value)
	}
	return v, nil
}

func (l *loader) topics(s *Spec, n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return l.errf(n, "topics must be a list")
	}
	for _, c := range n.Content {
		f, err := l.fields(c, "name", "partitions", "configs")
		if err != nil {
			return err
		}
		nn, ok := f["name"]
		if !ok {
			return l.errf(c, "topic without name")
		}
		t := TopicSpec{Partitions: 1, Line: c.Line}
		if t.Name, err = l.ident(nn); err != nil {
			return err
		}
		if l.names[t.Name] {
			return l.errf(nn, "name %q declared twice", t.Name)
		}
		l.names[t.Name] = true
		if p, ok := f["partitions"]; ok {
			if t.Partitions, err = l.posInt(p); err != nil {
				return err
			}
		}
		if cn, ok := f["configs"]; ok {
			if err := cn.Decode(&t.Configs); err != nil || cn.Kind != yaml.MappingNode {
				return l.errf(cn, "configs must map config names to strings")
			}
		}
		s.Topics = append(s.Topics, t)
	}
	return nil
}

func (l *loader) actors(s *Spec, n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return l.errf(n, "actors must be a non-empty list")
	}
	for _, c := range n.Content {
		a := ActorSpec{Line: c.Line}
		var err error
		if c.Kind == yaml.ScalarNode {
			a.Name, err = l.ident(c)
		} else {
			var f map[string]*yaml.Node
			if f, err = l.fields(c, "name", "client_id", "sasl"); err != nil {
				return err
			}
			nn, ok := f["name"]
			if !ok {
				return l.errf(c, "actor without name")
			}
			if a.Name, err = l.ident(nn); err == nil {
				if cn, ok := f["client_id"]; ok {
					a.ClientID, err = l.str(cn)
				}
			}
			if sn, ok := f["sasl"]; ok && err == nil {
				a.SASL, err = l.sasl(sn)
			}
		}
		if err != nil {
			return err
		}
		if l.acts[a.Name] {
			return l.errf(c, "actor %q declared twice", a.Name)
		}
		l.acts[a.Name] = true
		s.Actors = append(s.Actors, a)
	}
	return nil
}

func (l *loader) step(n *yaml.Node, inParallel bool) (*Step, error) {
	f, err := l.fields(n, "label", "actor", "op", "args", "expect", "save", "diff", "timeout_ms",
		"retry", "delay_ms", "optional", "parallel")
	if err != nil {
		return nil, err
	}
	st := &Step{Line: n.Line, Retry: 1}
	if v, ok := f["label"]; ok {
		if st.Label, err = l.str(v); err != nil {
			return nil, err
		}
	}
	if v, ok := f["retry"]; ok {
		if st.Retry, err = l.posInt(v); err != nil {
			return nil, err
		}
	}
	if v, ok := f["delay_ms"]; ok {
		if st.DelayMs, err = l.posInt(v); err != nil {
			return nil, err
		}
	}
	if pn, ok := f["parallel"]; ok {
		if inParallel {
			return nil, l.errf(pn, "parallel blocks cannot nest")
		}
		for _, k := range []string{"actor", "op", "args", "expect", "save", "diff", "timeout_ms", "optional"} {
			if v, ok := f[k]; ok {
				return nil, l.errf(v, "%s belongs on the steps inside parallel, not on the block", k)
			}
		}
		if pn.Kind != yaml.SequenceNode || len(pn.Content) < 2 {
			return nil, l.errf(pn, "parallel must list at least two steps")
		}
		used := map[string]bool{}
		var saves []string
		for _, c := range pn.Content {
			sub, err := l.step(c, true)
			if err != nil {
				return nil, err
			}
			if used[sub.Actor] {
				return nil, l.errf(c, "actor %q appears twice in one parallel block (a driver runs one command at a time)", sub.Actor)
			}
			used[sub.Actor] = true
			for v := range sub.Save {
				saves = append(saves, v)
			}
			st.Parallel = append(st.Parallel, sub)
		}
		for _, v := range saves {
			l.vars[v] = true
		}
		return st, nil
	}
	an, ok := f["actor"]
	if !ok {
		return nil, l.errf(n, "step needs actor and op (or parallel)")
	}
	if st.Actor, err = l.str(an); err != nil {
		return nil, err
	}
	if !l.acts[st.Actor] {
		return nil, l.errf(an, "unknown actor %q", st.Actor)
	}
	on, ok := f["op"]
	if !ok {
		return nil, l.errf(n, "step without op")
	}
	if st.Op, err = l.str(on); err != nil {
		return nil, err
	}
	if !knownOps[st.Op] {
		return nil, l.errf(on, "unknown op %q (hello and close are sent by the harness)", st.Op)
	}
	if v, ok := f["timeout_ms"]; ok {
		if st.TimeoutMs, err = l.posInt(v); err != nil {
			return nil, err
		}
	}
	if v, ok := f["optional"]; ok {
		if v.Tag != "!!bool" || v.Decode(&st.Optional) != nil {
			return nil, l.errf(v, "optional must be true or false")
		}
	}
	if v, ok := f["args"]; ok {
		if v.Kind != yaml.MappingNode {
			return nil, l.errf(v, "args must be a mapping")
		}
		if st.Args, err = l.template(v, false); err != nil {
			return nil, err
		}
	} else {
		st.Args = map[string]any{}
	}
	if v, ok := f["expect"]; ok {
		if v.Kind != yaml.MappingNode {
			return nil, l.errf(v, "expect must be a mapping (a pattern over the answer)")
		}
		if st.Expect, err = l.template(v, true); err != nil {
			return nil, err
		}
	}
	if v, ok := f["diff"]; ok {
		if st.Diff, err = l.diff(v); err != nil {
			return nil, err
		}
	}
	if v, ok := f["save"]; ok {
		if v.Kind != yaml.MappingNode {
			return nil, l.errf(v, "save must map variable names to answer paths")
		}
		st.Save = map[string]string{}
		for i := 0; i+1 < len(v.Content); i += 2 {
			name, err := l.ident(v.Content[i])
			if err != nil {
				return nil, err
			}
			p, err := l.str(v.Content[i+1])
			if err != nil {
				return nil, err
			}
			if _, err := parsePath(p); err != nil {
				return nil, l.errf(v.Content[i+1], "%v", err)
			}
			st.Save[name] = p
		}
		if !inParallel {
			for name := range st.Save {
				l.vars[name] = true
			}
		}
	}
	return st, nil
}

func (l *loader) diff(n *yaml.Node) (DiffSpec, error) {
	var d DiffSpec
	if n.Kind == yaml.ScalarNode {
		var on bool
		if n.Tag != "!!bool" || n.Decode(&on) != nil {
			return d, l.errf(n, "diff must be true, false or a mapping with ignore/only/sort")
		}
		d.Off = !on
		return d, nil
	}
	f, err := l.fields(n, "ignore", "only", "sort")
	if err != nil {
		return d, err
	}
	for k, dst := range map[string]*[]string{"ignore": &d.Ignore, "only": &d.Only, "sort": &d.Sort} {
		v, ok := f[k]
		if !ok {
			continue
		}
		if v.Kind != yaml.SequenceNode {
			return d, l.errf(v, "diff.%s must be a list of paths", k)
		}
		for _, c := range v.Content {
			p, err := l.str(c)
			if err != nil {
				return d, err
			}
			if _, err := parsePath(p); err != nil {
				return d, l.errf(c, "%v", err)
			}
			*dst = append(*dst, p)
		}
	}
	return d, nil
}
