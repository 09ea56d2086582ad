package server

import (
	"slices"
	"sync"
)

// Frame buffers of Produce requests are reused. At a gigabyte per second of produce traffic
// a fresh buffer per request meant the runtime zeroing a gigabyte per second first (a tenth
// of the broker's CPU). Only Produce frames come back to the pool (see readLoop): the
// produce path copies the batches into the WAL and keeps no reference to the request once
// it has answered, whereas other requests may keep slices of their frame (a consumer
// group keeps its members' metadata, for one).
//
// Buffers are pooled by size class from minPooledFrame to maxPooledFrame, two classes per
// doubling (64 KiB, 96 KiB, 128 KiB, 192 KiB, ...), so a buffer is at most a third larger
// than its frame (a typical 6 MB request of six 1 MB batches takes a 6 MiB buffer, not 8);
// smaller frames are cheap to allocate and larger ones rare. sync.Pool lets idle buffers go
// at the next garbage collections, so an idle broker keeps none.
const (
	minPooledFrame = 64 << 10
	maxPooledFrame = 16 << 20
)

// frameClassSizes are the buffer sizes of the classes, ascending.
var frameClassSizes = func() []int {
	var out []int
	for n := minPooledFrame; n <= maxPooledFrame; n *= 2 {
		out = append(out, n)
		if n < maxPooledFrame {
			out = append(out, n+n/2)
		}
	}
	return out
}()

var framePools = make([]sync.Pool, len(frameClassSizes))

// frameClass returns the pool index for a frame of n bytes, or -1 if n is not pooled.
func frameClass(n int) int {
	if n < minPooledFrame || n > maxPooledFrame {
		return -1
	}
	i, _ := slices.BinarySearch(frameClassSizes, n)
	return i
}

// putFrame hands a buffer from readPooledFrame back for reuse.
func putFrame(b *[]byte) {
	if b == nil {
		return
	}
	if c := frameClass(cap(*b)); c >= 0 && frameClassSizes[c] == cap(*b) {
		framePools[c].Put(b)
	}
}

// getFrame returns a buffer of n bytes, from the pool when n is in its range (pooled is then
// what putFrame takes back).
func getFrame(n int) (frame []byte, pooled *[]byte) {
	c := frameClass(n)
	if c < 0 {
		return make([]byte, n), nil
	}
	pooled, _ = framePools[c].Get().(*[]byte)
	if pooled == nil {
		b := make([]byte, frameClassSizes[c])
		pooled = &b
	}
	return (*pooled)[:n], pooled
}
