package storage

// Preallocation of the current segment (WALOptions.PreallocBytes, direct mode only).
//
// Each group commit writes the segment's next blocks and fsyncs them. Written past the
// file's end, the write also changes the file's size and extent map, so the fsync writes
// metadata blocks too and waits for them. Measured on this project's build machine (a
// virtual machine, ext4), a 32 KiB direct write plus fsync took 291 µs (p50) and 680 µs
// (p99) of wall time and 151 µs of CPU when it extended the file, against 147 µs, 316 µs
// and 74 µs when it overwrote blocks already written.
//
// So a small commit that grows the file grows it by PreallocBytes more: right after its own
// write the writer writes that many zeros past it (a second direct write), and the commits
// that follow overwrite them until one grows the file again. The metadata then changes once
// per PreallocBytes instead of once per commit, at the cost of writing the WAL's bytes twice
// (zeros, then data). Only a commit of less than a quarter of PreallocBytes does it: the
// saving is per commit and the cost per byte, so it pays for many small commits (the
// latency-bound loads), not for few large ones (Kafka's ProducerPerformance, ~90 KB a
// commit, lost throughput and CPU with it; a thousand partitions producing through the WAL
// lost a fifth of their throughput when zeros were written ahead at any rate).
//
// Everything happens on the writer, in order: no zero is ever written where an entry is or
// will be before the writer itself writes it. A failed zero write (a full disk) is ignored:
// the entry before it is written, and the next commit extends the file as it would without.
//
// On disk the region is zeros after the last entry, so the recovery rule for a direct
// write's padding covers it: zeros up to the end of the last segment, or after a segment's
// seal, end the segment (wal_recovery.go). A restart cuts the last segment at its last entry
// (openTail); a rotated segment keeps its zeros until it is deleted.
//
// An earlier version kept 8 MiB ahead from a goroutine of its own (zeros written and
// fsynced in the background, a MiB at a time): it halved the mean fsync just as well, but
// its zeros reached the disk at fsyncs of their own, which the commits' fsyncs then waited
// for: at 20,000 records/s the e2e p99.9 was worse in six rounds of seven.

// prepareAhead writes PreallocBytes of zeros at end, the block-aligned end of a write of n
// bytes of entries just made to f, if that write grew the prepared region and n is less
// than a quarter of PreallocBytes.
// Called by the writer after a successful direct write (with fileMu held, or with
// w.writing set).
func (w *fileWAL) prepareAhead(f writeFile, end int64, n int) {
	step := w.opts.PreallocBytes
	if step <= 0 || int64(n) >= step/4 {
		return
	}
	if end <= w.preEnd {
		return
	}
	w.preEnd = end
	if len(w.zeros) < int(step) {
		w.zeros = alignedBuf(int(step))[:step]
	}
	if _, err := f.WriteAt(w.zeros, end); err == nil {
		w.preEnd = end + step
	}
}

// unprepare forgets the current segment's prepared region (a new segment, or the segment
// cut back). Called with fileMu held, or before the writer runs.
func (w *fileWAL) unprepare() {
	w.preEnd = 0
}
