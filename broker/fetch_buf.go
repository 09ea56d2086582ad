package broker

// Fetch answers read from the in-memory tails copy their batches into one buffer per
// answer. At 20,000 records/s those buffers were four fifths of the broker's garbage (30 MB/s
// of 38), and so most of its collections. An answer's buffer comes from fetchBufs and goes
// back once the server has encoded the answer into its write buffer (server.Recycler):
// the answer is then a pooledFetch. Answers with file ranges (fileFetch, sent with
// sendfile) leave theirs to the GC: the server may inline and encode them after Close.

import (
	"sync"

	"github.com/klite/klite/broker/server"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxPooledFetchBuf: larger buffers (a catch-up read of the tail) are not kept. The
// response budget counts an answer's bytes, not its buffer's capacity: a pooled buffer taken
// by a small answer holds up to this much unaccounted, so it stays small (a hundred tailing
// consumers' answers in flight: 12.5 MiB at most).
const maxPooledFetchBuf = 128 << 10

var fetchBufs = sync.Pool{New: func() any { return new([]byte) }}

// takeFetchBuf returns an empty buffer for a fetch answer's batches.
func takeFetchBuf() *[]byte {
	bp := fetchBufs.Get().(*[]byte)
	*bp = (*bp)[:0]
	return bp
}

// recycleFetchBuf gives bp back once nothing reads the bytes in it.
func recycleFetchBuf(bp *[]byte) {
	if bp == nil || cap(*bp) == 0 || cap(*bp) > maxPooledFetchBuf {
		return
	}
	*bp = (*bp)[:0]
	fetchBufs.Put(bp)
}

// pooledFetch is a Fetch answer whose record bytes are in a pooled buffer.
type pooledFetch struct {
	*kmsg.FetchResponse
	buf *[]byte
}

var _ server.Recycler = (*pooledFetch)(nil)

// Recycle implements server.Recycler: the answer is encoded (or dropped).
func (p *pooledFetch) Recycle() {
	bp := p.buf
	p.buf = nil
	recycleFetchBuf(bp)
}

// answerPooled is answer for a response whose in-memory batches are in bp: without file
// ranges, a pooledFetch that gives bp back once encoded.
func (zc *zeroCopy) answerPooled(resp *kmsg.FetchResponse, bp *[]byte) kmsg.Response {
	if zc != nil && len(zc.spans) > 0 || len(*bp) == 0 {
		if len(*bp) == 0 {
			recycleFetchBuf(bp) // nothing of it in the answer
		}
		return zc.answer(resp)
	}
	return &pooledFetch{FetchResponse: resp, buf: bp}
}
