package logstore

// The checkpoint object ("<prefix>checkpoint") holds the partition's durable log start
// offset and the cleaner's first dirty offset. It is rewritten whole with Store.Put, so a
// crash leaves the old or the new one. 28 bytes, big-endian:
//
//	 off size field
//	   0    4 magic "KLCP"
//	   4    1 version (1)
//	   5    3 reserved (0)
//	   8    8 log start offset
//	  16    8 cleaner offset (first offset not yet compacted)
//	  24    4 CRC-32C of bytes 0..23

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

const (
	checkpointName = "checkpoint"
	checkpointLen  = 28
)

type checkpoint struct {
	logStart, cleanerOff int64
}

func (c checkpoint) encode() []byte {
	b := make([]byte, 0, checkpointLen)
	b = append(b, "KLCP"...)
	b = append(b, 1, 0, 0, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(c.logStart))
	b = binary.BigEndian.AppendUint64(b, uint64(c.cleanerOff))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32c))
}

func decodeCheckpoint(b []byte) (checkpoint, error) {
	var c checkpoint
	if len(b) != checkpointLen || string(b[:4]) != "KLCP" || b[4] != 1 {
		return c, fmt.Errorf("logstore: checkpoint: bad header (%d bytes)", len(b))
	}
	if crc32.Checksum(b[:24], crc32c) != binary.BigEndian.Uint32(b[24:]) {
		return c, fmt.Errorf("logstore: checkpoint: CRC mismatch")
	}
	c.logStart = int64(binary.BigEndian.Uint64(b[8:]))
	c.cleanerOff = int64(binary.BigEndian.Uint64(b[16:]))
	if c.logStart < 0 || c.cleanerOff < 0 || c.logStart > maxOffset || c.cleanerOff > maxOffset+1 {
		return c, fmt.Errorf("logstore: checkpoint: offsets %d, %d", c.logStart, c.cleanerOff)
	}
	return c, nil
}
