package logstore

// Retention as Kafka's UnifiedLog.deleteOldSegments: three passes over the sealed segments,
// oldest first, each deleting a prefix (the active segment is never deleted):
//   - segments wholly below the log start offset (DeleteRecords);
//   - with cleanup.policy=delete, segments whose largest timestamp is more than
//     retention.ms old;
//   - with cleanup.policy=delete, the oldest segments while the log without them is still
//     at least retention.bytes (the active segment counts towards the size).
//
// The log start offset moves to the first kept segment and is checkpointed before any
// object is deleted, so a crash in between leaves only segments Open deletes again.

// EnforceRetention applies retention now and returns how many segments it deleted.
func (l *Log) EnforceRetention() (int, error) {
	n, _, err := l.EnforceRetentionBytes()
	return n, err
}

// EnforceRetentionBytes applies retention now and returns how many segments and segment
// bytes it deleted (the broker's retention metrics count them).
func (l *Log) EnforceRetentionBytes() (int, int64, error) {
	l.jobMu.Lock()
	defer l.jobMu.Unlock()
	now := l.opts.Now()
	l.mu.Lock()
	cfg := l.cfg
	n := 0
	for n < len(l.segs) && l.segs[n].next <= l.ckpt.logStart {
		n++
	}
	if cfg.Delete && cfg.RetentionMs >= 0 {
		k := 0
		for k < len(l.segs) && now-l.segs[k].maxTS > cfg.RetentionMs {
			k++
		}
		n = max(n, k)
	}
	if cfg.Delete && cfg.RetentionBytes >= 0 {
		var total int64
		for _, s := range l.segs {
			total += s.size
		}
		for _, b := range []*segBuilder{l.sealing, l.active} {
			if b != nil {
				total += b.size
			}
		}
		diff := total - cfg.RetentionBytes
		k := 0
		for k < len(l.segs) && diff-l.segs[k].size >= 0 {
			diff -= l.segs[k].size
			k++
		}
		n = max(n, k)
	}
	if n == 0 {
		l.mu.Unlock()
		return 0, 0, nil
	}
	if start := l.segs[n-1].next; start > l.ckpt.logStart {
		c := l.ckpt
		c.logStart = start
		c.cleanerOff = max(c.cleanerOff, start)
		if err := l.st.Put(l.prefix+checkpointName, c.encode()); err != nil {
			l.mu.Unlock()
			return 0, 0, err
		}
		l.ckpt = c
	}
	l.mu.Unlock()
	return l.deletePrefix(n)
}
