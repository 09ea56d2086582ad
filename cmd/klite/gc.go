package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// The collector's percentage follows the live heap (when GOGC is not set): defaultGCPercent
// keeps peak RSS near what is live under produce load, where the live heap is tens of MB of
// pooled buffers; but under light load, with a small live heap, a quarter of it is a few MB,
// and the garbage of ordinary requests (fetch answers, small frames) made the runtime collect
// a dozen times a second: at 20,000 records/s, e2e p99 was ~2 ms at 25% against ~1.4 ms with
// collections 4x rarer. So the heap may always grow by at least gcMinHeadroom between
// collections, and the percentage is set again after each collection.
const (
	// gcMinHeadroom is the least the heap grows between collections.
	gcMinHeadroom = 16 << 20
	// maxGCPercent bounds the percentage where the live heap is tiny (an idle broker
	// allocates nothing, and hands its memory back when it goes idle: releaseMemory).
	maxGCPercent = 200
)

// gcPercentFor is the collector's percentage for live bytes of live heap.
func gcPercentFor(live uint64) int {
	p := defaultGCPercent
	if live > 0 {
		p = max(p, int(min(uint64(gcMinHeadroom)*100/live, maxGCPercent)))
	}
	return p / 5 * 5 // not a new setting for every small change of the live heap
}

// gcTunerGen numbers the tuner's runs: a run stops once another starts, or stopGCTuner.
var gcTunerGen atomic.Int64

// startGCTuner sets the percentage for the live heap after every collection: a finalizer
// on an object allocated for the purpose runs once per cycle and arms the next.
func startGCTuner() {
	gen := gcTunerGen.Add(1)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := defaultGCPercent
	var arm func()
	arm = func() {
		s := new([16]byte)
		runtime.SetFinalizer(s, func(*[16]byte) {
			if gcTunerGen.Load() != gen {
				return
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				if p := gcPercentFor(sample[0].Value.Uint64()); p != current {
					debug.SetGCPercent(p)
					current = p
				}
			}
			arm()
		})
	}
	arm()
}

// stopGCTuner stops the tuner (the percentage stays as it last set it).
func stopGCTuner() { gcTunerGen.Add(1) }
