package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Strings over 32,767 bytes are refused in every API, as Kafka's readers refuse them (the
// connection is closed); 32,767 bytes are read.
func TestOverlongStringsRefusedInEveryAPI(t *testing.T) {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("t"))
	frame := func(req kmsg.Request) []byte { return f.AppendRequest(nil, req, 1)[4:] }
	for _, n := range []int{maxStringBytes, maxStringBytes + 1} {
		name := strings.Repeat("x", n)
		ct := kmsg.NewPtrCreateTopicsRequest()
		ct.Version = 7
		topic := kmsg.NewCreateTopicsRequestTopic()
		topic.Topic = "t"
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = "cleanup.policy", kmsg.StringPtr(name) // nested, nullable
		topic.Configs = append(topic.Configs, cfg)
		ct.Topics = append(ct.Topics, topic)
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 12
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(name)
		md.Topics = append(md.Topics, mt)
		dc := kmsg.NewPtrDescribeConfigsRequest()
		dc.Version = 4
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, name
		dc.Resources = append(dc.Resources, r)
		for _, req := range []kmsg.Request{ct, md, dc} {
			_, _, err := ParseRequest(frame(req))
			if n > maxStringBytes && !errors.Is(err, ErrStringLength) {
				t.Errorf("%s with a %d-byte string: err %v, want ErrStringLength", kmsg.NameForKey(req.Key()), n, err)
			}
			if n <= maxStringBytes && err != nil {
				t.Errorf("%s with a %d-byte string: %v", kmsg.NameForKey(req.Key()), n, err)
			}
		}
	}
	// Opaque bytes that long are not strings.
	p := kmsg.NewPtrProduceRequest()
	p.Version = 9
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = make([]byte, 70_000)
	pt.Partitions = append(pt.Partitions, pp)
	p.Topics = append(p.Topics, pt)
	if _, _, err := ParseRequest(frame(p)); errors.Is(err, ErrStringLength) {
		t.Fatalf("70,000 record bytes taken for a string: %v", err)
	}
}
