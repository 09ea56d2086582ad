package wire

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"reflect"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BuildRequest turns a case's JSON-ish request fields into a kmsg request at version v.
//
// Field names are kmsg's Go field names in any case, underscores ignored (`max_bytes`,
// `MaxBytes` and `maxbytes` all name FetchRequest.MaxBytes). A field left out keeps kmsg's
// default (kmsg's Default(), e.g. Fetch's ReplicaID -1 or a partition's CurrentLeaderEpoch -1),
// including inside array elements. A []byte field takes base64 or a {"$batch": {...}} record
// batch (see buildBatch). Unknown field names are an error, so a typo cannot silently send a
// default.
func BuildRequest(key, v int16, fields map[string]any) (kmsg.Request, error) {
	req := kmsg.RequestForKey(key)
	if req == nil {
		return nil, fmt.Errorf("no kmsg request for API key %d", key)
	}
	filled, err := fill(reflect.TypeOf(req).Elem(), fields, kmsg.NameForKey(key))
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(filled)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, req); err != nil {
		return nil, fmt.Errorf("%s: %v", kmsg.NameForKey(key), err)
	}
	req.SetVersion(v)
	return req, nil
}

var (
	bytesType       = reflect.TypeOf([]byte(nil))
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case float64:
		return int64(x), x == float64(int64(x))
	}
	return 0, false
}

// fill walks the user's value along the Go type, resolving field names and laying the user's
// values over kmsg's defaults.
func fill(t reflect.Type, user any, path string) (any, error) {
	switch {
	case t == bytesType:
		return fillBytes(user, path)
	case t.Kind() == reflect.Pointer:
		if user == nil {
			return nil, nil
		}
		return fill(t.Elem(), user, path)
	case t.Kind() == reflect.Struct && t.PkgPath() == "github.com/twmb/franz-go/pkg/kmsg" && t.Name() != "Tags":
		m, ok := user.(map[string]any)
		if !ok && user != nil {
			return nil, fmt.Errorf("%s: want an object, got %T", path, user)
		}
		out, err := defaults(t)
		if err != nil {
			return nil, err
		}
		for k, val := range m {
			f, ok := fieldByLooseName(t, k)
			if !ok {
				return nil, fmt.Errorf("%s: no field %q in kmsg.%s", path, k, t.Name())
			}
			fv, err := fill(f.Type, val, path+"."+f.Name)
			if err != nil {
				return nil, err
			}
			out[f.Name] = fv
		}
		return out, nil
	case t.Kind() == reflect.Slice:
		if user == nil {
			return nil, nil
		}
		arr, ok := user.([]any)
		if !ok {
			return nil, fmt.Errorf("%s: want an array, got %T", path, user)
		}
		out := make([]any, len(arr))
		for i, e := range arr {
			fv, err := fill(t.Elem(), e, fmt.Sprintf("%s.%d", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = fv
		}
		return out, nil
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64 && reflect.PointerTo(t).Implements(textUnmarshaler):
		// kmsg enums (ConfigResourceType, IncrementalAlterConfigOp) read text in JSON; a case
		// may give the number or the name.
		n, ok := toInt(user)
		if !ok {
			return user, nil
		}
		ev := reflect.New(t).Elem()
		ev.SetInt(n)
		txt, err := ev.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		return string(txt), nil
	case t.Kind() == reflect.Array && t.Elem().Kind() == reflect.Uint8:
		// A UUID: an array of 16 numbers (as saved from a response) or a string of 32 hex digits.
		if s, ok := user.(string); ok {
			id, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
			if err != nil || len(id) != 16 {
				return nil, fmt.Errorf("%s: bad UUID %q: want 32 hex digits", path, s)
			}
			b := make([]any, 16)
			for i := range id {
				b[i] = id[i]
			}
			return b, nil
		}
		return user, nil
	default:
		return user, nil
	}
}

// defaults is kmsg's defaulted value of a struct type as a JSON object.
func defaults(t reflect.Type) (map[string]any, error) {
	p := reflect.New(t)
	if d, ok := p.Interface().(interface{ Default() }); ok {
		d.Default()
	}
	raw, err := json.Marshal(p.Interface())
	if err != nil {
		return nil, err
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // MaxInt64 defaults (Fetch's HighWatermark) do not survive a float64
	return out, dec.Decode(&out)
}

func looseName(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }

func fieldByLooseName(t reflect.Type, name string) (reflect.StructField, bool) {
	want := looseName(name)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.IsExported() && looseName(f.Name) == want {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fillBytes(user any, path string) (any, error) {
	switch u := user.(type) {
	case nil:
		return nil, nil
	case string:
		if _, err := base64.StdEncoding.DecodeString(u); err != nil {
			return nil, fmt.Errorf("%s: bytes must be base64 or {$batch: ...}: %v", path, err)
		}
		return u, nil
	case map[string]any:
		spec, ok := u["$batch"]
		if !ok || len(u) != 1 {
			return nil, fmt.Errorf("%s: the only object a bytes field takes is {$batch: {...}}", path)
		}
		sm, _ := spec.(map[string]any)
		b, err := buildBatch(sm)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		return base64.StdEncoding.EncodeToString(b), nil
	default:
		return nil, fmt.Errorf("%s: bytes must be base64 or {$batch: ...}, got %T", path, user)
	}
}

// defaultBatchTimestamp is a batch's timestamp unless the case sets one: this run's start. A
// fixed date would fall out of the default retention.ms (7 days) as time passes, and both
// targets run a retention check every second (run-kafka.sh, target.go), so the records would
// vanish mid-case. Answers mask timestamps, so the value never shows in a comparison.
var defaultBatchTimestamp = time.Now().UnixMilli()

// BatchSpec describes a v2 record batch for Produce requests. Every field has a valid default,
// so a case writes only what it wants to get wrong.
type BatchSpec struct {
	BaseOffset      int64    `json:"base_offset"`
	Magic           int8     `json:"magic"`
	Attributes      int16    `json:"attributes"`
	ProducerID      int64    `json:"producer_id"`
	ProducerEpoch   int16    `json:"producer_epoch"`
	BaseSequence    int32    `json:"base_sequence"`
	Timestamp       int64    `json:"timestamp"`
	Values          []string `json:"values"`
	LengthAdjust    int32    `json:"length_adjust"` // added to the batch's Length field
	LastOffsetDelta *int32   `json:"last_offset_delta"`
}

// buildBatch encodes a record batch (magic 2 layout, CRC-32C over attributes..end):
//
//	baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 | crc uint32 |
//	attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64 |
//	producerId int64 | producerEpoch int16 | baseSequence int32 | records [count int32, Record...]
func buildBatch(spec map[string]any) ([]byte, error) {
	s := BatchSpec{Magic: 2, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Timestamp: defaultBatchTimestamp, Values: []string{"v"}}
	raw, _ := json.Marshal(spec)
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("$batch: %v", err)
	}
	var recs []byte
	for i, v := range s.Values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		enc := r.AppendTo(nil)
		r.Length = int32(len(enc) - 1) // Length excludes its own varint, 1 byte while it was 0
		recs = r.AppendTo(recs)
	}
	lod := int32(len(s.Values) - 1)
	if s.LastOffsetDelta != nil {
		lod = *s.LastOffsetDelta
	}
	b := kmsg.RecordBatch{
		FirstOffset: s.BaseOffset, Magic: s.Magic, Attributes: s.Attributes, LastOffsetDelta: lod,
		FirstTimestamp: s.Timestamp, MaxTimestamp: s.Timestamp, ProducerID: s.ProducerID,
		ProducerEpoch: s.ProducerEpoch, FirstSequence: s.BaseSequence, NumRecords: int32(len(s.Values)),
		Records: recs,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(int32(len(out)-12)+s.LengthAdjust))
	crc := crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(out[17:], crc)
	return out, nil
}
