package broker

import (
	"runtime"
	"testing"

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
	// What building the answer allocates.
	var before, after runtime.MemStats
	var resp kmsg.Response
	runtime.GC()
	runtime.ReadMemStats(&before)
	handleMetadata(tb.Broker, &ReqCtx{}, all, func(r kmsg.Response) { resp = r })
	runtime.ReadMemStats(&after)
	built := int64(after.TotalAlloc - before.TotalAlloc)
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(resp)
	if resp == nil || len(resp.(*kmsg.MetadataResponse).Topics) != 2 {
		t.Fatalf("metadata answer %+v", resp)
	}
	t.Logf("10,000 partitions: estimate %d bytes, answer holds %d bytes (%d allocated building it), encoded %d bytes",
		est, held, built, len(resp.AppendTo(nil)))
	if est < held/2 || est > 4*held {
		t.Fatalf("estimate %d bytes far from the %d bytes the built answer holds", est, held)
	}
}
