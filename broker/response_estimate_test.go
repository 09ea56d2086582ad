package broker

import (
	"bytes"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/klite/klite/broker/server"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The Metadata estimate is about the memory a built answer holds (the kmsg structs the server
// keeps until it encodes them), and small answers are not estimated.
func TestMetadataResponseEstimate(t *testing.T) {
	tb := startBroker(t, t.TempDir())
	createTopic(t, tb.admin(t), "small", 1, nil)
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("small")
	req.Topics = append(req.Topics, mt)
	h := &server.Header{Key: 3, Version: 12}
	if est := tb.ResponseEstimate(h, req); est != 0 {
		t.Fatalf("estimate for one small topic %d, want 0", est)
	}
	createTopic(t, tb.admin(t), "big", 10000, nil)
	all := kmsg.NewPtrMetadataRequest()
	all.Version = 12
	all.Topics = nil
	est := tb.ResponseEstimate(h, all)
	// What building the answer allocates, and what the built answer holds: its structs,
	// slices and strings walked one by one (the process heap moves with the broker's own
	// background work, so its difference is no measure of one answer).
	var before, after runtime.MemStats
	var resp kmsg.Response
	runtime.ReadMemStats(&before)
	handleMetadata(tb.Broker, &ReqCtx{}, all, func(r kmsg.Response) { resp = r })
	runtime.ReadMemStats(&after)
	built := int64(after.TotalAlloc - before.TotalAlloc)
	if resp == nil || len(resp.(*kmsg.MetadataResponse).Topics) != 2 {
		t.Fatalf("metadata answer %+v", resp)
	}
	held := heldBytes(reflect.ValueOf(resp), map[uintptr]bool{})
	t.Logf("10,000 partitions: estimate %d bytes, answer holds %d bytes (%d allocated building it), encoded %d bytes",
		est, held, built, len(resp.AppendTo(nil)))
	if held < 10000*40 {
		t.Fatalf("the walk found %d bytes in an answer with 10,000 partitions", held)
	}
	if est < held/2 || est > 4*held {
		t.Fatalf("estimate %d bytes far from the %d bytes the built answer holds", est, held)
	}
}

// Many connections fetch big answers and read nothing. Before, Fetch answers were bounded per
// connection only: every connection had its answer built, and those waiting for the response
// budget were held outside any budget. Now each Fetch reserves the record bytes it can read
// (then the bytes its built answer holds) in the build budget before it is dispatched, so
// connections wait for the budget instead of building: built answers and encoded ones each
// stay within the limit, and everything is given back once the connections go.
func TestFetchAnswersReservedInBuildBudget(t *testing.T) {
	const limit = 6 << 20 // one answer of 4 MiB at a time
	tb := startBroker(t, t.TempDir(), func(c *Config) { c.MaxResponseMemoryBytes = limit })
	createTopic(t, tb.admin(t), "big", 1, nil)
	cl := tb.client(t)
	for i := range 4 {
		r := kmsg.Record{Value: bytes.Repeat([]byte{byte('a' + i)}, 1000<<10)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		if rp := rawProduce(t, cl, "big", singleRecordBatch(r.AppendTo(nil))); rp.ErrorCode != 0 {
			t.Fatalf("produce: error %d", rp.ErrorCode)
		}
	}
	fetchReq := func() *kmsg.FetchRequest {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 12
		req.ReplicaID = -1
		req.MaxBytes = 4 << 20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "big"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.PartitionMaxBytes = 4 << 20
		rp.CurrentLeaderEpoch = -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	fetch := func(corr int32) []byte { return frame(fetchReq(), corr) }
	est := tb.ResponseEstimate(&server.Header{Key: 1, Version: 12}, fetchReq())
	if est < 4*1000<<10 || est > 4<<20+64<<10 {
		t.Fatalf("estimate for a 4 MiB fetch %d", est)
	}
	const conns = 10
	var cs []interface{ Close() error }
	for range conns {
		c := dialRaw(t, tb.addr)
		c.(interface{ SetReadBuffer(int) error }).SetReadBuffer(4096)
		if _, err := c.Write(append(fetch(1), fetch(2)...)); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	awaitCond(t, "a fetch waiting for build budget", func() bool { return tb.srv.Stats().BuildWaits > 0 })
	st := tb.srv.Stats()
	if st.BuildBytesPeak > limit || st.BuildBytesPeak < 4*1000<<10 {
		t.Fatalf("build budget peak %d, want 4 MiB..%d", st.BuildBytesPeak, limit)
	}
	if st.ResponseBytesPeak > limit {
		t.Fatalf("response budget peak %d over %d", st.ResponseBytesPeak, limit)
	}
	for _, c := range cs {
		c.Close()
	}
	awaitCond(t, "the budgets given back", func() bool {
		st := tb.srv.Stats()
		return st.BuildBytes == 0 && st.ResponseBytes == 0
	})
}

// heldBytes is the memory reachable from v that v does not hold inline: pointed-to values,
// slice backing arrays (by capacity) and string bytes, each pointer counted once.
func heldBytes(v reflect.Value, seen map[uintptr]bool) int64 {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return 0
		}
		seen[v.Pointer()] = true
		return int64(v.Type().Elem().Size()) + heldBytes(v.Elem(), seen)
	case reflect.Interface:
		if v.IsNil() {
			return 0
		}
		return heldBytes(v.Elem(), seen)
	case reflect.Struct:
		var n int64
		for i := range v.NumField() {
			n += heldBytes(v.Field(i), seen)
		}
		return n
	case reflect.Slice:
		if v.IsNil() {
			return 0
		}
		n := int64(v.Cap()) * int64(v.Type().Elem().Size())
		for i := range v.Len() {
			n += heldBytes(v.Index(i), seen)
		}
		return n
	case reflect.String:
		return int64(v.Len())
	case reflect.Map:
		var n int64
		for it := v.MapRange(); it.Next(); {
			n += int64(it.Key().Type().Size()+it.Value().Type().Size()) + heldBytes(it.Key(), seen) + heldBytes(it.Value(), seen)
		}
		return n
	}
	return 0
}

// awaitCond polls cond (bounded: 10 s) until it holds.
func awaitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
