package logstore

// What the S3 tier's flusher asks of the Drain: sealing tails by age (so the loss window
// after losing the disk is about the flush interval) and the tails' share of the flush lag.

import "errors"

// tailCreated is when the oldest unsealed batch was appended (ms; -1: no tail).
func (l *Log) tailCreated() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sealing != nil {
		return l.sealing.created
	}
	if l.active != nil {
		return l.active.created
	}
	return -1
}

// SealOlderThan seals every tail whose oldest batch was appended at or before cutoffMs
// (without d.mu, as SealPinning).
func (d *Drain) SealOlderThan(cutoffMs int64) error {
	d.mu.Lock()
	var logs []*Log
	for _, dl := range d.logs {
		if c := dl.log.tailCreated(); c >= 0 && c <= cutoffMs {
			logs = append(logs, dl.log)
		}
	}
	d.mu.Unlock()
	var errs []error
	for _, l := range logs {
		errs = append(errs, l.Seal())
	}
	return errors.Join(errs...)
}

// TailLag returns, per partition with an unsealed tail, its bytes and when its oldest
// batch was appended.
func (d *Drain) TailLag() map[string]PrefixLag {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]PrefixLag{}
	for key, dl := range d.logs {
		if c := dl.log.tailCreated(); c >= 0 {
			out[key] = PrefixLag{Bytes: dl.log.tailBytes(), OldestMs: c}
		}
	}
	return out
}
