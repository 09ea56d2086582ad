package wire

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fuzz mode: random but valid-to-encode requests from the kmsg definitions, the same bytes to
// both targets (one seed gives one sequence), compared like corpus cases. Each request becomes
// a one-step Case whose fields are printed on a difference, ready to be pasted into the corpus.
//
// Values are drawn from small pools of interesting numbers and names (this run's own topic
// names, an internal topic, a colliding name, the empty string) rather than uniformly, so most
// requests reach the broker's logic instead of dying at the first validation. Sizes that would
// make a broker allocate without bound (partition counts, replication factors) and waits are
// kept small; request time-outs are fixed at 10 s (tiny ones only show Kafka's timing).

// FuzzCases generates n one-step cases for the APIs both targets advertise (kl, kf: key ->
// [min, max]). The same seed, run and APIs give the same cases.
func FuzzCases(seed int64, n int, run string, kl, kf map[int16][2]int16) []*Case {
	rnd := rand.New(rand.NewSource(seed))
	var keys []int16
	for k := int16(0); k < 100; k++ {
		a, ok1 := kl[k]
		b, ok2 := kf[k]
		if ok1 && ok2 && kmsg.RequestForKey(k) != nil && a[0] <= b[1] && b[0] <= a[1] {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	var out []*Case
	for i := 0; len(out) < n && i < 4*n; i++ { // bounded: a few drawn requests are left out
		k := keys[rnd.Intn(len(keys))]
		lo, hi := max(kl[k][0], kf[k][0]), min(kl[k][1], kf[k][1], kmsg.RequestForKey(k).MaxVersion())
		v := lo + int16(rnd.Intn(int(hi-lo)+1))
		name := fmt.Sprintf("fuzz-%d-%s", i, strings.ToLower(kmsg.NameForKey(k)))
		g := &gen{rnd: rnd, names: Names{Run: run, Case: name}}
		req := kmsg.RequestForKey(k)
		g.fill(reflect.ValueOf(req).Elem(), "")
		fields, err := toFields(req)
		if err != nil {
			continue
		}
		if changesInternalTopic(k, fields) {
			continue
		}
		out = append(out, &Case{Name: name, File: "(fuzz)", Description: fmt.Sprintf("seed %d #%d", seed, i), KnownVersion: &v,
			Steps: []Step{{API: kmsg.NameForKey(k), Key: k, Version: fmt.Sprint(v), Request: fields}}})
	}
	return out
}

// FuzzCaseGlob is the case glob matching every fuzz case of one API (fuzz case names end with
// the API's lower-case name).
func FuzzCaseGlob(key int16) string { return "fuzz-*-" + strings.ToLower(kmsg.NameForKey(key)) }

// FuzzWarmup is a setup case that waits until both targets' group and transaction coordinators
// answer (a fresh Kafka creates __consumer_offsets and __transaction_state on first use and
// answers NOT_COORDINATOR until they are loaded), so fuzzed group and transaction requests
// meet a ready coordinator.
func FuzzWarmup() *Case {
	f := false
	return &Case{Name: "fuzz-warmup", File: "(fuzz)", Steps: []Step{
		{API: "FindCoordinator", Key: 10, Version: "3", Compare: &f, Until: &Until{Path: "ErrorCode", Equals: "0"},
			Request: map[string]any{"coordinator_key": "{{group:g}}"}},
		{API: "DescribeGroups", Key: 15, Version: "5", Compare: &f, Until: &Until{Path: "Groups.0.ErrorCode", Equals: "0"},
			Request: map[string]any{"groups": []any{"{{group:g}}"}}},
		{API: "FindCoordinator", Key: 10, Version: "3", Compare: &f, Until: &Until{Path: "ErrorCode", Equals: "0"},
			Request: map[string]any{"coordinator_key": "{{txn:t}}", "coordinator_type": 1}},
		{API: "InitProducerID", Key: 22, Compare: &f, Until: &Until{Path: "ErrorCode", Equals: "0"},
			Request: map[string]any{"transactional_id": "{{txn:t}}", "transaction_timeout_millis": 60000}},
	}}
}

// toFields turns a kmsg request into the JSON-ish fields a case carries.
func toFields(req kmsg.Request) (map[string]any, error) {
	raw, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	delete(m, "Version")
	return numbersToInts(m).(map[string]any), nil
}

func numbersToInts(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = numbersToInts(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbersToInts(x[k])
		}
	}
	return v
}

type gen struct {
	rnd   *rand.Rand
	names Names
}

var (
	fuzzInts = []int64{-1, 0, 0, 1, 1, 2, 3, 5, 100, -2, 1 << 31}
	// fuzzTimeoutMillis is every request's TimeoutMillis: long enough for Kafka's controller.
	fuzzTimeoutMillis = int64(10000)
	// small keeps fields that size an allocation or a wait small.
	smallFields = set("NumPartitions", "ReplicationFactor", "Count", "TimeoutMillis", "MaxWaitMillis",
		"SessionTimeoutMillis", "RebalanceTimeoutMillis", "TransactionTimeoutMillis", "MaxNumOffsets",
		"DurationFilterMillis", "RetentionTimeMillis")
)

func (g *gen) name() string {
	switch g.rnd.Intn(8) {
	case 0:
		return ""
	case 1:
		return "__consumer_offsets"
	case 2:
		return g.names.name("topic", "x") + ".y"
	case 3:
		return g.names.name("topic", "b")
	default:
		return g.names.name("topic", "a")
	}
}

func (g *gen) fill(v reflect.Value, field string) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(kmsg.Tags{}) {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if f := v.Type().Field(i); f.IsExported() && f.Name != "Version" {
				g.fill(v.Field(i), f.Name)
			}
		}
	case reflect.Pointer:
		if g.rnd.Intn(4) == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		p := reflect.New(v.Type().Elem())
		g.fill(p.Elem(), field)
		v.Set(p)
	case reflect.Slice:
		if v.Type() == bytesType {
			switch g.rnd.Intn(3) {
			case 0:
				v.SetBytes(nil)
			case 1:
				b, _ := buildBatch(map[string]any{"values": []any{"f"}, "base_offset": int64(g.rnd.Intn(2))})
				v.SetBytes(b)
			default:
				b := make([]byte, g.rnd.Intn(24))
				g.rnd.Read(b)
				v.SetBytes(b)
			}
			return
		}
		n := g.rnd.Intn(3)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n; i++ {
			g.fill(s.Index(i), field)
		}
		v.Set(s)
	case reflect.Array:
		if g.rnd.Intn(2) == 0 {
			for i := 0; i < v.Len(); i++ {
				v.Index(i).SetUint(uint64(g.rnd.Intn(256)))
			}
		}
	case reflect.String:
		v.SetString(g.name())
	case reflect.Bool:
		v.SetBool(g.rnd.Intn(2) == 0)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if reflect.PointerTo(v.Type()).Implements(textUnmarshaler) {
			// kmsg enums travel as their names: pick a value whose name reads back
			start := g.rnd.Intn(16)
			for try := 0; try < 16; try++ {
				v.SetInt(int64((start + try) % 16))
				txt, err := v.Interface().(encoding.TextMarshaler).MarshalText()
				p := reflect.New(v.Type())
				if err == nil && p.Interface().(encoding.TextUnmarshaler).UnmarshalText(txt) == nil {
					return
				}
			}
			return
		}
		n := fuzzInts[g.rnd.Intn(len(fuzzInts))]
		if smallFields[field] && n > 100 {
			n = 3
		}
		if field == "TimeoutMillis" {
			// Kafka answers REQUEST_TIMED_OUT when its controller (topic and partition
			// admin) or a purgatory does not finish within a tiny or negative time-out,
			// where klite, with nothing to wait for, answers: a difference of timing only.
			// (The draw above is still made, so a seed gives the same other fields.)
			n = fuzzTimeoutMillis
		}
		if v.OverflowInt(n) {
			n = -1
		}
		v.SetInt(n)
	}
}

// changesInternalTopic reports a request that would delete, grow, truncate or reconfigure
// __consumer_offsets: Kafka 4.0 lets DeleteTopics, CreatePartitions, DeleteRecords and the
// alter-configs APIs do so, and its group coordinator answers NOT_COORDINATOR for the rest of
// the run, drowning every later group request's comparison. Such requests are left out.
func changesInternalTopic(key int16, fields map[string]any) bool {
	switch key {
	case 20, 21, 33, 37, 44, 45: // DeleteTopics, DeleteRecords, AlterConfigs, CreatePartitions, IncrementalAlterConfigs, AlterPartitionAssignments
	default:
		return false
	}
	js, _ := json.Marshal(fields)
	return bytes.Contains(js, []byte("__consumer_offsets"))
}
