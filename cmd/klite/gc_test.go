package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// TestAfterStartSetsGCPercent: the collector's target is defaultGCPercent once the broker
// serves (run leaves Go's default during start-up), and a GOGC the operator set is kept
// (and not tuned).
func TestAfterStartSetsGCPercent(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	defer stopGCTuner()
	t.Setenv("GOGC", "")
	afterStart()
	stopGCTuner() // checked below on its own
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Fatalf("GC percent after start %d, want %d", got, defaultGCPercent)
	}
	t.Setenv("GOGC", "200")
	debug.SetGCPercent(200)
	gen := gcTunerGen.Load()
	afterStart()
	if got := debug.SetGCPercent(100); got != 200 || gcTunerGen.Load() != gen {
		t.Fatalf("GC percent with GOGC=200 set: %d after start (tuner started: %v), want it kept", got, gcTunerGen.Load() != gen)
	}
}

// The percentage leaves the heap at least gcMinHeadroom to grow, between defaultGCPercent
// (a large live heap) and maxGCPercent (a tiny one), in steps of 5.
func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, defaultGCPercent}, {1 << 20, maxGCPercent}, {8 << 20, 200}, {24 << 20, 65},
		{64 << 20, defaultGCPercent}, {1 << 30, defaultGCPercent},
	} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// After a collection the tuner sets the percentage for the live heap (this test's is small).
func TestGCTunerFollowsLiveHeap(t *testing.T) {
	orig := debug.SetGCPercent(defaultGCPercent)
	defer debug.SetGCPercent(orig)
	startGCTuner()
	defer stopGCTuner()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/live:bytes"}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		metrics.Read(s)
		want := gcPercentFor(s[1].Value.Uint64())
		if got := int(s[0].Value.Uint64()); got == want && got != defaultGCPercent {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GC percent %d after collections, want %d for a live heap of %d bytes", s[0].Value.Uint64(), want, s[1].Value.Uint64())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
