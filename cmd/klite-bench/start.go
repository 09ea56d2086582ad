package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// startKlite starts the broker on a free loopback port and measures the time from exec to the
// first ApiVersions answer.
func startKlite(bin, dataDir string, extra ...string) (*brokerProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return startKliteAt(bin, dataDir, addr, nil, 10*time.Second, extra...)
}

// startKliteAt starts the broker on addr with env added to this process's environment and
// extra flags, and waits up to wait for its first ApiVersions answer (a restart over a long
// history may take a while).
func startKliteAt(bin, dataDir, addr string, env []string, wait time.Duration, extra ...string) (*brokerProc, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("klite binary %s: %w (run 'make build')", bin, err)
	}
	cmd := exec.Command(bin, append([]string{"--listen", addr, "--data-dir", dataDir, "--log-level", "warn"}, extra...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &brokerProc{cmd: cmd, addr: addr, started: start}
	deadline := start.Add(wait)
	for time.Now().Before(deadline) {
		if apiVersionsOnce(addr) == nil {
			p.startup = time.Since(start)
			return p, nil
		}
		time.Sleep(200 * time.Microsecond)
	}
	p.stop()
	return nil, fmt.Errorf("klite did not answer ApiVersions on %s within %s", addr, wait)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// apiVersionsOnce sends one ApiVersions v3 request and checks the answer decodes cleanly.
func apiVersionsOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "klite-bench", "1"
	// Request header v2: api key, version, correlation id, client id, empty tagged fields.
	body := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	body = binary.BigEndian.AppendUint16(body, uint16(req.Version))
	body = binary.BigEndian.AppendUint32(body, 1)
	body = binary.BigEndian.AppendUint16(body, uint16(len("bench")))
	body = append(body, "bench"...)
	body = append(body, 0)
	body = req.AppendTo(body)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := c.Write(append(frame, body...)); err != nil {
		return err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 4 || n > 1<<20 {
		return fmt.Errorf("bad response length %d", n)
	}
	rest := make([]byte, n-4)
	if _, err := io.ReadFull(c, rest); err != nil {
		return err
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = req.Version
	if err := resp.ReadFrom(rest); err != nil {
		return err
	}
	if resp.ErrorCode != 0 {
		return fmt.Errorf("ApiVersions error code %d", resp.ErrorCode)
	}
	return nil
}
