package broker

// s3DataConfirmed is the metadata snapshot's view of the data path (the s3ConfirmedFunc
// hook of s3meta_flush.go), taken once per check: a partition none of whose sealed
// segments waits for an upload is in S3 below its Log's sealed end (DurableOffset: the
// tail is not); otherwise below the end of the leading run of its local segments that S3
// confirmed (the older ones were confirmed, or evicted, which needs confirming first).
func (b *Broker) s3DataConfirmed() func(p *partition) int64 {
	s := b.s3
	if s == nil || s.flush == nil {
		return func(*partition) int64 { return -1 }
	}
	ts := s.flush.tiered
	lag := ts.Lag()
	return func(p *partition) int64 {
		lg := p.log()
		if lg == nil {
			return -1
		}
		if l, ok := lag[p.key()]; !ok || l.Bytes == 0 {
			return lg.DurableOffset()
		}
		off, err := ts.ConfirmedOffset(p.key())
		if err != nil {
			return -1
		}
		return off
	}
}
