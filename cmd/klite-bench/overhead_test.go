package main

import (
	"math"
	"testing"
)

// TestOverheadStats: the summary the metrics overhead phase prints. With rounds in
// alternating order, a position effect (the second run of a round slower by a factor p)
// cancels out of the geometric mean of the ratios but not out of their median.
func TestOverheadStats(t *testing.T) {
	const p = 0.8 // the second run of each round is 20% slower
	var ratios []float64
	for r := 0; r < 8; r++ {
		on, off := 100.0, 100.0 // no real difference
		if r%2 == 0 {
			off *= p // on first, off second
		} else {
			on *= p
		}
		ratios = append(ratios, on/off)
	}
	if g := geoMean(ratios); math.Abs(g-1) > 1e-12 {
		t.Fatalf("geometric mean %v, want 1: the position effect should cancel", g)
	}
	if m := medianOf([]float64{3, 1, 2}); m != 2 {
		t.Fatalf("median of 3 = %v", m)
	}
	if m := medianOf([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Fatalf("median of 4 = %v", m)
	}
	mean, sd := meanStd([]float64{1, 2, 3, 4})
	if mean != 2.5 || math.Abs(sd-math.Sqrt(5.0/3)) > 1e-12 {
		t.Fatalf("mean %v sd %v", mean, sd)
	}
	if lo, hi := minMax([]float64{2, 0.5, 3}); lo != 0.5 || hi != 3 {
		t.Fatalf("range %v..%v", lo, hi)
	}
	if geoMean(nil) != 0 || medianOf(nil) != 0 {
		t.Fatal("empty input")
	}
}
