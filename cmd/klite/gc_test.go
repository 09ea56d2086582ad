package main

import (
	"runtime/debug"
	"testing"
)

// TestAfterStartSetsGCPercent: the collector's target is defaultGCPercent once the broker
// serves (run leaves Go's default during start-up), and a GOGC the operator set is kept.
func TestAfterStartSetsGCPercent(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	t.Setenv("GOGC", "")
	afterStart()
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Fatalf("GC percent after start %d, want %d", got, defaultGCPercent)
	}
	t.Setenv("GOGC", "200")
	debug.SetGCPercent(200)
	afterStart()
	if got := debug.SetGCPercent(100); got != 200 {
		t.Fatalf("GC percent with GOGC=200 set: %d after start, want it kept", got)
	}
}
