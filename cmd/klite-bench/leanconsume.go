package main

// The lean reader: catch-up consumption without a client library's record decoding, the
// consume-side twin of the lean generator (raw.go). One connection sends Fetch v12 requests
// for every partition of the topic (64 MiB per answer, 16 MiB per partition, as the franz-go
// phase asks), one at a time as a consumer does, and reads each answer's batch headers only:
// the figure is what the broker can serve, which a franz-go consumer on this 2-core machine
// (decoding every record) cannot show.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// leanCatchUp reads want records of topic's partitions from offset 0 (at most limit) and
// returns the records read, their value bytes (records x recordSize: the lean generator's
// records are all that size) and the time taken.
func leanCatchUp(ctx context.Context, addr, topic string, partitions int, want int64, recordSize int, limit time.Duration) (recs, bytes int64, el time.Duration, err error) {
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(limit))
	offsets := make([]int64, partitions)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("klite-bench-lean-reader"))
	br := bufio.NewReaderSize(conn, 1<<20)
	var body []byte
	retried := 0
	start := time.Now()
	for corr := int32(1); recs < want; corr++ {
		if time.Since(start) > limit {
			return recs, bytes, time.Since(start), fmt.Errorf("read %d of %d records in %s (%d partition reads failed with retriable errors)", recs, want, limit, retried)
		}
		req := kmsg.NewPtrFetchRequest()
		req.Version = 12
		req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 500, 1, 64<<20
		req.SessionEpoch = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		for p := range offsets {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = int32(p), offsets[p], 16<<20
			rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		if _, err := conn.Write(f.AppendRequest(nil, req, corr)); err != nil {
			return recs, bytes, time.Since(start), err
		}
		var sz [4]byte
		if _, err := io.ReadFull(br, sz[:]); err != nil {
			return recs, bytes, time.Since(start), err
		}
		n := int(binary.BigEndian.Uint32(sz[:]))
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(br, body); err != nil {
			return recs, bytes, time.Since(start), err
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = req.Version
		if len(body) < 5 {
			return recs, bytes, time.Since(start), fmt.Errorf("short fetch answer")
		}
		if err := resp.ReadFrom(body[5:]); err != nil { // correlation ID, header tags
			return recs, bytes, time.Since(start), err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return recs, bytes, time.Since(start), err
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					if kerr.IsRetriable(err) {
						retried++ // asked again in the next request, as a consumer does
						continue
					}
					return recs, bytes, time.Since(start), fmt.Errorf("partition %d: %w", p.Partition, err)
				}
				n, next := batchRecords(p.RecordBatches)
				recs += n
				if next > offsets[p.Partition] {
					offsets[p.Partition] = next
				}
			}
		}
	}
	return recs, recs * int64(recordSize), time.Since(start), nil
}

// batchRecords counts the records of the whole v2 batches in b and returns the offset after
// the last one (0 if none).
func batchRecords(b []byte) (recs, next int64) {
	for len(b) >= 61 {
		size := 12 + int(binary.BigEndian.Uint32(b[8:12]))
		if size < 61 || size > len(b) {
			break
		}
		recs += int64(binary.BigEndian.Uint32(b[57:61]))
		next = int64(binary.BigEndian.Uint64(b)) + int64(binary.BigEndian.Uint32(b[23:27])) + 1
		b = b[size:]
	}
	return recs, next
}
