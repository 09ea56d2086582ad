package wire

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestParseValidates(t *testing.T) {
	bad := map[string]string{
		"unknown API":      "cases: [{name: a, steps: [{api: NoSuchApi, request: {}}]}]",
		"unknown field":    "cases: [{name: a, steps: [{api: Metadata, request: {topicz: []}}]}]",
		"two all steps":    "cases: [{name: a, steps: [{api: Metadata, version: all}, {api: Fetch, version: all}]}]",
		"bad version":      "cases: [{name: a, steps: [{api: Metadata, version: newest}]}]",
		"bad name":         "cases: [{name: A_B, steps: [{api: Metadata}]}]",
		"double dash":      "cases: [{name: a--b, steps: [{api: Metadata}]}]",
		"unknown key":      "cases: [{name: a, stepz: []}]",
		"await with api":   "cases: [{name: a, steps: [{await_topic: t, api: Metadata}]}]",
		"bytes not base64": "cases: [{name: a, steps: [{api: Produce, request: {topics: [{partitions: [{records: '!!'}]}]}}]}]",
		"bad batch field":  "cases: [{name: a, steps: [{api: Produce, request: {topics: [{partitions: [{records: {$batch: {valuez: [x]}}}]}]}}]}]",
	}
	for name, y := range bad {
		if _, err := Parse([]byte(y)); err == nil {
			t.Errorf("%s: Parse accepted %s", name, y)
		}
	}
	cs, err := Parse([]byte(`
anchors:
  md: &md {topics: [{topic: "{{topic:a}}"}]}
cases:
  - name: ok-case
    steps:
      - {api: CreateTopics, compare: false, request: {topics: [{topic: "{{topic:a}}", num_partitions: 1}]}, save: {id: Topics.0.TopicID}}
      - await_topic: "{{topic:a}}"
      - {api: "3", version: all, from: 4, request: *md}
`))
	if err != nil {
		t.Fatal(err)
	}
	c := cs[0]
	if len(c.Steps) != 3 || c.Steps[0].Key != 19 || c.Steps[2].Key != 3 || c.Steps[2].From != 4 || c.Steps[0].Compared() || c.Steps[1].Compared() || !c.Steps[2].Compared() {
		t.Fatalf("parsed %+v", c.Steps)
	}
}

func TestTemplateNamesAndSaved(t *testing.T) {
	n := Names{Run: "r1", Case: "c", Variant: "v3"}
	saved := map[string]any{"id": []any{1, 2}}
	out, err := Template(map[string]any{
		"topics": []any{map[string]any{"topic": "{{topic:a}}.x", "topic_id": "$id"}},
		"group":  "{{group:g}}",
	}, n, func(k string) (any, bool) { v, ok := saved[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	tp := out["topics"].([]any)[0].(map[string]any)
	if tp["topic"] != "wire-r1-c--v3-topic-a.x" || out["group"] != "wire-r1-c--v3-group-g" {
		t.Fatalf("names: %v", out)
	}
	if id, _ := tp["topic_id"].([]any); len(id) != 2 {
		t.Fatalf("saved value not substituted: %v", tp["topic_id"])
	}
	if _, err := Template(map[string]any{"x": "$missing"}, n, func(string) (any, bool) { return nil, false }); err == nil {
		t.Fatal("an unset saved value was accepted")
	}
}

// TestBuildRequestDefaults: fields left out keep kmsg's defaults, also inside array elements.
func TestBuildRequestDefaults(t *testing.T) {
	req, err := BuildRequest(1, 12, map[string]any{
		"max_bytes": 0,
		"Topics":    []any{map[string]any{"topic": "t", "partitions": []any{map[string]any{"partition": 3}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := req.(*kmsg.FetchRequest)
	p := f.Topics[0].Partitions[0]
	if f.ReplicaID != -1 || f.MaxBytes != 0 || f.GetVersion() != 12 || p.Partition != 3 || p.CurrentLeaderEpoch != -1 || p.LogStartOffset != -1 || p.HighWatermark != 1<<63-1 {
		t.Fatalf("defaults lost: %+v %+v", f, p)
	}
	r2, err := BuildRequest(44, 1, map[string]any{"resources": []any{map[string]any{"resource_type": 2, "configs": []any{map[string]any{"name": "x", "op": 1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	rs := r2.(*kmsg.IncrementalAlterConfigsRequest).Resources[0]
	if rs.ResourceType != kmsg.ConfigResourceTypeTopic || rs.Configs[0].Op != kmsg.IncrementalAlterConfigOpDelete {
		t.Fatalf("enums by number: %+v", rs)
	}
}

// TestDownConversion: one request written at the highest version, encoded at every lower
// version, decodes back with the fields that version carries (Fetch switches from topic names
// to topic IDs at v13).
func TestDownConversion(t *testing.T) {
	fields := map[string]any{
		"max_wait_millis": 100, "isolation_level": 1, "max_bytes": 1000,
		"topics": []any{map[string]any{"topic": "t", "topic_id": "0123456789abcdef0123456789abcdef",
			"partitions": []any{map[string]any{"partition": 0, "fetch_offset": 7, "current_leader_epoch": 2}}}},
	}
	vs := Versions(1, 4, 17)
	if len(vs) != 14 || vs[0] != 4 || vs[13] != 17 {
		t.Fatalf("versions %v", vs)
	}
	for _, v := range vs {
		req, err := BuildRequest(1, v, fields)
		if err != nil {
			t.Fatal(err)
		}
		back := kmsg.NewPtrFetchRequest()
		back.SetVersion(v)
		if err := back.ReadFrom(req.AppendTo(nil)); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		tp := back.Topics[0]
		if v < 13 && (tp.Topic != "t" || tp.TopicID != [16]byte{}) || v >= 13 && (tp.Topic != "" || tp.TopicID[0] != 0x01) {
			t.Errorf("v%d: topic %q id %x", v, tp.Topic, tp.TopicID)
		}
		p := tp.Partitions[0]
		if p.FetchOffset != 7 || back.MaxWaitMillis != 100 {
			t.Errorf("v%d: offset %d wait %d", v, p.FetchOffset, back.MaxWaitMillis)
		}
		if want := int32(-1); v >= 9 {
			if p.CurrentLeaderEpoch != 2 {
				t.Errorf("v%d: current leader epoch %d, want 2", v, p.CurrentLeaderEpoch)
			}
		} else if p.CurrentLeaderEpoch != want {
			t.Errorf("v%d: current leader epoch %d survived a version without it", v, p.CurrentLeaderEpoch)
		}
	}
	// klite's range is clipped to what kmsg can encode.
	if vs := Versions(18, 0, 9); len(vs) != int(kmsg.NewPtrApiVersionsRequest().MaxVersion())+1 {
		t.Fatalf("ApiVersions versions %v", vs)
	}
}

func TestBuildBatch(t *testing.T) {
	raw, err := buildBatch(map[string]any{"values": []any{"a", "bc"}, "base_offset": 5})
	if err != nil {
		t.Fatal(err)
	}
	var b kmsg.RecordBatch
	if err := b.ReadFrom(raw); err != nil {
		t.Fatal(err)
	}
	if b.FirstOffset != 5 || b.NumRecords != 2 || b.LastOffsetDelta != 1 || b.Magic != 2 || int(b.Length) != len(raw)-12 {
		t.Fatalf("batch %+v", b)
	}
	if crc := crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)); uint32(b.CRC) != crc {
		t.Fatalf("crc %x, want %x", uint32(b.CRC), crc)
	}
	dec := decodeBatches(base64.StdEncoding.EncodeToString(raw)).([]any)
	vals := dec[0].(map[string]any)["Values"].([]any)
	if len(vals) != 2 || vals[0] != "a" || vals[1] != "bc" {
		t.Fatalf("decoded %v", dec)
	}
	short, _ := buildBatch(map[string]any{"length_adjust": -3})
	if got := int32(binary.BigEndian.Uint32(short[8:])); int(got) != len(short)-12-3 {
		t.Fatalf("length_adjust: %d", got)
	}
	// Unless a case sets one, the timestamp is recent: records older than the default
	// retention.ms (7 days) are deleted within a second on both targets.
	if age := time.Now().UnixMilli() - b.FirstTimestamp; age < 0 || age > int64(time.Hour/time.Millisecond) || b.MaxTimestamp != b.FirstTimestamp {
		t.Fatalf("default batch timestamps %d/%d, %d ms old", b.FirstTimestamp, b.MaxTimestamp, age)
	}
}

func tree(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNormalize(t *testing.T) {
	in := tree(t, `{"ThrottleMillis": 5, "ClusterID": "x", "ControllerID": 1, "ErrorMessage": "m",
		"Brokers": [{"NodeID": 1, "Host": "h", "Port": 9}],
		"Topics": [
			{"Topic": "b", "TopicID": [1,2,3], "Partitions": [{"Partition": 1, "Leader": 0, "Replicas": [0]}, {"Partition": 0, "Leader": -1, "Replicas": []}]},
			{"Topic": "a", "TopicID": [0,0,0], "Partitions": [], "LogAppendTime": -1, "ProducerID": 0}
		]}`)
	got, _ := json.Marshal(Normalize(in, []string{"Topics.*.Partitions.*.Replicas"}, ""))
	want := `{"Brokers":[{"NodeID":"\u003cnode\u003e"}],"ControllerID":"\u003cnode\u003e","Topics":[` +
		`{"LogAppendTime":-1,"Partitions":[],"ProducerID":"\u003cpid\u003e","Topic":"a","TopicID":"\u003czero-uuid\u003e"},` +
		`{"Partitions":[{"Leader":"\u003cnode\u003e","Partition":0},{"Leader":"\u003cnode\u003e","Partition":1}],"Topic":"b","TopicID":"\u003cuuid\u003e"}]}`
	// Leader -1 is "no leader" and must stay visible.
	want = strings.Replace(want, `{"Leader":"\u003cnode\u003e","Partition":0}`, `{"Leader":-1,"Partition":0}`, 1)
	if string(got) != want {
		t.Fatalf("normalized\n got %s\nwant %s", got, want)
	}
}

func TestDiff(t *testing.T) {
	a := tree(t, `{"ErrorCode": 0, "Topics": [{"Topic": "a", "ErrorCode": 0}, {"Topic": "b.c", "ErrorCode": 0}], "List": [1, 2]}`)
	b := tree(t, `{"ErrorCode": 0, "Topics": [{"Topic": "b.c", "ErrorCode": 3}, {"Topic": "z", "ErrorCode": 0}], "List": [1], "Extra": true}`)
	var got []string
	for _, d := range Diff(Normalize(a, nil, ""), Normalize(b, nil, "")) {
		got = append(got, d.String())
	}
	want := []string{
		"Extra: klite=(absent) kafka=true",
		"List.1: klite=2 kafka=(absent)",
		`Topics.{Topic=a}: klite={"ErrorCode":0,"Topic":"a"} kafka=(absent)`,
		"Topics.{Topic=b_c}.ErrorCode: klite=0 kafka=3",
		`Topics.{Topic=z}: klite=(absent) kafka={"ErrorCode":0,"Topic":"z"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diff\n got %s\nwant %s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if GlobPath("Topics.{Topic=b_c}.Partitions.3.ErrorCode") != "Topics.*.Partitions.*.ErrorCode" {
		t.Fatal(GlobPath("Topics.{Topic=b_c}.Partitions.3.ErrorCode"))
	}
	if d := Diff(Normalize(a, nil, ""), Normalize(a, nil, "")); len(d) != 0 {
		t.Fatalf("equal trees differ: %v", d)
	}
}

func TestKnownMatch(t *testing.T) {
	k, err := ParseKnown([]byte(`
diffs:
  - {case: "fetch-*", versions: "4-6", paths: ["Topics.*.Partitions.*.ErrorCode"], reason: r1}
  - {case: api-versions, paths: [ApiKeys], reason: r2}
  - {case: never, reason: r3}
`))
	if err != nil {
		t.Fatal(err)
	}
	ec := []Difference{{Path: "Topics.{Topic=a}.Partitions.{Partition=0}.ErrorCode"}}
	if r, ok := k.Match("fetch-x", 5, ec); !ok || len(r) != 1 || r[0] != "r1" {
		t.Fatalf("in range: %v %v", r, ok)
	}
	if _, ok := k.Match("fetch-x", -1, ec); ok {
		t.Fatal("a version-scoped declaration matched a case without versions")
	}
	if _, ok := k.Match("fetch-x", 7, ec); ok {
		t.Fatal("matched outside the declared versions")
	}
	if _, ok := k.Match("fetch-x", 5, append(ec, Difference{Path: "Topics.{Topic=a}.ErrorCode"})); ok {
		t.Fatal("an undeclared path was covered")
	}
	if _, ok := k.Match("api-versions", 2, []Difference{{Path: "ApiKeys.{ApiKey=41}.MaxVersion"}}); !ok {
		t.Fatal("a declared path does not cover what is under it")
	}
	if u := k.Unused(); len(u) != 1 || u[0].Case != "never" {
		t.Fatalf("unused %v", u)
	}
	for _, y := range []string{"diffs: [{case: a}]", "diffs: [{case: a, reason: r, versions: 5-2}]", "diffs: [{case: a, reason: r, nope: 1}]"} {
		if _, err := ParseKnown([]byte(y)); err == nil {
			t.Errorf("accepted %s", y)
		}
	}
}

// TestDecodeResponse: flexible response headers are skipped except for ApiVersions, and an
// ApiVersions UNSUPPORTED_VERSION answer is read at v0 whatever version was asked.
func TestDecodeResponse(t *testing.T) {
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	resp := kmsg.NewPtrMetadataResponse()
	resp.SetVersion(12)
	resp.ThrottleMillis = 7
	body := kbin.AppendInt32(nil, 9)
	body = append(body, 0) // header tags
	body = resp.AppendTo(body)
	got, err := DecodeResponse(md, body, 9)
	if err != nil || got.(*kmsg.MetadataResponse).ThrottleMillis != 7 {
		t.Fatalf("metadata: %v %+v", err, got)
	}
	if _, err := DecodeResponse(md, body, 10); err == nil {
		t.Fatal("wrong correlation id accepted")
	}
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(5)
	ar := kmsg.NewPtrApiVersionsResponse()
	ar.SetVersion(0)
	ar.ErrorCode = 35
	ar.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: 0, MaxVersion: 4}}
	got, err = DecodeResponse(av, ar.AppendTo(kbin.AppendInt32(nil, 1)), 1)
	if err != nil {
		t.Fatal(err)
	}
	if g := got.(*kmsg.ApiVersionsResponse); g.ErrorCode != 35 || len(g.ApiKeys) != 1 || g.ApiKeys[0].MaxVersion != 4 {
		t.Fatalf("api versions: %+v", g)
	}
}

func TestNormalizeKeepsOwnNames(t *testing.T) {
	own := Names{Run: "r1", Case: "list-groups", Variant: "v2"}
	other := Names{Run: "r1", Case: "list-groups-x"}
	in := map[string]any{"Groups": []any{
		map[string]any{"Group": own.name("group", "g")},
		map[string]any{"Group": other.name("group", "g")},
		map[string]any{"Group": "wire-old-run-c--group-g"},
		map[string]any{"Group": "not-from-the-harness"},
	}}
	got := Normalize(in, nil, own.Own()).(map[string]any)["Groups"].([]any)
	if len(got) != 2 || got[0].(map[string]any)["Group"] != "not-from-the-harness" || got[1].(map[string]any)["Group"] != "wire-r1-list-groups--v2-group-g" {
		t.Fatalf("kept %v", got)
	}
}

// TestNormalizeSessionID: a fetch session ID is random (masked); 0, "no session", stays.
func TestNormalizeSessionID(t *testing.T) {
	for in, want := range map[string]string{`{"SessionID": 56592797}`: `{"SessionID":"\u003csession\u003e"}`, `{"SessionID": 0}`: `{"SessionID":0}`} {
		got, _ := json.Marshal(Normalize(tree(t, in), nil, ""))
		if string(got) != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}

// TestNormalizeDropsHarnessScramUser: the bootstrap SCRAM user of the Kafka target is the
// harness's, and a list left with none of the case's elements reads as null (the empty array
// as kmsg decodes it), so klite's empty answer compares equal.
func TestNormalizeDropsHarnessScramUser(t *testing.T) {
	own := Names{Run: "r1", Case: "scram"}
	in := map[string]any{"Results": []any{
		map[string]any{"User": "admin", "CredentialInfos": []any{}},
		map[string]any{"User": own.name("user", "u"), "CredentialInfos": []any{}},
	}}
	got := Normalize(in, nil, own.Own()).(map[string]any)["Results"].([]any)
	if len(got) != 1 || got[0].(map[string]any)["User"] != own.name("user", "u") {
		t.Fatalf("kept %v", got)
	}
	only := map[string]any{"Results": []any{map[string]any{"User": "admin", "CredentialInfos": []any{}}},
		"TransactionStates": []any{map[string]any{"TransactionalID": "wire-other-run-t"}}}
	n := Normalize(only, nil, own.Own()).(map[string]any)
	if n["Results"] != nil || n["TransactionStates"] != nil {
		t.Fatalf("lists of only foreign elements: %v, want null", n)
	}
	if d := Diff(n, Normalize(map[string]any{"Results": nil, "TransactionStates": nil}, nil, own.Own())); len(d) != 0 {
		t.Fatalf("differs from an empty answer: %v", d)
	}
}

// TestFuzzCasesReproducible: one seed gives the same requests, every one builds, and only APIs
// both targets advertise are drawn.
func TestFuzzCasesReproducible(t *testing.T) {
	kl := map[int16][2]int16{1: {4, 17}, 19: {2, 7}, 44: {0, 1}, 99: {0, 0}}
	kf := map[int16][2]int16{1: {4, 17}, 19: {2, 7}, 44: {0, 1}}
	a := FuzzCases(7, 60, "r", kl, kf)
	b := FuzzCases(7, 60, "r", kl, kf)
	if len(a) != 60 || len(b) != 60 {
		t.Fatalf("%d / %d cases", len(a), len(b))
	}
	for i := range a {
		ja, _ := json.Marshal(a[i].Steps[0].Request)
		jb, _ := json.Marshal(b[i].Steps[0].Request)
		if string(ja) != string(jb) || a[i].Steps[0].Version != b[i].Steps[0].Version {
			t.Fatalf("case %d differs between runs of one seed", i)
		}
		if changesInternalTopic(a[i].Steps[0].Key, a[i].Steps[0].Request) {
			t.Fatalf("case %d changes __consumer_offsets: %s", i, ja)
		}
		s := a[i].Steps[0]
		if s.Key != 1 && s.Key != 19 && s.Key != 44 {
			t.Fatalf("drew API %d", s.Key)
		}
		if to, ok := s.Request["TimeoutMillis"]; ok && to != fuzzTimeoutMillis {
			t.Fatalf("case %d: TimeoutMillis %v, want %d (tiny ones only show Kafka's timing)", i, to, fuzzTimeoutMillis)
		}
		var v int16
		fmt.Sscan(s.Version, &v)
		if _, err := BuildRequest(s.Key, v, s.Request); err != nil {
			t.Fatalf("case %d (%s v%d) does not build: %v", i, a[i].Name, v, err)
		}
	}
	c := FuzzCases(8, 60, "r", kl, kf)
	ja, _ := json.Marshal(a[0].Steps[0].Request)
	jc, _ := json.Marshal(c[0].Steps[0].Request)
	if string(ja) == string(jc) && a[1].Steps[0].Version == c[1].Steps[0].Version {
		t.Fatal("two seeds gave the same first requests")
	}
}

// TestKnownForFuzz: declarations marked fuzz cover the fuzzed requests of their case's API at
// the request's own version; the others do not apply in fuzz mode.
func TestKnownForFuzz(t *testing.T) {
	k, err := ParseKnown([]byte(`
diffs:
  - {case: "produce", versions: "0-2", fuzz: true, reason: r1}
  - {case: "api-*", fuzz: true, paths: [ApiKeys], reason: r2}
  - {case: "produce", paths: [Topics], reason: r3}
`))
	if err != nil {
		t.Fatal(err)
	}
	f := false
	corpus := []*Case{
		{Name: "produce", Steps: []Step{{Key: 19, Compare: &f}, {Key: 0}}},
		{Name: "api-versions", Steps: []Step{{Key: 18}}},
		{Name: "api-other", Steps: []Step{{Key: 18}}},
	}
	fk, err := k.ForFuzz(corpus)
	if err != nil {
		t.Fatal(err)
	}
	if len(fk.List) != 2 || fk.List[0].Case != "fuzz-*-produce" || fk.List[1].Case != "fuzz-*-apiversions" {
		t.Fatalf("fuzz declarations %+v", fk.List)
	}
	closed := []Difference{{Path: "$connection"}}
	if _, ok := fk.Match("fuzz-12-produce", 1, closed); !ok {
		t.Fatal("Produce v1 not covered")
	}
	if _, ok := fk.Match("fuzz-12-produce", 3, closed); ok {
		t.Fatal("Produce v3 covered outside the declared versions")
	}
	if _, ok := fk.Match("fuzz-3-apiversions", 3, []Difference{{Path: "ApiKeys.{ApiKey=27}"}}); !ok {
		t.Fatal("ApiVersions ApiKeys not covered")
	}
	if _, ok := fk.Match("fuzz-4-produce", 5, []Difference{{Path: "Topics"}}); ok {
		t.Fatal("a declaration not marked fuzz applied")
	}
	corpus = append(corpus, &Case{Name: "produce-x", Steps: []Step{{Key: 0}, {Key: 1}}})
	k2, _ := ParseKnown([]byte(`diffs: [{case: "produce*", fuzz: true, reason: r}]`))
	if _, err := k2.ForFuzz(corpus); err == nil {
		t.Fatal("a fuzz declaration over cases of two APIs was accepted")
	}
}
