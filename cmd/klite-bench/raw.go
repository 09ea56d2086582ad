package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawThroughput is the broker-side throughput figure: a lean load generator that encodes one
// Produce request (acks=all, one RecordBatch v2 per partition, not idempotent) once and sends
// it over and over on o.rawConns connections, each keeping o.rawInFlight requests in flight.
// The broker does all its usual work for every request (CRC check, record validation, offset
// assignment, WAL write, fsync before the answer); the generator only writes bytes and reads
// answers, so on a 2-core machine the figure shows what the broker can take rather than how
// fast a client library can build records. Every answer is decoded and any partition error
// fails the run.
//
// With a codec the records are compressed as a producer would (franz-go's compressor); the
// broker then decompresses every batch to validate it (as Kafka does) and stores it as sent.
// The values are text-like (words and digits, about 3-5x compressible) so decompression does
// real work; MB/s counts uncompressed record bytes in every phase.
func rawThroughput(ctx context.Context, addr, topic string, o options, codec string) (recs, bytes int64, batchBytes int, el time.Duration, err error) {
	perBatch := max(1, o.rawBatchBytes/o.recordSize)
	values := make([][]byte, perBatch) // distinct, so a batch compresses like real data
	for i := range values {
		values[i] = textValue(o.recordSize)
	}
	batch, err := encodeBatch(values, codec)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = 11
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for p := 0; p < o.partitions; p++ {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = int32(p)
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("klite-bench-raw")).AppendRequest(nil, req, 0)
	recsPerReq := int64(perBatch * o.partitions)
	bytesPerReq := recsPerReq * int64(o.recordSize)

	if err := rawWarmUp(ctx, addr, frame); err != nil {
		return 0, 0, 0, 0, err
	}
	var total atomic.Int64
	deadline := time.Now().Add(o.duration)
	el, err = runWorkers(o.rawConns, func(int) error {
		conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		n, err := rawConn(conn, frame, o.rawInFlight, deadline, func() bool { return time.Now().Before(deadline) })
		total.Add(n)
		return err
	})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	n := total.Load()
	return n * recsPerReq, n * bytesPerReq, len(batch), el, nil
}

// rawWarmUp sends frame once, again while the answer carries a retriable error (Kafka
// answers NOT_LEADER_FOR_PARTITION for a while after a new topic's metadata shows its
// leaders), for at most a minute: the timed phase then starts on a broker that serves every
// partition.
func rawWarmUp(ctx context.Context, addr string, frame []byte) error {
	deadline := time.Now().Add(time.Minute)
	for {
		conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		once := true
		_, err = rawConn(conn, frame, 1, deadline, func() bool { r := once; once = false; return r })
		conn.Close()
		if err == nil || !kerr.IsRetriable(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// rawConn sends frame (correlation ID patched per request) while more() says so, with up to
// inFlight unanswered requests, and returns how many were answered without error. deadline
// bounds the connection (plus a minute for the last answers).
func rawConn(conn net.Conn, frame []byte, inFlight int, deadline time.Time, more func() bool) (int64, error) {
	_ = conn.SetDeadline(deadline.Add(60 * time.Second))
	slots := make(chan struct{}, inFlight)
	sent := make(chan int32, inFlight)
	var wErr error
	go func() {
		defer close(sent)
		buf := append([]byte(nil), frame...)
		for id := int32(1); more(); id++ {
			slots <- struct{}{}
			binary.BigEndian.PutUint32(buf[8:], uint32(id))
			if _, err := conn.Write(buf); err != nil {
				wErr = err
				return
			}
			sent <- id
		}
	}()
	br := bufio.NewReaderSize(conn, 64<<10)
	var answered int64
	var body []byte
	for id := range sent {
		var sz [4]byte
		if _, err := io.ReadFull(br, sz[:]); err != nil {
			return answered, fmt.Errorf("reading answer %d: %w", id, err)
		}
		n := int(binary.BigEndian.Uint32(sz[:]))
		if n < 4 || n > 1<<20 {
			return answered, fmt.Errorf("answer of %d bytes", n)
		}
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			return answered, fmt.Errorf("reading answer %d: %w", id, err)
		}
		if got := int32(binary.BigEndian.Uint32(body)); got != id {
			return answered, fmt.Errorf("answer for correlation ID %d, want %d", got, id)
		}
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = 11
		// Produce v11 is a flexible version: the answer header ends with its (empty) tag section.
		if len(body) < 5 || body[4] != 0 {
			return answered, fmt.Errorf("answer %d: unexpected header tags", id)
		}
		if err := resp.ReadFrom(body[5:]); err != nil {
			return answered, fmt.Errorf("decoding answer %d: %w", id, err)
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return answered, fmt.Errorf("partition %d: %w", p.Partition, err)
				}
			}
		}
		answered++
		<-slots
	}
	if wErr != nil {
		return answered, wErr
	}
	return answered, nil
}

// textValue is n bytes of log-like text: random words and numbers.
func textValue(n int) []byte {
	words := []string{"user_id=", "session ", "GET /api/v1/orders ", "status=200 ", "latency_ms=", "region=eu-west-1 ", "item ", "price=", "\n"}
	var rnd [2]byte
	out := make([]byte, 0, n+32)
	for len(out) < n {
		rand.Read(rnd[:])
		out = append(out, words[int(rnd[0])%len(words)]...)
		out = fmt.Appendf(out, "%d ", int(rnd[1])*37)
	}
	return out[:n]
}

// encodeBatch builds one RecordBatch v2 of a record per value, CreateTime now, no producer
// ID, compressed with codec ("none", "gzip", "snappy", "lz4", "zstd").
func encodeBatch(values [][]byte, codec string) ([]byte, error) {
	now := time.Now().UnixMilli()
	n := len(values)
	var recs []byte
	for i, value := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: value}
		// Length is the record's size after the length field itself.
		r.Length = int32(len(r.AppendTo(nil)) - varintLen(0))
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(n - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(n),
		Records:              recs,
	}
	if codec != "none" {
		cc, ok := map[string]kgo.CompressionCodec{"gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
			"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}[codec]
		if !ok {
			return nil, fmt.Errorf("unknown codec %q", codec)
		}
		c, err := kgo.DefaultCompressor(cc)
		if err != nil {
			return nil, err
		}
		out, typ := c.Compress(new(bytes.Buffer), recs)
		b.Records = append([]byte(nil), out...)
		b.Attributes = int16(typ)
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	// CRC-32C over everything after the CRC field (attributes onwards).
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out, nil
}

func varintLen(v int64) int { return len(binary.AppendVarint(nil, v)) }
