package main

// The disk probe: O_DIRECT write+fsync throughput at several write sizes, the machine
// limit the produce figures are read against (machine.go has the others).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
	"unsafe"
)

type probeResult struct {
	size int
	mbps float64
}

type probeMode string

const (
	probePlain  probeMode = "write+fsync"
	probeDrop   probeMode = "write+fsync+drop-cache"
	probeDirect probeMode = "O_DIRECT write+fsync"
)

// diskPeaks keeps the best probe figure overall and of the plain probe.
type diskPeaks struct {
	best     float64
	bestMode probeMode
	plain    float64
}

func (d *diskPeaks) note(mode probeMode, mbps float64) {
	if mbps > d.best {
		d.best, d.bestMode = mbps, mode
	}
	if mode == probePlain {
		d.plain = max(d.plain, mbps)
	}
}

// probeRuns is how often each write size is measured; the median counts. On this kind of
// virtual machine single runs swing by a factor of two or more.
const probeRuns = 3

// diskProbe writes sequentially with an fsync after every write, at several write sizes, and
// reports the throughput of each (the median of probeRuns runs): the ceiling a durable log
// on this disk can reach.
//   - probePlain: write through the page cache, fsync.
//   - probeDrop: the same, dropping each fsynced write from the page cache, as klite's WAL
//     does when it writes buffered. The kernel then reuses those pages: on this kind of
//     virtual machine, writing into never-used page-cache pages costs several times more
//     CPU than the copy itself, and without it the figure swung between ~550 and ~1700 MB/s
//     depending on what earlier runs had left free.
//   - probeDirect: O_DIRECT writes from an aligned buffer, fsync, as klite's WAL writes by
//     default. Skipped (no rows) where the file system refuses O_DIRECT.
func diskProbe(dir string, mode probeMode) ([]probeResult, error) {
	sizes := []int{256 << 10, 1 << 20, 4 << 20, 16 << 20}
	var out []probeResult
	for _, size := range sizes {
		var runs []float64
		for range probeRuns {
			mbps, err := probeOnce(dir, mode, size)
			if errors.Is(err, errNoDirect) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			runs = append(runs, mbps)
		}
		sort.Float64s(runs)
		out = append(out, probeResult{size, runs[len(runs)/2]})
	}
	return out, nil
}

var errNoDirect = errors.New("O_DIRECT not supported here")

// probeOnce writes size-byte blocks with an fsync after each, bounded by both bytes (1 GiB)
// and time (1 s), and returns MB/s.
func probeOnce(dir string, mode probeMode, size int) (float64, error) {
	flag := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if mode == probeDirect {
		if oDirect == 0 {
			return 0, errNoDirect
		}
		flag |= oDirect
	}
	name := filepath.Join(dir, fmt.Sprintf("diskprobe-%d", time.Now().UnixNano()))
	f, err := os.OpenFile(name, flag, 0o644)
	if err != nil {
		if mode == probeDirect && errors.Is(err, syscall.EINVAL) {
			return 0, errNoDirect
		}
		return 0, err
	}
	defer os.Remove(name)
	defer f.Close()
	buf := alignedBuf(size)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	var written int64
	start := time.Now()
	for written < 1<<30 && time.Since(start) < time.Second {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		if mode == probeDrop {
			dropPageCache(f, written, int64(size))
		}
		written += int64(size)
	}
	return float64(written) / time.Since(start).Seconds() / 1e6, nil
}

// alignedBuf returns n bytes starting at a 4096-byte boundary (O_DIRECT needs aligned memory).
func alignedBuf(n int) []byte {
	b := make([]byte, n+4096)
	skip := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % 4096); r != 0 {
		skip = 4096 - r
	}
	return b[skip : skip+n]
}
