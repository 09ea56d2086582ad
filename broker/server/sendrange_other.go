//go:build !linux

package server

import (
	"io"
	"net"
)

// sendRange sends fr through memory, a writeChunk per deadline: reading at explicit offsets
// (the file may be shared by readers, see logstore's fdcache.go) hides the file from the
// runtime's sendfile, which other systems' klite builds do without.
func sendRange(nc net.Conn, fr FileRange, deadline func()) error {
	for off, end := fr.Off, fr.Off+fr.Len; off < end; {
		n := min(end-off, writeChunk)
		deadline()
		m, err := io.Copy(nc, io.NewSectionReader(fr.File, off, n))
		if err == nil && m < n {
			err = io.ErrUnexpectedEOF // the file ended early: the frame cannot be completed
		}
		if err != nil {
			return err
		}
		off += m
	}
	return nil
}
