package server

// Guard against tagged-field counts that kmsg (v1.15.0) would spin on.
//
// kmsg reads a tagged-field section as "count, then count x (tag, size, bytes)" and loops
// count times without checking that its reader still has data: a count larger than the bytes
// left makes it spin up to 2^32 times on an exhausted reader (a 9-byte ApiVersions body
// takes ~45 s of CPU here). A valid section needs at least two bytes per tag, so any count
// above half the bytes left is malformed. The guard runs before kmsg sees a flexible body:
//
//   - Request header tags are skipped by this package (skipTags) with that bound.
//   - Produce v9+ (the one large, hot request) is walked structurally here: every tag count
//     is checked and record batches are skipped by their length, so the guard costs a few
//     reads per partition whatever the batch sizes.
//   - Any other flexible body: if no position in it starts a uvarint larger than
//     max(len(body), 16 KiB), every count kmsg can read is bounded by the body's size and
//     decoding is safe. Otherwise (a large uvarint-looking run, which is common in fixed-width
//     fields such as -1 and in opaque bytes) a probe copy with those runs cut short is decoded
//     first, where no count can be large; a probe that fails to decode means the request is
//     malformed and the connection is closed. This last step is best effort: a request crafted
//     so that the probe decodes while the original's path reads a large count is not caught.
//     The complete fix is in kmsg (stop its tag loops once the reader is exhausted).

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrTagCount is returned for a request whose tagged-field count exceeds the bytes left.
var ErrTagCount = errors.New("tagged-field count larger than the request")

// skipTags skips a tagged-field section (klite defines no request header tags), marking rd
// bad when the count cannot fit in what is left.
func skipTags(rd *kbin.Reader) {
	n := rd.Uvarint()
	if int64(n) > int64(len(rd.Src))/2 {
		rd.Span(len(rd.Src) + 1) // marks the reader bad
		return
	}
	for i := uint32(0); i < n && rd.Ok(); i++ {
		rd.Uvarint() // tag
		sz := rd.Uvarint()
		rd.Span(int(sz))
	}
}

// checkBodyTags applies the guard to the body of a flexible request (req has its version).
func checkBodyTags(req kmsg.Request, body []byte) error {
	if p, ok := req.(*kmsg.ProduceRequest); ok {
		if !produceTagsOK(body, p.Version) {
			return ErrTagCount
		}
		return nil
	}
	limit := uint32(max(len(body), 16<<10))
	var probe []byte
	for i := 0; i+2 < len(body); i++ {
		// A uvarint above 16 KiB has at least three bytes, the first two with the high bit.
		if body[i]&body[i+1]&0x80 == 0 {
			continue
		}
		if v, n := kbin.Uvarint(body[i:]); n > 0 && v > limit {
			if probe == nil {
				probe = append([]byte(nil), body...)
			}
			probe[i] &^= 0x80 // ends the uvarint here: its value drops below 128
		}
	}
	if probe == nil {
		return nil
	}
	// Clearing high bits only ever shortens uvarints, so no position in the probe reads
	// above the limit. Whether a large value in the original sits in a fixed-width field or
	// in opaque bytes (harmless) or where kmsg reads a count is unknown here; decoding the
	// probe checks that the structure around those runs holds together.
	p := kmsg.RequestForKey(req.Key())
	p.SetVersion(req.GetVersion())
	if err := p.ReadFrom(probe); err != nil {
		return ErrTagCount
	}
	return nil
}

// produceTagsOK walks a flexible (v9+) Produce body as kmsg reads it and checks every
// tagged-field section; record batches are skipped by length, never scanned.
func produceTagsOK(body []byte, version int16) bool {
	rd := kbin.Reader{Src: body}
	rd.CompactNullableString() // transactional ID
	rd.Int16()                 // acks
	rd.Int32()                 // timeout
	topics := rd.CompactArrayLen()
	for i := int32(0); i < topics && rd.Ok(); i++ {
		if version <= 12 {
			rd.Span(int(rd.Uvarint()) - 1) // topic name (compact string)
		} else {
			rd.Span(16) // topic ID
		}
		parts := rd.CompactArrayLen()
		for j := int32(0); j < parts && rd.Ok(); j++ {
			rd.Int32() // partition
			if n := rd.Uvarint(); n > 0 {
				rd.Span(int(n) - 1) // records (compact nullable bytes)
			}
			skipTags(&rd)
		}
		skipTags(&rd)
	}
	skipTags(&rd)
	return rd.Ok()
}
