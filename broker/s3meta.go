package broker

// The metadata snapshot the S3 tier keeps at s3://BUCKET/PREFIX/meta/state.snap: the whole
// state a broker needs besides the partition segments, so that a broker started on an empty
// data directory with the same bucket and prefix comes back (s3_restore.go). One object, so
// that one atomic PUT replaces all of it: the groups' offsets, the transactions and the
// producer windows it holds were captured together, and the partition segments they
// describe were confirmed in S3 before it was written (s3meta_flush.go).
//
// All integers big-endian.
//
//	 off  size  field
//	   0     4  magic "KS3M"
//	   4     1  format version (1)
//	   5     3  reserved (0)
//	   8     4  CRC-32C (Castagnoli) of every byte from 12 to the end
//	  12     8  captured at (Unix milliseconds, the writer's clock; informational)
//	  20     4  section count, then per section:
//	              1  kind: 1 metadata log records (meta.log: cluster ID, topics and configs,
//	                 deleted topic IDs, producer-ID blocks, SCRAM credentials, ACLs, client
//	                 quotas, dynamic broker configs, DeleteRecords log starts),
//	                 2 group log records (groups.log: committed offsets, group state),
//	                 3 transaction log records (txns.log),
//	                 4 producer-state snapshot (producers.snapshot's own format, its own CRC)
//	              4  length of the payload, then the payload. Kinds 1-3: a record count (4)
//	                 then per record its length (4) and its bytes, exactly as the local log
//	                 holds it (JSON); replaying them rebuilds the state, as a compacted log.
//
// A section kind appears at most once; unknown kinds are refused (written by a newer klite).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

const (
	s3MetaMagic   = "KS3M"
	s3MetaVersion = 1
	s3MetaHeader  = 24
	// s3MetaObject is the snapshot's name under PREFIX/meta/.
	s3MetaObject = "state.snap"
	// s3MetaMaxRecord bounds one record (the local logs refuse larger ones too).
	s3MetaMaxRecord = 64 << 20
)

// Section kinds.
const (
	s3SecMeta      = 1
	s3SecGroups    = 2
	s3SecTxns      = 3
	s3SecProducers = 4
)

// s3MetaSnapshot is the decoded content of state.snap.
type s3MetaSnapshot struct {
	capturedMs int64
	meta       [][]byte // meta.log records
	groups     [][]byte // groups.log records
	txns       [][]byte // txns.log records
	producers  []byte   // producers.snapshot bytes (nil: none)
}

func (s *s3MetaSnapshot) encode() []byte {
	be := binary.BigEndian
	out := make([]byte, s3MetaHeader, 4096)
	copy(out, s3MetaMagic)
	out[4] = s3MetaVersion
	be.PutUint64(out[12:], uint64(s.capturedMs))
	n := 3
	if s.producers != nil {
		n++
	}
	be.PutUint32(out[20:], uint32(n))
	records := func(kind byte, recs [][]byte) {
		size := 4
		for _, r := range recs {
			size += 4 + len(r)
		}
		out = append(out, kind)
		out = be.AppendUint32(out, uint32(size))
		out = be.AppendUint32(out, uint32(len(recs)))
		for _, r := range recs {
			out = be.AppendUint32(out, uint32(len(r)))
			out = append(out, r...)
		}
	}
	records(s3SecMeta, s.meta)
	records(s3SecGroups, s.groups)
	records(s3SecTxns, s.txns)
	if s.producers != nil {
		out = append(out, s3SecProducers)
		out = be.AppendUint32(out, uint32(len(s.producers)))
		out = append(out, s.producers...)
	}
	be.PutUint32(out[8:], crc32.Checksum(out[12:], crc32c))
	return out
}

var errS3Meta = errors.New("S3 metadata snapshot")

// decodeS3MetaSnapshot checks and decodes state.snap; any damage is an error wrapping
// errS3Meta, never a panic or a partial result.
func decodeS3MetaSnapshot(b []byte) (*s3MetaSnapshot, error) {
	be := binary.BigEndian
	if len(b) < s3MetaHeader || string(b[:4]) != s3MetaMagic {
		return nil, fmt.Errorf("%w: not a klite metadata snapshot (%d bytes)", errS3Meta, len(b))
	}
	if b[4] != s3MetaVersion {
		return nil, fmt.Errorf("%w: format version %d; this build reads version %d (written by a newer klite? downgrades are not supported)", errS3Meta, b[4], s3MetaVersion)
	}
	if got, want := crc32.Checksum(b[12:], crc32c), be.Uint32(b[8:]); got != want {
		return nil, fmt.Errorf("%w: CRC mismatch (stored %08x, computed %08x)", errS3Meta, want, got)
	}
	s := &s3MetaSnapshot{capturedMs: int64(be.Uint64(b[12:]))}
	count := be.Uint32(b[20:])
	rest := b[s3MetaHeader:]
	seen := map[byte]bool{}
	for i := uint32(0); i < count; i++ {
		if len(rest) < 5 {
			return nil, fmt.Errorf("%w: section %d truncated", errS3Meta, i)
		}
		kind, size := rest[0], be.Uint32(rest[1:])
		rest = rest[5:]
		if uint64(size) > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: section %d of %d bytes, %d left", errS3Meta, i, size, len(rest))
		}
		payload := rest[:size]
		rest = rest[size:]
		if seen[kind] {
			return nil, fmt.Errorf("%w: section kind %d twice", errS3Meta, kind)
		}
		seen[kind] = true
		var err error
		switch kind {
		case s3SecMeta:
			s.meta, err = decodeS3MetaRecords(payload)
		case s3SecGroups:
			s.groups, err = decodeS3MetaRecords(payload)
		case s3SecTxns:
			s.txns, err = decodeS3MetaRecords(payload)
		case s3SecProducers:
			s.producers = payload
		default:
			err = fmt.Errorf("unknown section kind %d (written by a newer klite?)", kind)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: section %d: %v", errS3Meta, i, err)
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last section", errS3Meta, len(rest))
	}
	if !seen[s3SecMeta] {
		return nil, fmt.Errorf("%w: no metadata log section", errS3Meta)
	}
	return s, nil
}

func decodeS3MetaRecords(p []byte) ([][]byte, error) {
	be := binary.BigEndian
	if len(p) < 4 {
		return nil, errors.New("record count truncated")
	}
	n := be.Uint32(p)
	p = p[4:]
	if uint64(n)*4 > uint64(len(p)) {
		return nil, fmt.Errorf("%d records in %d bytes", n, len(p))
	}
	recs := make([][]byte, 0, n)
	for i := uint32(0); i < n; i++ {
		if len(p) < 4 {
			return nil, fmt.Errorf("record %d truncated", i)
		}
		l := be.Uint32(p)
		p = p[4:]
		if l > s3MetaMaxRecord || uint64(l) > uint64(len(p)) {
			return nil, fmt.Errorf("record %d of %d bytes, %d left", i, l, len(p))
		}
		recs = append(recs, p[:l:l])
		p = p[l:]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%d bytes after the last record", len(p))
	}
	return recs, nil
}
