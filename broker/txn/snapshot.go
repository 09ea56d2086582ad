package txn

import "sort"

// Snapshot returns the records that rebuild every transactional ID's state (what a
// compacted txns.log holds), sorted by ID, for the S3 tier's metadata snapshot
// (broker/s3meta.go). Safe after Close.
func (c *Coordinator) Snapshot() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.txns))
	for id := range c.txns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([][]byte, 0, len(ids))
	for _, id := range ids {
		out = append(out, encodeRecord(c.txns[id]))
	}
	return out
}
