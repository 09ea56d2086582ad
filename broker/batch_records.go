package broker

// The records of a RecordBatch v2 (after the 61-byte header; decompressed first when the
// codec bits are set), one after another:
//
//	field           encoding
//	length          varint   bytes of the record after this field
//	attributes      int8     unused
//	timestampDelta  varlong  added to the batch's firstTimestamp
//	offsetDelta     varint   0, 1, 2, ... (added to the batch's baseOffset)
//	keyLength       varint   -1 = null key
//	key             bytes
//	valueLength     varint   -1 = null value
//	value           bytes
//	headerCount     varint
//	headers         per header: keyLength varint (>= 0), key, valueLength varint (-1 = null), value
//
// walkRecords checks this framing the way Kafka's DefaultRecord / DefaultRecordBatch iterators
// do when LogValidator walks a produced batch: exactly recordCount records, each exactly its
// declared length, nothing after the last one. Compressed payloads are decompressed as a
// stream through a pooled decoder and a pooled 32 KiB buffer, skipping keys, values and
// headers as Kafka's skipKeyValueIterator does: nothing decompressed is kept, and the batch is
// stored exactly as produced. zstd payloads of up to 8 MiB decompressed are decoded in one
// call into a pooled scratch buffer instead (about 1.5x faster than zstd's stream decoder);
// larger ones, and any that fail that way, take the stream path, which classifies errors.
//
// Errors follow Kafka 4.0: broken framing or a payload that ends early is INVALID_RECORD
// (InvalidRecordException); a payload the codec cannot decode at all is UNKNOWN_SERVER_ERROR
// (Kafka wraps the codec's IOException in a KafkaException, which has no error code of its own).

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kerr"
)

// zstdMaxWindow bounds the memory one zstd frame may ask for (Java's zstd-jni default is
// 128 MiB; producers at default levels use at most 8 MiB).
const zstdMaxWindow = 32 << 20

// snappyMaxBlock bounds one decoded snappy block (xerial-framed producers write 32 KiB
// blocks; a raw, unframed payload is one block holding the whole batch).
const snappyMaxBlock = 64 << 20

// recordVisitor is called for each record with its index, offset delta, timestamp delta and
// whether its key is null (a compacted topic refuses those: produce_compacted.go).
type recordVisitor func(i, offsetDelta int32, timestampDelta int64, keyNull bool) *batchError

// errDecode marks a codec failure (as opposed to broken record framing).
type errDecode struct{ err error }

func (e errDecode) Error() string { return e.err.Error() }

// testHookDecompress, when set by a test, is called for every payload decompressed.
var testHookDecompress func()

var errInvalidFraming = errors.New("invalid framing")

// walkRecords walks the n records of a batch's payload (compressed with codec) and calls
// visit for each.
func walkRecords(payload []byte, codec int8, n int32, visit recordVisitor) *batchError {
	if codec != 0 && testHookDecompress != nil {
		testHookDecompress()
	}
	if codec == 0 {
		return walkSlice(payload, n, visit)
	}
	if codec == 4 {
		if out, release, ok := zstdDecodeSmall(payload); ok {
			defer release()
			return walkSlice(out, n, visit)
		}
	}
	br := bufReaders.Get().(*bufio.Reader)
	defer func() { br.Reset(nil); bufReaders.Put(br) }()
	r, release, err := decompressReader(payload, codec)
	if err != nil {
		return decodeFailure(err)
	}
	defer release()
	br.Reset(r)
	src := streamSource{br: br}
	return walkSource(&src, 0, n, visit)
}

// walkSlice is walkSource over a slice, with a fast path: a record whose framing is
// sound is read by indexing (walkSource reads a byte at a time through two interfaces,
// 7-10% of the broker's CPU under produce load); at the first one that is not, walkSource
// takes over from that record, so every error is walkSource's own.
func walkSlice(b []byte, n int32, visit recordVisitor) *batchError {
	for i := int32(0); i < n; i++ {
		size, offDelta, tsDelta, keyNull, ok := sliceRecord(b)
		if !ok {
			src := sliceSource{b: b}
			return walkSource(&src, i, n, visit)
		}
		if berr := visit(i, offDelta, tsDelta, keyNull); berr != nil {
			return berr
		}
		b = b[size:]
	}
	if len(b) != 0 {
		return &batchError{err: kerr.InvalidRecord, msg: "Incorrect declared batch size, records still remaining in file"}
	}
	return nil
}

// sliceRecord reads the record at the start of b as walkSource does (the same limits on
// varints and lengths) and reports its size with its length prefix; ok is false where
// walkSource would fail or b is not one whole well-framed record.
func sliceRecord(b []byte) (size int, offDelta int32, tsDelta int64, keyNull, ok bool) {
	length, p, ok := sliceVarint(b, 0, 5)
	if !ok || length < 0 || int64(length) > int64(len(b)-p) {
		return 0, 0, 0, false, false
	}
	end := p + int(length)
	rec := b[:end]
	if p >= end { // attributes
		return 0, 0, 0, false, false
	}
	p++
	var u uint64
	if u, p, ok = sliceUvarint(rec, p, 10); !ok {
		return 0, 0, 0, false, false
	}
	tsDelta = int64(u>>1) ^ -int64(u&1)
	if offDelta, p, ok = sliceVarint(rec, p, 5); !ok {
		return 0, 0, 0, false, false
	}
	if keyNull, p, ok = sliceBytes(rec, p, true); !ok {
		return 0, 0, 0, false, false
	}
	if _, p, ok = sliceBytes(rec, p, true); !ok { // value
		return 0, 0, 0, false, false
	}
	headers, p, ok := sliceVarint(rec, p, 5)
	if !ok || headers < 0 {
		return 0, 0, 0, false, false
	}
	for h := int32(0); h < headers; h++ {
		if _, p, ok = sliceBytes(rec, p, false); !ok {
			return 0, 0, 0, false, false
		}
		if _, p, ok = sliceBytes(rec, p, true); !ok {
			return 0, 0, 0, false, false
		}
	}
	return end, offDelta, tsDelta, keyNull, p == end
}

// sliceUvarint is readUvarint over b[p:] (at most maxBytes bytes); it returns the position
// after the varint.
func sliceUvarint(b []byte, p, maxBytes int) (uint64, int, bool) {
	var v uint64
	for i := 0; i < maxBytes; i++ {
		if p >= len(b) {
			return 0, p, false
		}
		c := b[p]
		p++
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, p, true
		}
	}
	return 0, p, false
}

// sliceVarint is recReader.varint over b[p:].
func sliceVarint(b []byte, p, maxBytes int) (int32, int, bool) {
	u, p, ok := sliceUvarint(b, p, maxBytes)
	return int32(u>>1) ^ -int32(u&1), p, ok
}

// sliceBytes is recReader.bytesField over b[p:].
func sliceBytes(b []byte, p int, nullable bool) (null bool, next int, ok bool) {
	l, p, ok := sliceVarint(b, p, 5)
	switch {
	case !ok:
		return false, p, false
	case l == -1 && nullable:
		return true, p, true
	case l < 0 || int64(l) > int64(len(b)-p):
		return false, p, false
	}
	return false, p + int(l), true
}

func decodeFailure(err error) *batchError {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &batchError{err: kerr.InvalidRecord, msg: "Incorrect declared batch size, premature EOF reached"}
	}
	return &batchError{err: kerr.UnknownServerError, msg: "Failed to decompress record stream: " + err.Error()}
}

// byteSource is the payload being walked: a slice or a decompressing stream.
type byteSource interface {
	ReadByte() (byte, error)
	skip(n int) error // io.ErrUnexpectedEOF when fewer than n bytes remain
	atEnd() (bool, error)
}

type sliceSource struct{ b []byte }

func (s *sliceSource) ReadByte() (byte, error) {
	if len(s.b) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c, nil
}

func (s *sliceSource) skip(n int) error {
	if n > len(s.b) {
		return io.ErrUnexpectedEOF
	}
	s.b = s.b[n:]
	return nil
}

func (s *sliceSource) atEnd() (bool, error) { return len(s.b) == 0, nil }

type streamSource struct{ br *bufio.Reader }

func (s *streamSource) ReadByte() (byte, error) {
	c, err := s.br.ReadByte()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	} else if err != nil {
		err = errDecode{err}
	}
	return c, err
}

func (s *streamSource) skip(n int) error {
	got, err := s.br.Discard(n)
	if got == n {
		return nil
	}
	if err == nil || err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return errDecode{err}
}

func (s *streamSource) atEnd() (bool, error) {
	_, err := s.br.Peek(1)
	if err == io.EOF {
		return true, nil
	}
	if err != nil {
		return false, errDecode{err}
	}
	return false, nil
}

// recReader counts the bytes read from a source to check each record's declared length.
type recReader struct {
	src  byteSource
	left int64 // bytes of the current record not read yet
}

func (r *recReader) ReadByte() (byte, error) {
	if r.left <= 0 {
		return 0, errInvalidFraming
	}
	c, err := r.src.ReadByte()
	if err == nil {
		r.left--
	}
	return c, err
}

// varint reads a zigzag varint of at most 5 bytes (Kafka's ByteUtils.readVarint).
func (r *recReader) varint() (int32, error) {
	v, err := readUvarint(r, 5)
	return int32(v>>1) ^ -int32(v&1), err
}

// varlong reads a zigzag varint of at most 10 bytes (Kafka's ByteUtils.readVarlong).
func (r *recReader) varlong() (int64, error) {
	v, err := readUvarint(r, 10)
	return int64(v>>1) ^ -int64(v&1), err
}

func readUvarint(r io.ByteReader, maxBytes int) (uint64, error) {
	var v uint64
	for i := 0; i < maxBytes; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errInvalidFraming
}

// bytesField skips a length-prefixed field; nullable allows length -1 (null reports it).
func (r *recReader) bytesField(nullable bool) (null bool, err error) {
	l, err := r.varint()
	if err != nil {
		return false, err
	}
	if l < 0 {
		if l == -1 && nullable {
			return true, nil
		}
		return false, errInvalidFraming
	}
	if int64(l) > r.left {
		return false, errInvalidFraming
	}
	if err := r.src.skip(int(l)); err != nil {
		return false, err
	}
	r.left -= int64(l)
	return false, nil
}

// walkSource walks records start..n-1 of src.
func walkSource(src byteSource, start, n int32, visit recordVisitor) *batchError {
	fail := func(i int32, err error) *batchError {
		var de errDecode
		switch {
		case errors.As(err, &de):
			return decodeFailure(de.err)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return &batchError{err: kerr.InvalidRecord, msg: "Incorrect declared batch size, premature EOF reached"}
		default:
			return &batchError{err: kerr.InvalidRecord, msg: fmt.Sprintf("Found invalid record structure in record %d", i)}
		}
	}
	r := recReader{src: src}
	for i := start; i < n; i++ {
		r.left = 5
		length, err := r.varint()
		if err != nil {
			return fail(i, err)
		}
		if length < 0 {
			return fail(i, errInvalidFraming)
		}
		r.left = int64(length)
		if _, err := r.ReadByte(); err != nil { // attributes
			return fail(i, err)
		}
		tsDelta, err := r.varlong()
		if err != nil {
			return fail(i, err)
		}
		offDelta, err := r.varint()
		if err != nil {
			return fail(i, err)
		}
		keyNull, err := r.bytesField(true) // key
		if err != nil {
			return fail(i, err)
		}
		if _, err := r.bytesField(true); err != nil { // value
			return fail(i, err)
		}
		headers, err := r.varint()
		if err != nil {
			return fail(i, err)
		}
		if headers < 0 {
			return &batchError{err: kerr.InvalidRecord, msg: fmt.Sprintf("Found invalid number of record headers %d", headers)}
		}
		for h := int32(0); h < headers; h++ {
			if _, err := r.bytesField(false); err != nil {
				return fail(i, err)
			}
			if _, err := r.bytesField(true); err != nil {
				return fail(i, err)
			}
		}
		if r.left != 0 {
			return &batchError{err: kerr.InvalidRecord, msg: fmt.Sprintf("Invalid record size: expected to read %d bytes in record payload, but instead read %d", length, int64(length)-r.left)}
		}
		if berr := visit(i, offDelta, tsDelta, keyNull); berr != nil {
			return berr
		}
	}
	end, err := src.atEnd()
	if err != nil {
		return fail(n, err)
	}
	if !end {
		return &batchError{err: kerr.InvalidRecord, msg: "Incorrect declared batch size, records still remaining in file"}
	}
	return nil
}

var bufReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}

type gzipDec struct {
	src bytes.Reader
	r   gzip.Reader
}

type lz4Dec struct {
	src bytes.Reader
	r   *lz4.Reader
}

type zstdDec struct {
	src bytes.Reader
	d   *zstd.Decoder
}

var (
	gzipDecs = sync.Pool{New: func() any { return new(gzipDec) }}
	lz4Decs  = sync.Pool{New: func() any { return &lz4Dec{r: lz4.NewReader(nil)} }}
	zstdDecs = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			panic(err) // only for invalid options
		}
		return &zstdDec{d: d}
	}}
	snappyDecs = sync.Pool{New: func() any { return new(snappyReader) }}
)

// zstdInMemoryMax bounds what zstdDecodeSmall decodes into memory.
const zstdInMemoryMax = 8 << 20

var (
	zstdAllDecs = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(zstdInMemoryMax))
		if err != nil {
			panic(err) // only for invalid options
		}
		return d
	}}
	scratchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}
)

// zstdDecodeSmall decodes a zstd payload of at most zstdInMemoryMax bytes into a pooled
// buffer; release returns the buffer. ok is false when the payload is larger or does not
// decode (the caller then streams it).
func zstdDecodeSmall(payload []byte) (out []byte, release func(), ok bool) {
	var hdr zstd.Header
	if err := hdr.Decode(payload); err != nil || (hdr.HasFCS && hdr.FrameContentSize > zstdInMemoryMax) {
		return nil, nil, false
	}
	d := zstdAllDecs.Get().(*zstd.Decoder)
	bp := scratchBufs.Get().(*[]byte)
	out, err := d.DecodeAll(payload, (*bp)[:0])
	zstdAllDecs.Put(d)
	if err != nil {
		scratchBufs.Put(bp)
		return nil, nil, false
	}
	return out, func() {
		if cap(out) <= zstdInMemoryMax+64<<10 { // keep the grown buffer, but never a huge one
			*bp = out[:0]
		}
		scratchBufs.Put(bp)
	}, true
}

// decompressReader returns a stream of the decompressed payload and a function that returns
// the decoder to its pool.
func decompressReader(payload []byte, codec int8) (io.Reader, func(), error) {
	switch codec {
	case 1:
		g := gzipDecs.Get().(*gzipDec)
		g.src.Reset(payload)
		if err := g.r.Reset(&g.src); err != nil {
			g.src.Reset(nil)
			gzipDecs.Put(g)
			return nil, nil, err
		}
		return &g.r, func() { g.src.Reset(nil); gzipDecs.Put(g) }, nil
	case 2:
		s := snappyDecs.Get().(*snappyReader)
		s.reset(payload)
		return s, func() { s.reset(nil); snappyDecs.Put(s) }, nil
	case 3:
		l := lz4Decs.Get().(*lz4Dec)
		l.src.Reset(payload)
		l.r.Reset(&l.src)
		return l.r, func() { l.src.Reset(nil); l.r.Reset(nil); lz4Decs.Put(l) }, nil
	case 4:
		z := zstdDecs.Get().(*zstdDec)
		z.src.Reset(payload)
		if err := z.d.Reset(&z.src); err != nil {
			z.src.Reset(nil)
			zstdDecs.Put(z)
			return nil, nil, err
		}
		return z.d, func() { _ = z.d.Reset(nil); z.src.Reset(nil); zstdDecs.Put(z) }, nil
	}
	return nil, nil, fmt.Errorf("unknown compression codec %d", codec)
}

// xerialMagic starts a snappy payload framed the way the Java client (snappy-java's
// SnappyOutputStream) frames it: the magic, version and compatible version (4 bytes each),
// then blocks of [big-endian int32 length][raw snappy block]. A payload without the magic is
// one raw snappy block (librdkafka and older clients), which snappy-java also reads.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

type snappyReader struct {
	rest []byte // compressed input not decoded yet
	out  []byte // decoded block; out[pos:] not read yet
	pos  int
	raw  bool   // rest is one unframed snappy block
	buf  []byte // reused decode buffer
}

func (s *snappyReader) reset(payload []byte) {
	s.rest, s.out, s.pos, s.raw = payload, nil, 0, false
	if cap(s.buf) > 1<<20 { // keep only small buffers pooled
		s.buf = nil
	}
	if len(payload) >= 16 && bytes.Equal(payload[:8], xerialMagic) {
		s.rest = payload[16:]
		return
	}
	s.raw = len(payload) > 0
}

func (s *snappyReader) Read(p []byte) (int, error) {
	for s.pos == len(s.out) {
		if len(s.rest) == 0 {
			return 0, io.EOF
		}
		var block []byte
		if s.raw {
			block, s.rest, s.raw = s.rest, nil, false
		} else {
			if len(s.rest) < 4 {
				return 0, io.ErrUnexpectedEOF
			}
			l := binary.BigEndian.Uint32(s.rest)
			if uint64(l) > uint64(len(s.rest)-4) {
				return 0, io.ErrUnexpectedEOF
			}
			block, s.rest = s.rest[4:4+l], s.rest[4+l:]
		}
		dl, err := s2.DecodedLen(block)
		if err != nil {
			return 0, err
		}
		if dl > snappyMaxBlock {
			return 0, fmt.Errorf("snappy block decodes to %d bytes, more than %d", dl, snappyMaxBlock)
		}
		if cap(s.buf) < dl {
			s.buf = make([]byte, dl)
		}
		out, err := s2.Decode(s.buf[:cap(s.buf)], block)
		if err != nil {
			return 0, err
		}
		s.out, s.pos = out, 0
	}
	n := copy(p, s.out[s.pos:])
	s.pos += n
	return n, nil
}
