package main

// Memory per connection (issue 19 item 5), measured as the broker's RSS:
//
//   - stalled half-frames: connections that announce a 100 MB request, send 64 KiB of it and
//     stall. A broker that allocates announced frames up front holds (or at least reserves)
//     100 MB each; one that grows the frame as bytes arrive holds about what was sent.
//   - idle-then-active connections: connections opened and left idle, then each sends a
//     Metadata and an ApiVersions request, reads the answers and goes idle again. What an idle
//     connection keeps (read and write buffers, goroutine stacks) is the difference.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// connMemRows runs both measurements against the broker process p.
func connMemRows(p *brokerProc, stalled, idleConns int) ([]row, error) {
	var rows []row
	settle := func() int64 {
		time.Sleep(time.Second) // let the broker read what was sent
		cur, _ := p.rss()
		return cur
	}
	mb := func(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

	before := settle()
	conns, err := dialMany(p.addr, stalled)
	if err != nil {
		return nil, err
	}
	half := binary.BigEndian.AppendUint32(nil, 100_000_000)
	half = append(half, make([]byte, 64<<10)...)
	for _, c := range conns {
		if _, err := c.Write(half); err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("stalled frame: %w", err)
		}
	}
	during := settle()
	closeAll(conns)
	rows = append(rows, row{fmt.Sprintf("RSS with %d stalled 100 MB half-frames", stalled), mb(during),
		fmt.Sprintf("%s before; 64 KiB sent of each", mb(before))})

	before = settle()
	conns, err = dialMany(p.addr, idleConns)
	if err != nil {
		return nil, err
	}
	defer closeAll(conns)
	idle := settle()
	var wg sync.WaitGroup
	errs := make(chan error, len(conns))
	sem := make(chan struct{}, 64)
	for _, c := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func(c net.Conn) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := activeOnce(c); err != nil {
				errs <- err
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("idle-then-active connections: %w", err)
	}
	after := settle()
	per := func(n int64) string { return fmt.Sprintf("%.1f KB/conn", float64(n-before)/float64(len(conns))/1e3) }
	rows = append(rows,
		row{fmt.Sprintf("RSS with %d idle connections", len(conns)), mb(idle), fmt.Sprintf("%s before; %s", mb(before), per(idle))},
		row{fmt.Sprintf("RSS with %d connections idle again after a request", len(conns)), mb(after), per(after)})
	return rows, nil
}

func dialMany(addr string, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			closeAll(conns)
			return nil, fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// activeOnce sends Metadata (all topics) and ApiVersions on c and reads both answers.
func activeOnce(c net.Conn) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("klite-bench"))
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "klite-bench", "1" // Kafka's pattern, or INVALID_REQUEST
	out := append(f.AppendRequest(nil, md, 1), f.AppendRequest(nil, av, 2)...)
	if _, err := c.Write(out); err != nil {
		return err
	}
	for i := 0; i < 2; i++ {
		var sz [4]byte
		if _, err := io.ReadFull(c, sz[:]); err != nil {
			return err
		}
		if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(sz[:]))); err != nil {
			return err
		}
	}
	return nil
}
