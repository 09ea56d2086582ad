package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestCleanReadOnlyMappings(t *testing.T) {
	smaps := `00400000-00dd0000 r-xp 00000000 fd:00 123 /usr/bin/klite
Size:              10048 kB
Rss:                6832 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
00dd0000-017c5000 r--p 009d0000 fd:00 123 /usr/bin/klite
Size:              10196 kB
Anonymous:             0 kB
017c5000-0183a000 rw-p 013c5000 fd:00 123 /usr/bin/klite
Anonymous:           340 kB
0183a000-03887000 rw-p 00000000 00:00 0
Anonymous:           108 kB
03887000-03890000 r--p 01487000 fd:00 123 /usr/bin/klite
Anonymous:             8 kB
7f0000000000-7f0000001000 r--p 00000000 fd:00 456 /usr/lib/other.so
Anonymous:             0 kB
7f0000001000-7f0000002000 r-xp 00000000 fd:00 124 /usr/bin/klite (deleted)
Anonymous:             0 kB
zz-yy r-xp 00000000 fd:00 123 /usr/bin/klite
Anonymous:             0 kB
7ffc38d8e000-7ffc38daf000 rw-p 00000000 00:00 0 [stack]
Anonymous:            16 kB
`
	got := cleanReadOnlyMappings([]byte(smaps), "/usr/bin/klite")
	want := [][2]uintptr{{0x400000, 0xdd0000}, {0xdd0000, 0x17c5000}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("cleanReadOnlyMappings = %x, want %x (the executable's r-xp and r--p mappings without anonymous pages)", got, want)
	}
}

// The test binary's own code and read-only data leave its RSS (the pages it uses next
// come back), and the process goes on running that code.
func TestReleaseStartupPagesShrinksFileRSS(t *testing.T) {
	before := rssFileKB(t)
	releaseStartupPages()
	after := rssFileKB(t)
	t.Logf("RssFile %d kB before, %d kB after", before, after)
	if after > before-1024 {
		t.Fatalf("RssFile %d kB before, %d kB after; want at least a MB less", before, after)
	}
	if got := strings.Repeat("ok", 2); got != "okok" { // code runs on after the release
		t.Fatal(got)
	}
}

func rssFileKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(line, err)
			}
			return n
		}
	}
	t.Skip("no RssFile line")
	return 0
}
