package broker

// The broker's hot-path instrumentation (broker/metrics). Every request is counted and timed
// in Dispatch (observeResponse); its error codes are counted from the response, and a Fetch
// response's batches are counted out per topic here, from the response, so the fetch path
// itself carries no metrics code. Produce counts its appended batches where an append
// succeeds (produce.go). Connections are counted by the server's open/close hooks. All of it
// is a no-op when Config.Metrics is nil.

import (
	"encoding/binary"
	"reflect"
	"time"

	"github.com/klite/klite/broker/metrics"
	"github.com/klite/klite/broker/server"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// observeResponse records one answered request: count and latency by API, the error codes
// its response carries, and for Fetch the bytes and records returned per topic.
func (b *Broker) observeResponse(key int16, start time.Time, resp kmsg.Response) {
	m := b.metrics
	if m == nil {
		return
	}
	m.Request(key, time.Since(start))
	switch r := resp.(type) {
	case nil:
	case *kmsg.ProduceResponse:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				m.Error(key, r.Topics[i].Partitions[j].ErrorCode)
			}
		}
	case *kmsg.FetchResponse:
		b.observeFetch(r, nil)
	case *fileFetch: // record bytes in segment files (fetch_zerocopy.go)
		b.observeFetch(r.FetchResponse, r.zc)
	case *pooledFetch: // record bytes in a pooled buffer (fetch_buf.go)
		b.observeFetch(r.FetchResponse, nil)
	default:
		walkErrorCodes(reflect.ValueOf(resp), func(code int16) { m.Error(key, code) }, 0)
	}
}

// observeFetch counts a Fetch response's errors and returned batches per topic.
func (b *Broker) observeFetch(r *kmsg.FetchResponse, zc *zeroCopy) {
	m := b.metrics
	m.Error(1, r.ErrorCode)
	for i := range r.Topics {
		rt := &r.Topics[i]
		var bytes, records int
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			m.Error(1, rp.ErrorCode)
			n, c := batchStats(rp.RecordBatches)
			if sp, ok := zc.span(rp.RecordBatches); ok {
				n, c = int(sp.Len), int(sp.Records)
			}
			bytes += n
			records += c
		}
		if bytes == 0 {
			continue
		}
		var t *topic
		if rt.Topic != "" {
			t = b.topic(rt.Topic)
		} else {
			t = b.topicByID(rt.TopicID)
		}
		if t != nil {
			t.m.Fetched(bytes, records)
		}
	}
}

// batchStats sums the complete v2 record batches in a fetch response's RecordBatches: their
// bytes and their record counts (the header's NumRecords at byte 57). A partial batch at the
// end (cut by the fetch size limits) is not counted.
func batchStats(data []byte) (bytes, records int) {
	for len(data) >= 61 {
		size := 12 + int(binary.BigEndian.Uint32(data[8:12]))
		if size < 61 || size > len(data) {
			break
		}
		if data[16] == 2 {
			records += int(binary.BigEndian.Uint32(data[57:61]))
		}
		bytes += size
		data = data[size:]
	}
	return bytes, records
}

// walkErrorCodes calls fn with every non-zero int16 field named ErrorCode in a response
// (top level and nested in topics, partitions, groups, ...). Reflection is fine here: the
// hot APIs (Produce, Fetch) are walked by hand above.
func walkErrorCodes(v reflect.Value, fn func(int16), depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkErrorCodes(v.Elem(), fn, depth+1)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if !t.Field(i).IsExported() {
				continue
			}
			switch {
			case f.Kind() == reflect.Int16 && t.Field(i).Name == "ErrorCode":
				if c := int16(f.Int()); c != 0 {
					fn(c)
				}
			case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct,
				f.Kind() == reflect.Struct, f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.Struct:
				walkErrorCodes(f, fn, depth+1)
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			walkErrorCodes(v.Index(i), fn, depth+1)
		}
	}
}

// listenerName is the Kafka security protocol of a connection, the "listener" label.
func (b *Broker) listenerName(c *server.Conn) string {
	switch tls := c.IsTLS(); {
	case tls && b.cfg.SASL.Enabled:
		return "SASL_SSL"
	case tls:
		return "SSL"
	case b.cfg.SASL.Enabled:
		return "SASL_PLAINTEXT"
	}
	return "PLAINTEXT"
}

// connOpened and connClosed are the server's connection hooks (see Serve).
func (b *Broker) connOpened(c *server.Conn) {
	b.metrics.Listener(b.listenerName(c)).Opened()
}

func (b *Broker) connClosed(c *server.Conn) {
	st, _ := c.Auth.(*saslConn)
	b.metrics.Listener(b.listenerName(c)).Closed(st != nil && st.countedAuth)
}

// noteAuthenticated moves a connection into the authenticated gauge once it has a principal
// (SASL, or a TLS client certificate). Called after each handler on the connection's
// reading goroutine, the one the close hook runs on.
func (b *Broker) noteAuthenticated(c *server.Conn) {
	st, _ := c.Auth.(*saslConn)
	if st == nil || st.countedAuth || c.Principal == "User:ANONYMOUS" {
		return
	}
	st.countedAuth = true
	b.metrics.Listener(b.listenerName(c)).Authenticated()
}

// walMetricsHook is the WAL's group-commit hook, nil without metrics.
func walMetricsHook(m *metrics.Registry) func(bytes int64, entries int, took time.Duration) {
	if m == nil {
		return nil
	}
	return m.WALSync
}
