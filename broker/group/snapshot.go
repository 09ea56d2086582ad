package group

// Snapshot returns the records that rebuild the coordinator's current state (what a
// compacted groups.log holds: group configs, group state, committed offsets), for the S3
// tier's metadata snapshot (broker/s3meta.go). It runs on the loop; after Close it reads
// the final state, which no goroutine changes any more.
func (c *Coordinator) Snapshot() [][]byte {
	ch := make(chan [][]byte, 1)
	if c.post(func() { ch <- c.snapshot() }) {
		select {
		case recs := <-ch:
			return recs
		case <-c.done:
		}
	} else {
		<-c.done
	}
	select {
	case recs := <-ch: // ran just before the loop ended
		return recs
	default:
		return c.snapshot()
	}
}
