package broker

// Zero-copy Fetch: on a plain TCP connection with segments in a local directory, a partition
// whose batches come from a sealed segment is answered with the segment file's byte range
// (logstore.ReadSpan) instead of its bytes: RecordBatches holds a one-byte placeholder (an
// element of the answer's arena, which identifies the range) and the server's writer sends
// the range with sendfile (broker/server/splice.go). The unsealed tail, TLS connections and
// other stores (in memory, S3) take the copy path. Quotas and metrics count the ranges'
// bytes as they count RecordBatches.

import (
	"errors"
	"sync/atomic"

	"github.com/klite/klite/broker/logstore"
	"github.com/klite/klite/broker/server"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// zeroCopyRanges counts the file ranges put into Fetch answers (tests check the path ran).
var zeroCopyRanges atomic.Int64

// maxZeroCopyRanges bounds the files one answer holds open until it is written; further
// partitions of the answer take the copy path.
const maxZeroCopyRanges = 64

// zeroCopy collects the file ranges of one Fetch answer.
type zeroCopy struct {
	max   int    // partitions in the request: at most one range each
	arena []byte // placeholders: the i-th range's RecordBatches is arena[i : i+1]
	spans []logstore.Span
	index map[*byte]int
}

// zeroCopyFor returns a collector when req's answer may carry file ranges, else nil.
func (b *Broker) zeroCopyFor(rc *ReqCtx, req *kmsg.FetchRequest) *zeroCopy {
	if rc.conn == nil || !rc.conn.ZeroCopy() {
		return nil
	}
	if _, ok := b.segStore.(logstore.FileStore); !ok {
		return nil
	}
	n := 0
	for _, t := range req.Topics {
		n += len(t.Partitions)
	}
	// The rest on the first range: a tailing fetch reads memory.
	return &zeroCopy{max: min(n, maxZeroCopyRanges)}
}

// read reads p's batches at offset as a file range when they come from a sealed segment;
// ok false: the caller reads them with readBatches. recs is the placeholder (nil: no data).
func (zc *zeroCopy) read(p *partition, offset, upper, limit int64, minOne bool) (recs []byte, n, lastOff int64, rerr *kerr.Error, ok bool) {
	lg := p.log()
	if zc == nil || lg == nil || len(zc.spans) == zc.max {
		return nil, 0, -1, nil, false
	}
	sp, ok, err := lg.ReadSpan(offset, int(min(limit, 1<<30)), upper, minOne)
	if err != nil {
		if errors.Is(err, logstore.ErrOffsetOutOfRange) {
			return nil, 0, -1, kerr.OffsetOutOfRange, true
		}
		return nil, 0, -1, kerr.KafkaStorageError, true
	}
	if !ok || sp.Len == 0 {
		return nil, 0, -1, nil, ok
	}
	zeroCopyRanges.Add(1)
	if zc.arena == nil {
		zc.arena, zc.index = make([]byte, zc.max), make(map[*byte]int, zc.max)
	}
	i := len(zc.spans)
	zc.spans = append(zc.spans, sp)
	recs = zc.arena[i : i+1 : i+1]
	zc.index[&recs[0]] = i
	return recs, sp.Len, sp.Last, nil, true
}

// span returns the range behind a partition's RecordBatches, if it is a placeholder.
func (zc *zeroCopy) span(recs []byte) (*logstore.Span, bool) {
	if zc == nil || len(recs) != 1 {
		return nil, false
	}
	i, ok := zc.index[&recs[0]]
	if !ok {
		return nil, false
	}
	return &zc.spans[i], true
}

// answer wraps resp for the server when it carries file ranges.
func (zc *zeroCopy) answer(resp *kmsg.FetchResponse) kmsg.Response {
	if zc == nil || len(zc.spans) == 0 {
		return resp
	}
	return &fileFetch{FetchResponse: resp, zc: zc}
}

// fileFetch is a FetchResponse some of whose RecordBatches are placeholders for file
// ranges; it implements server.Spliced.
type fileFetch struct {
	*kmsg.FetchResponse
	zc     *zeroCopy
	closed bool
}

var _ server.Spliced = (*fileFetch)(nil)

func (f *fileFetch) Mark(m byte) {
	for i := range f.zc.spans {
		f.zc.arena[i] = m
	}
}

// each calls fn for every partition whose RecordBatches is a placeholder, in encoding order.
func (f *fileFetch) each(fn func(rp *kmsg.FetchResponseTopicPartition, sp *logstore.Span)) {
	for i := range f.Topics {
		for j := range f.Topics[i].Partitions {
			rp := &f.Topics[i].Partitions[j]
			if sp, ok := f.zc.span(rp.RecordBatches); ok {
				fn(rp, sp)
			}
		}
	}
}

func (f *fileFetch) Files() []server.FileRange {
	var out []server.FileRange
	f.each(func(_ *kmsg.FetchResponseTopicPartition, sp *logstore.Span) {
		out = append(out, server.FileRange{File: sp.File, Off: sp.Off, Len: sp.Len})
	})
	return out
}

func (f *fileFetch) Inline() error {
	var err error
	f.each(func(rp *kmsg.FetchResponseTopicPartition, sp *logstore.Span) {
		b := make([]byte, sp.Len)
		if _, rerr := sp.File.ReadAt(b, sp.Off); rerr != nil && err == nil {
			err = rerr // io.EOF included: a range the file no longer holds whole
		}
		rp.RecordBatches = b
	})
	return err
}

func (f *fileFetch) Close() {
	if f.closed {
		return
	}
	f.closed = true
	for i := range f.zc.spans {
		f.zc.spans[i].Close()
	}
}

// release closes the files of an answer that will not be sent (a throttled Fetch).
func (zc *zeroCopy) release() {
	if zc == nil {
		return
	}
	for i := range zc.spans {
		zc.spans[i].Close()
	}
	zc.spans = nil
}

// recordBytes is the length of a partition's record bytes, in memory or in a file range.
func (zc *zeroCopy) recordBytes(recs []byte) int {
	if sp, ok := zc.span(recs); ok {
		return int(sp.Len)
	}
	return len(recs)
}
