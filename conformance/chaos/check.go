package chaos

import (
	"fmt"
	"sort"
	"time"
)

// Anomaly kinds Check reports.
const (
	Lost               = "lost"                // acknowledged (and committed) but never read
	Duplicate          = "duplicate"           // one value at two offsets
	InconsistentOffset = "inconsistent-offset" // one offset with two values (reads or acks)
	NonMonotonic       = "non-monotonic-poll"  // a session read an offset not above its previous one
	PollSkip           = "poll-skip"           // a session jumped over a record it should have read
	AbortedRead        = "aborted-read"        // read_committed saw an aborted transaction's value
	UncommittedRead    = "uncommitted-read"    // read_committed saw a value before its commit was asked
	OffsetBackwards    = "offset-backwards"    // a group offset read back below one acknowledged
)

// Options say which promises the workload was given.
type Options struct {
	// AllowDuplicates: a non-idempotent producer's retries may legitimately write a value twice.
	AllowDuplicates bool
	// Compacted: the topic is compacted, values carry their key (KeyOf), and compaction may
	// remove a record once a later one of the same key exists. A value is then lost only
	// when neither it nor a later record of its key is read: the latest value per key is
	// never lost. Written so it holds whether or not compaction has acted yet.
	Compacted bool
	// LogStart, when set (retention deletes old records), is each partition's log start
	// offset after the final reads: records below it may be gone, so they are neither lost
	// when missing nor skipped when a session jumps over them. Every acknowledged record at
	// or above it is expected.
	LogStart map[int32]int64
}

// deleted reports whether retention may have removed offset o of partition p.
func (o Options) deleted(p int32, off int64) bool {
	return o.LogStart != nil && off < o.LogStart[p]
}

// Anomaly is one broken promise, with enough detail to find it in the broker's data.
type Anomaly struct {
	Kind   string
	Detail string
}

// Report is Check's result.
type Report struct {
	Ops, Acked, Read int
	// GroupCommits and GroupFetches count acknowledged and read-back group offsets.
	GroupCommits, GroupFetches int
	Lost, Duplicated           int
	Anomalies                  []Anomaly
	// AllowedDuplicates counts duplicates a non-idempotent producer may make (not anomalies).
	AllowedDuplicates int
	// Expired counts acknowledged records below the log start (Options.LogStart): not expected.
	Expired int
}

// Count returns the anomalies of one kind.
func (r Report) Count(kind string) int {
	n := 0
	for _, a := range r.Anomalies {
		if a.Kind == kind {
			n++
		}
	}
	return n
}

// Other counts anomalies that are neither lost writes nor duplicates.
func (r Report) Other() int { return len(r.Anomalies) - r.Count(Lost) - r.Count(Duplicate) }

// OK reports whether no promise was broken.
func (r Report) OK() bool { return len(r.Anomalies) == 0 }

type po struct {
	p int32
	o int64
}

// Check analyses a finished history. It is pure: the same history gives the same report.
func Check(h *History, opt Options) Report {
	h.mu.Lock()
	defer h.mu.Unlock()
	var r Report
	r.Ops = h.Ops
	add := func(kind, format string, args ...any) {
		r.Anomalies = append(r.Anomalies, Anomaly{kind, fmt.Sprintf(format, args...)})
	}
	writeOf := map[string]Write{}
	for _, w := range h.Writes {
		writeOf[w.Value] = w
	}
	outcome := func(v string) (TxnOutcome, *Txn) {
		w, ok := writeOf[v]
		if !ok || w.Txn == 0 {
			return NoTxn, nil
		}
		t := h.Txns[w.Txn]
		if t == nil {
			// Begun but never ended by the producer: the broker must abort it.
			return Aborted, nil
		}
		return t.Outcome, t
	}

	// What each offset holds, from acknowledgements and reads.
	at := map[po]string{}
	inconsistent := map[po]bool{}
	note := func(k po, v, how string) {
		if old, ok := at[k]; ok && old != v {
			if !inconsistent[k] {
				add(InconsistentOffset, "partition %d offset %d holds %q and %q (%s)", k.p, k.o, old, v, how)
			}
			inconsistent[k] = true
			return
		}
		at[k] = v
	}
	for _, w := range h.Writes {
		if w.Acked {
			r.Acked++
			note(po{w.Partition, w.Offset}, w.Value, "acknowledged")
		}
	}
	offsetsOf := map[string]map[po]bool{}
	for _, p := range h.Polls {
		for _, rd := range p.Reads {
			r.Read++
			k := po{rd.Partition, rd.Offset}
			note(k, rd.Value, "read")
			if offsetsOf[rd.Value] == nil {
				offsetsOf[rd.Value] = map[po]bool{}
			}
			offsetsOf[rd.Value][k] = true
		}
	}
	// An acknowledged offset also places the value there.
	for _, w := range h.Writes {
		if w.Acked && offsetsOf[w.Value] != nil {
			offsetsOf[w.Value][po{w.Partition, w.Offset}] = true
		}
	}

	// Lost: acknowledged, and (in a transaction) committed, yet never read by anyone or, when
	// there are final reads, missing from them.
	final := map[string]bool{}
	hasFinal := false
	for _, p := range h.Polls {
		if p.Final {
			hasFinal = true
			for _, rd := range p.Reads {
				final[rd.Value] = true
			}
		}
	}
	// With compaction: the highest offset read per partition and key (in the final reads,
	// when there are some), which hides every value of that key below it.
	type pk struct {
		p int32
		k string
	}
	latestRead := map[pk]int64{}
	if opt.Compacted {
		for _, p := range h.Polls {
			if hasFinal && !p.Final {
				continue
			}
			for _, rd := range p.Reads {
				k := pk{rd.Partition, KeyOf(rd.Value)}
				if o, ok := latestRead[k]; !ok || rd.Offset > o {
					latestRead[k] = rd.Offset
				}
			}
		}
	}
	for _, w := range h.Writes {
		if !w.Acked {
			continue
		}
		if oc, _ := outcome(w.Value); oc != NoTxn && oc != Committed {
			continue
		}
		if opt.deleted(w.Partition, w.Offset) {
			r.Expired++
			continue
		}
		if opt.Compacted {
			if o, ok := latestRead[pk{w.Partition, KeyOf(w.Value)}]; ok && o > w.Offset {
				continue // superseded: compaction may have removed it
			}
		}
		switch {
		case len(offsetsOf[w.Value]) == 0:
			r.Lost++
			add(Lost, "%q acknowledged at partition %d offset %d, never read", w.Value, w.Partition, w.Offset)
		case hasFinal && !final[w.Value]:
			r.Lost++
			add(Lost, "%q acknowledged at partition %d offset %d, read, then gone from the final reads", w.Value, w.Partition, w.Offset)
		}
	}
	// Duplicates: one value at several offsets.
	values := make([]string, 0, len(offsetsOf))
	for v := range offsetsOf {
		values = append(values, v)
	}
	sort.Strings(values)
	for _, v := range values {
		if n := len(offsetsOf[v]); n > 1 {
			ks := make([]po, 0, n)
			for k := range offsetsOf[v] {
				ks = append(ks, k)
			}
			sort.Slice(ks, func(i, j int) bool { return ks[i].p < ks[j].p || ks[i].p == ks[j].p && ks[i].o < ks[j].o })
			r.Duplicated++
			if opt.AllowDuplicates {
				r.AllowedDuplicates++
				continue
			}
			add(Duplicate, "%q at %d offsets %v", v, n, ks)
		}
	}

	// Per session and partition: offsets strictly increase and skip nothing visible.
	visible := func(v string, rc bool) bool {
		if !rc {
			return true
		}
		oc, _ := outcome(v)
		return oc == NoTxn || oc == Committed
	}
	byPart := map[int32][]int64{} // every known offset per partition, sorted
	for k := range at {
		byPart[k.p] = append(byPart[k.p], k.o)
	}
	for p := range byPart {
		sort.Slice(byPart[p], func(i, j int) bool { return byPart[p][i] < byPart[p][j] })
	}
	// With compaction a session may jump over a record a later one of its key supersedes.
	latestKnown := map[pk]int64{}
	if opt.Compacted {
		for k, v := range at {
			if o, ok := latestKnown[pk{k.p, KeyOf(v)}]; !ok || k.o > o {
				latestKnown[pk{k.p, KeyOf(v)}] = k.o
			}
		}
	}
	superseded := func(p int32, o int64, v string) bool {
		return opt.Compacted && latestKnown[pk{p, KeyOf(v)}] > o
	}
	type sp struct {
		s int
		p int32
	}
	last := map[sp]int64{}
	for _, p := range h.Polls {
		for _, rd := range p.Reads {
			k := sp{p.Session, rd.Partition}
			prev, seen := last[k]
			last[k] = rd.Offset
			if p.ReadCommitted {
				switch oc, t := outcome(rd.Value); {
				case oc == Aborted:
					add(AbortedRead, "session %d read %q (partition %d offset %d) of aborted transaction %d",
						p.Session, rd.Value, rd.Partition, rd.Offset, writeOf[rd.Value].Txn)
				case t != nil && (oc == Committed || oc == Unknown) && p.At.Before(t.CommitAt):
					add(UncommittedRead, "session %d read %q (partition %d offset %d) at %s, before transaction %d's commit at %s",
						p.Session, rd.Value, rd.Partition, rd.Offset, p.At.Format("15:04:05.000"), t.ID, t.CommitAt.Format("15:04:05.000"))
				}
			}
			if !seen {
				continue
			}
			if rd.Offset <= prev {
				add(NonMonotonic, "session %d partition %d read offset %d after %d", p.Session, rd.Partition, rd.Offset, prev)
				continue
			}
			offs := byPart[rd.Partition]
			i := sort.Search(len(offs), func(i int) bool { return offs[i] > prev })
			for ; i < len(offs) && offs[i] < rd.Offset; i++ {
				if v := at[po{rd.Partition, offs[i]}]; visible(v, p.ReadCommitted) && !superseded(rd.Partition, offs[i], v) && !opt.deleted(rd.Partition, offs[i]) {
					add(PollSkip, "session %d partition %d jumped from offset %d to %d over %d (%q)",
						p.Session, rd.Partition, prev, rd.Offset, offs[i], v)
					break
				}
			}
		}
	}

	// Group offsets: one read back must not be below one acknowledged before it was asked.
	type gp struct {
		g string
		p int32
	}
	type ack struct {
		at  time.Time
		max int64 // the highest offset acknowledged up to at
	}
	acks := map[gp][]ack{}
	var fetches []OffsetCommit
	for i, c := range h.Commits {
		if c.Fetched {
			if c.SentAt.IsZero() {
				// Bound by every commit recorded before it: just after the last of them.
				for j := i - 1; j >= 0; j-- {
					if !h.Commits[j].Fetched {
						c.SentAt = h.Commits[j].At.Add(time.Nanosecond)
						break
					}
				}
			}
			fetches = append(fetches, c)
			continue
		}
		r.GroupCommits++
		k := gp{c.Group, c.Partition}
		acks[k] = append(acks[k], ack{at: c.At, max: c.Offset})
	}
	for k, as := range acks {
		sort.SliceStable(as, func(i, j int) bool { return as[i].at.Before(as[j].at) })
		for i := 1; i < len(as); i++ {
			as[i].max = max(as[i].max, as[i-1].max)
		}
		acks[k] = as
	}
	for _, c := range fetches {
		r.GroupFetches++
		as := acks[gp{c.Group, c.Partition}]
		n := sort.Search(len(as), func(i int) bool { return !as[i].at.Before(c.SentAt) })
		if n > 0 && c.Offset < as[n-1].max {
			add(OffsetBackwards, "group %s partition %d: offset %d read back after %d was acknowledged", c.Group, c.Partition, c.Offset, as[n-1].max)
		}
	}
	return r
}
