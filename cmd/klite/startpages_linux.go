package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// releaseStartupPages unmaps the pages of the executable's code and read-only data that
// the process has mapped so far (MADV_DONTNEED on its read-only file mappings). Start-up
// runs the init code of every package, and the kernel maps 64 KiB around each page it
// faults in: about 14 MB of the idle broker's RSS was such pages, most never used again.
// The pages stay in the page cache (a later use maps them back without reading the disk)
// but no longer count in the RSS, and the kernel can reclaim them when memory is short.
// Writable mappings are never touched, nor a read-only one holding a page of its own (the
// relocated data a position-independent build protects after start-up: dropping it would
// bring back the file's unrelocated bytes). Nothing is done where /proc/self/smaps cannot
// be read.
func releaseStartupPages() {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return
	}
	for _, r := range cleanReadOnlyMappings(smaps, exe) {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_DONTNEED)
	}
}

// cleanReadOnlyMappings returns the [start, end) address ranges of the /proc/self/smaps
// mappings of path that are read-only (r-xp, r--p) and hold only the file's pages
// (Anonymous: 0 kB).
func cleanReadOnlyMappings(smaps []byte, path string) [][2]uintptr {
	var out [][2]uintptr
	var cur [2]uintptr
	var ok bool // cur is a read-only mapping of path, no anonymous page seen yet
	end := func() {
		if ok {
			out = append(out, cur)
		}
		ok = false
	}
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Text()
		if v, isAnon := strings.CutPrefix(line, "Anonymous:"); isAnon {
			if strings.TrimSpace(v) != "0 kB" {
				ok = false
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 5 || !strings.Contains(f[0], "-") || strings.HasSuffix(f[0], ":") {
			continue // another field of the mapping
		}
		end() // a mapping's first line: the previous one is complete
		if len(f) != 6 || f[5] != path || f[1] != "r-xp" && f[1] != "r--p" {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		stop, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || stop <= start || start%uint64(os.Getpagesize()) != 0 {
			continue
		}
		cur, ok = [2]uintptr{uintptr(start), uintptr(stop)}, true
	}
	end()
	return out
}
