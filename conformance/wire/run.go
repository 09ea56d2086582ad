package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klite/klite/conformance"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Runner runs cases against klite and Kafka and compares the answers.
type Runner struct {
	Klite, Kafka *conformance.Target
	Known        *KnownList
	RunID        string
	Timeout      time.Duration // per request
	Jobs         int           // variants run at once (each on its own connections and names)
	Dump         bool          // log both normalized answers of every differing step
	Logf         func(string, ...any)
}

type ranges map[int16][2]int16

// Ranges are the targets' advertised versions (key -> [min, max]), for FuzzCases.
func (r *Runner) Ranges() (klite, kafka map[int16][2]int16) {
	return rangesOf(r.Klite), rangesOf(r.Kafka)
}

// maxDetails bounds the differences kept per step in the results file.
const maxDetails = 8

func rangesOf(t *conformance.Target) ranges {
	r := ranges{}
	for _, a := range t.APIs {
		r[a.Key] = [2]int16{a.Min, a.Max}
	}
	return r
}

// Run runs every case (each version variant of it, Jobs at a time) and returns the variants'
// results in case and version order.
func (r *Runner) Run(ctx context.Context, cases []*Case) []*conformance.WireVariant {
	kl, kf := rangesOf(r.Klite), rangesOf(r.Kafka)
	type job struct {
		c *Case
		v int16
	}
	var jobs []job
	var out []*conformance.WireVariant
	for _, c := range cases {
		all := -1
		for i, s := range c.Steps {
			if s.Version == "all" {
				all = i
			}
		}
		if all < 0 {
			jobs = append(jobs, job{c, -1})
			continue
		}
		key := c.Steps[all].Key
		rg, ok := kl[key]
		if !ok {
			out = append(out, &conformance.WireVariant{Case: c.Name, File: c.File, Key: key, Version: -1,
				Status: conformance.WireKliteOnly, Details: []string{"klite does not advertise " + kmsg.NameForKey(key)}})
			continue
		}
		for _, v := range Versions(key, rg[0], rg[1]) {
			if v >= c.Steps[all].From {
				jobs = append(jobs, job{c, v})
			}
		}
	}
	res := make([]*conformance.WireVariant, len(jobs))
	n := r.Jobs
	if n < 1 {
		n = 1
	}
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(jobs) || ctx.Err() != nil {
					return
				}
				if !jobs[i].c.Exclusive {
					res[i] = r.variant(ctx, jobs[i].c, jobs[i].v, kl, kf)
				}
			}
		}()
	}
	wg.Wait()
	for i, j := range jobs { // alone, after the others
		if j.c.Exclusive && ctx.Err() == nil {
			res[i] = r.variant(ctx, j.c, j.v, kl, kf)
		}
	}
	for _, v := range res {
		if v != nil {
			out = append(out, v)
		}
	}
	return out
}

// stepVersion resolves a step's version; ok false when Kafka does not advertise it.
func stepVersion(s *Step, variant int16, kl, kf ranges) (v int16, kafkaOK bool) {
	max := kmsg.RequestForKey(s.Key).MaxVersion()
	switch s.Version {
	case "all":
		v = variant
	case "", "max":
		v = max
		if r, ok := kl[s.Key]; ok && r[1] < v {
			v = r[1]
		}
		if r, ok := kf[s.Key]; ok && r[1] < v {
			v = r[1]
		}
	default:
		n, _ := strconv.Atoi(s.Version)
		return int16(n), true // an explicit version is sent as is, also to check refusals
	}
	r, ok := kf[s.Key]
	return v, ok && v >= r[0] && v <= r[1]
}

// answer is what one target answered to one step: a normalized tree.
type answer struct {
	tree any
	err  string
}

func (r *Runner) variant(ctx context.Context, c *Case, version int16, kl, kf ranges) *conformance.WireVariant {
	res := &conformance.WireVariant{Case: c.Name, File: c.File, Version: version}
	names := Names{Run: r.RunID, Case: c.Name}
	if version >= 0 {
		names.Variant = fmt.Sprintf("v%d", version)
	}
	compareKafka := true
	for i := range c.Steps {
		s := &c.Steps[i]
		if s.AwaitTopic != "" {
			continue
		}
		if s.Compared() || s.Version == "all" {
			res.Key = s.Key
		}
		if s.Version == "all" {
			break
		}
	}
	for i := range c.Steps {
		if s := &c.Steps[i]; s.AwaitTopic == "" {
			if _, ok := stepVersion(s, version, kl, kf); !ok {
				compareKafka = false
			}
		}
	}
	var kliteAns, kafkaAns []answer
	var kliteErr, kafkaErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		kliteAns, kliteErr = r.sequence(ctx, r.Klite, c, names, version, kl, kf)
	}()
	if compareKafka {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kafkaAns, kafkaErr = r.sequence(ctx, r.Kafka, c, names, version, kl, kf)
		}()
	}
	wg.Wait()
	if err := errors.Join(kliteErr, kafkaErr); err != nil {
		res.Status = conformance.WireError
		res.Details = []string{err.Error()}
		return res
	}
	if !compareKafka {
		res.Status = conformance.WireKliteOnly
		res.Details = []string{fmt.Sprintf("Kafka does not advertise %s v%d", kmsg.NameForKey(res.Key), version)}
		return res
	}
	knownVersion := int(version)
	if version < 0 && c.KnownVersion != nil {
		knownVersion = int(*c.KnownVersion)
	}
	var all []Difference
	res.Status = conformance.WireMatch
	for i := range c.Steps {
		s := &c.Steps[i]
		if !s.Compared() {
			continue
		}
		v, _ := stepVersion(s, version, kl, kf)
		diffs := Diff(kliteAns[i].tree, kafkaAns[i].tree)
		st := conformance.WireStep{Key: s.Key, Version: v, Status: conformance.WireMatch}
		if len(diffs) > 0 {
			st.Status = conformance.WireDiffer
			if _, ok := r.Known.Match(c.Name, knownVersion, diffs); ok {
				st.Status = conformance.WireKnown
			}
		}
		if r.Dump && r.Logf != nil {
			a, _ := json.Marshal(kliteAns[i].tree)
			b, _ := json.Marshal(kafkaAns[i].tree)
			r.Logf("%s v%d step %d (%d differences)\n  klite: %s\n  kafka: %s", c.Name, version, i, len(diffs), a, b)
		}
		for j, d := range diffs {
			if j == maxDetails {
				res.Details = append(res.Details, fmt.Sprintf("step %d: %d more differences (run with --dump)", i, len(diffs)-j))
				break
			}
			res.Details = append(res.Details, fmt.Sprintf("step %d %s v%d: %s", i, kmsg.NameForKey(s.Key), v, d))
		}
		all = append(all, diffs...)
		res.Steps = append(res.Steps, st)
	}
	if len(all) > 0 {
		res.Status = conformance.WireDiffer
		if reasons, ok := r.Known.Match(c.Name, knownVersion, all); ok {
			res.Status, res.Reasons = conformance.WireKnown, reasons
		}
	}
	return res
}

// sequence runs a case's steps against one target; answers are indexed like the steps.
func (r *Runner) sequence(ctx context.Context, t *conformance.Target, c *Case, names Names, version int16, kl, kf ranges) ([]answer, error) {
	out := make([]answer, len(c.Steps))
	saved := map[string]any{}
	var conn *Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for i := range c.Steps {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s := &c.Steps[i]
		if s.AwaitTopic != "" {
			topic, _ := templ(s.AwaitTopic, names, nil)
			if err := awaitTopic(ctx, t.Addr, topic.(string), r.Timeout); err != nil {
				return nil, fmt.Errorf("%s: case %s step %d: %v", t.Name, c.Name, i, err)
			}
			continue
		}
		v, _ := stepVersion(s, version, kl, kf)
		fields, err := Template(s.Request, names, func(n string) (any, bool) { x, ok := saved[n]; return x, ok })
		if err != nil {
			return nil, fmt.Errorf("case %s step %d: %v", c.Name, i, err)
		}
		req, err := BuildRequest(s.Key, v, fields)
		if err != nil {
			return nil, fmt.Errorf("case %s step %d: %v", c.Name, i, err)
		}
		if s.ClientID != "" { // this step alone, on a connection of its own
			id, err := templ(s.ClientID, names, nil)
			if err != nil {
				return nil, fmt.Errorf("case %s step %d: client_id: %v", c.Name, i, err)
			}
			if conn != nil {
				conn.Close()
			}
			if conn, err = DialAs(t.Addr, r.Timeout, fmt.Sprint(id)); err != nil {
				return nil, fmt.Errorf("%s: %v", t.Name, err)
			}
		} else if conn == nil {
			if conn, err = Dial(t.Addr, r.Timeout); err != nil {
				return nil, fmt.Errorf("%s: %v", t.Name, err)
			}
		}
		resp, err := conn.Do(req)
		for attempt := 1; s.Until != nil && err == nil && attempt < 100 && !settled(resp, s.Until, names.Own()); attempt++ {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			req, _ = BuildRequest(s.Key, v, fields)
			resp, err = conn.Do(req)
		}
		switch {
		case errors.Is(err, ErrClosed):
			out[i] = answer{tree: map[string]any{"$connection": "closed by the broker"}}
			conn.Close()
			conn = nil
			continue
		case err != nil:
			out[i] = answer{tree: map[string]any{"$error": errorKind(err)}, err: err.Error()}
			conn.Close()
			conn = nil
			continue
		}
		tree, err := Tree(resp)
		if err != nil {
			return nil, err
		}
		for name, p := range s.Save {
			val, ok := lookup(tree, p)
			if !ok {
				return nil, fmt.Errorf("%s: case %s step %d: save %s: no %s in the answer", t.Name, c.Name, i, name, p)
			}
			saved[name] = val
		}
		out[i] = answer{tree: Normalize(tree, c.Ignore, names.Own())}
		if s.ClientID != "" { // the next step is back on a klite-wire connection
			conn.Close()
			conn = nil
		}
	}
	return out, nil
}

// settled reports whether an answer meets a step's until condition.
func settled(resp kmsg.Response, u *Until, own string) bool {
	t, err := Tree(resp)
	if err != nil {
		return false
	}
	v, ok := lookup(keepOwn(t, own), u.Path)
	if !ok || v == nil {
		return false
	}
	if u.Equals == "" {
		return true
	}
	return strings.Trim(show(v), `"`) == u.Equals
}

func errorKind(err error) string {
	if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
		return "no answer (timeout)"
	}
	return "unreadable answer"
}

// lookup follows a dotted path ("Topics.0.TopicID") in a tree.
func lookup(t any, p string) (any, bool) {
	cur := t
	for _, part := range strings.Split(p, ".") {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[part]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return unNumber(cur), true
}

// unNumber turns json.Numbers back into plain numbers so a saved value re-encodes.
func unNumber(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = unNumber(e)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = unNumber(e)
		}
		return out
	default:
		return v
	}
}

// awaitTopic polls Metadata until every partition of topic has a leader (bounded by 20 tries
// and 20 x timeout in time).
func awaitTopic(ctx context.Context, addr, topic string, timeout time.Duration) error {
	conn, err := Dial(addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for attempt := 0; attempt < 100 && time.Now().Before(deadline); attempt++ {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := conn.Do(req)
		if err != nil {
			return err
		}
		m := resp.(*kmsg.MetadataResponse)
		ready := len(m.Topics) == 1 && m.Topics[0].ErrorCode == 0 && len(m.Topics[0].Partitions) > 0
		if ready {
			for _, p := range m.Topics[0].Partitions {
				if p.Leader < 0 || p.ErrorCode != 0 {
					ready = false
				}
			}
		}
		if ready {
			// Kafka lists a leader before the partition's log exists on the broker (Produce
			// then answers NOT_LEADER_OR_FOLLOWER): also wait for ListOffsets to succeed.
			lo := kmsg.NewPtrListOffsetsRequest()
			lo.SetVersion(7)
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = topic
			for _, p := range m.Topics[0].Partitions {
				lp := kmsg.NewListOffsetsRequestTopicPartition()
				lp.Partition, lp.Timestamp = p.Partition, -1
				lt.Partitions = append(lt.Partitions, lp)
			}
			lo.Topics = append(lo.Topics, lt)
			lresp, err := conn.Do(lo)
			if err != nil {
				return err
			}
			ok := true
			for _, t := range lresp.(*kmsg.ListOffsetsResponse).Topics {
				for _, p := range t.Partitions {
					if p.ErrorCode != 0 {
						ok = false
					}
				}
			}
			if ok {
				return nil
			}
		}
		last = fmt.Sprintf("%+v", m.Topics)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("topic %s has no leader for every partition after 20s (%s)", topic, last)
}
