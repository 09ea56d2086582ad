package chaos

import (
	"strings"
	"testing"
	"time"
)

// hist builds a history by hand: acknowledged writes v@p/o, and one session's poll per slice.
func acked(h *History, v string, p int32, o int64, txn int) {
	h.AddWrite(Write{Value: v, Partition: p, Acked: true, Offset: o, Txn: txn})
}

func poll(h *History, session int, rc bool, at time.Time, reads ...Read) {
	h.AddPoll(Poll{Session: session, ReadCommitted: rc, At: at, Reads: reads})
}

func only(t *testing.T, r Report, kind string, n int) {
	t.Helper()
	if got := r.Count(kind); got != n || len(r.Anomalies) != n {
		t.Fatalf("want exactly %d %s, got %+v", n, kind, r.Anomalies)
	}
}

func TestCleanHistory(t *testing.T) {
	h := NewHistory()
	acked(h, "a", 0, 0, 0)
	acked(h, "b", 0, 1, 0)
	acked(h, "c", 1, 0, 0)
	h.AddWrite(Write{Value: "d", Partition: 1}) // not acknowledged, never read: fine
	poll(h, 1, false, time.Now(), Read{0, 0, "a"}, Read{1, 0, "c"})
	poll(h, 1, false, time.Now(), Read{0, 1, "b"})
	r := Check(h, Options{})
	if !r.OK() || r.Acked != 3 || r.Read != 3 || r.Ops != 6 {
		t.Fatalf("%+v", r)
	}
}

func TestLost(t *testing.T) {
	h := NewHistory()
	acked(h, "a", 0, 0, 0)
	acked(h, "b", 0, 1, 0)
	poll(h, 1, false, time.Now(), Read{0, 0, "a"})
	r := Check(h, Options{})
	only(t, r, Lost, 1)
	if r.Lost != 1 || !strings.Contains(r.Anomalies[0].Detail, `"b"`) {
		t.Fatalf("%+v", r)
	}
}

func TestLostAfterRead(t *testing.T) {
	h := NewHistory()
	acked(h, "a", 0, 0, 0)
	acked(h, "b", 0, 1, 0)
	poll(h, 1, false, time.Now(), Read{0, 0, "a"}, Read{0, 1, "b"})
	h.AddPoll(Poll{Session: 2, Final: true, At: time.Now(), Reads: []Read{{0, 0, "a"}}})
	r := Check(h, Options{})
	only(t, r, Lost, 1)
	if !strings.Contains(r.Anomalies[0].Detail, `"b" acknowledged at partition 0 offset 1, read, then gone`) {
		t.Fatalf("%+v", r.Anomalies)
	}
	// Final reads that found nothing at all: both are lost.
	h = NewHistory()
	acked(h, "a", 0, 0, 0)
	acked(h, "b", 0, 1, 0)
	poll(h, 1, false, time.Now(), Read{0, 0, "a"}, Read{0, 1, "b"})
	h.AddPoll(Poll{Session: 2, Final: true, At: time.Now()})
	only(t, Check(h, Options{}), Lost, 2)
}

func TestAbortedTxnNotLost(t *testing.T) {
	h := NewHistory()
	acked(h, "a", 0, 0, 1)
	acked(h, "b", 0, 1, 2)
	h.SetTxn(Txn{ID: 1, Outcome: Aborted})
	h.SetTxn(Txn{ID: 2, Outcome: Unknown, CommitAt: time.Now()})
	if r := Check(h, Options{}); !r.OK() {
		t.Fatalf("%+v", r)
	}
}

func TestDuplicate(t *testing.T) {
	h := NewHistory()
	acked(h, "a", 0, 0, 0)
	poll(h, 1, false, time.Now(), Read{0, 0, "a"}, Read{0, 1, "a"})
	r := Check(h, Options{})
	only(t, r, Duplicate, 1)
	if r.Duplicated != 1 {
		t.Fatalf("%+v", r)
	}
	r = Check(h, Options{AllowDuplicates: true})
	if !r.OK() || r.AllowedDuplicates != 1 || r.Duplicated != 1 {
		t.Fatalf("allowed duplicates: %+v", r)
	}
}

func TestInconsistentOffset(t *testing.T) {
	h := NewHistory()
	acked(h, "a", 0, 0, 0)
	poll(h, 1, false, time.Now(), Read{0, 0, "a"})
	poll(h, 2, false, time.Now(), Read{0, 0, "x"})
	r := Check(h, Options{})
	only(t, r, InconsistentOffset, 1)

	// An acknowledgement disagreeing with a read is inconsistent too (and "b" is then at two offsets).
	h = NewHistory()
	acked(h, "a", 0, 0, 0)
	acked(h, "b", 0, 0, 0)
	poll(h, 1, false, time.Now(), Read{0, 0, "a"}, Read{0, 1, "b"})
	r = Check(h, Options{})
	if r.Count(InconsistentOffset) != 1 || r.Count(Duplicate) != 1 || len(r.Anomalies) != 2 {
		t.Fatalf("%+v", r.Anomalies)
	}
}

func TestNonMonotonicPoll(t *testing.T) {
	h := NewHistory()
	acked(h, "a", 0, 0, 0)
	acked(h, "b", 0, 1, 0)
	poll(h, 1, false, time.Now(), Read{0, 0, "a"}, Read{0, 1, "b"})
	poll(h, 1, false, time.Now(), Read{0, 0, "a"})
	// A new session may start over.
	poll(h, 2, false, time.Now(), Read{0, 0, "a"})
	r := Check(h, Options{})
	only(t, r, NonMonotonic, 1)
}

func TestPollSkip(t *testing.T) {
	h := NewHistory()
	acked(h, "a", 0, 0, 0)
	acked(h, "b", 0, 1, 0)
	acked(h, "c", 0, 2, 0)
	poll(h, 1, false, time.Now(), Read{0, 0, "a"}, Read{0, 1, "b"}, Read{0, 2, "c"})
	poll(h, 2, false, time.Now(), Read{0, 0, "a"})
	poll(h, 2, false, time.Now(), Read{0, 2, "c"})
	r := Check(h, Options{})
	only(t, r, PollSkip, 1)
	if !strings.Contains(r.Anomalies[0].Detail, "from offset 0 to 2") {
		t.Fatalf("%+v", r.Anomalies)
	}
}

func TestReadCommittedSkipsAbortedWithoutSkip(t *testing.T) {
	h := NewHistory()
	t0 := time.Now()
	acked(h, "a", 0, 0, 1)
	acked(h, "x", 0, 2, 2) // offset 1 and 3 are control records
	acked(h, "b", 0, 4, 3)
	h.SetTxn(Txn{ID: 1, Outcome: Committed, CommitAt: t0})
	h.SetTxn(Txn{ID: 2, Outcome: Aborted})
	h.SetTxn(Txn{ID: 3, Outcome: Committed, CommitAt: t0})
	poll(h, 1, true, t0.Add(time.Second), Read{0, 0, "a"}, Read{0, 4, "b"})
	poll(h, 2, false, t0.Add(time.Second), Read{0, 0, "a"}, Read{0, 2, "x"}, Read{0, 4, "b"})
	if r := Check(h, Options{}); !r.OK() {
		t.Fatalf("%+v", r.Anomalies)
	}
	// read_uncommitted jumping over the aborted value is a skip.
	poll(h, 3, false, t0.Add(time.Second), Read{0, 0, "a"}, Read{0, 4, "b"})
	only(t, Check(h, Options{}), PollSkip, 1)
}

func TestAbortedRead(t *testing.T) {
	h := NewHistory()
	acked(h, "x", 0, 0, 1)
	acked(h, "y", 0, 1, 2)
	h.SetTxn(Txn{ID: 1, Outcome: Aborted})
	// Transaction 2 was begun and never ended: the broker must abort it.
	poll(h, 1, false, time.Now(), Read{0, 0, "x"}, Read{0, 1, "y"}) // read_uncommitted may see them
	poll(h, 2, true, time.Now(), Read{0, 0, "x"}, Read{0, 1, "y"})
	only(t, Check(h, Options{}), AbortedRead, 2)
}

func TestUncommittedRead(t *testing.T) {
	h := NewHistory()
	t0 := time.Now()
	acked(h, "a", 0, 0, 1)
	h.SetTxn(Txn{ID: 1, Outcome: Committed, CommitAt: t0})
	poll(h, 1, true, t0.Add(-time.Millisecond), Read{0, 0, "a"})
	poll(h, 2, true, t0.Add(time.Millisecond), Read{0, 0, "a"})
	only(t, Check(h, Options{}), UncommittedRead, 1)
}

func TestOffsetBackwards(t *testing.T) {
	h := NewHistory()
	h.AddCommit(OffsetCommit{Group: "g", Partition: 0, Offset: 5})
	h.AddCommit(OffsetCommit{Group: "g", Partition: 0, Offset: 9})
	h.AddCommit(OffsetCommit{Group: "g", Partition: 0, Offset: 9, Fetched: true})
	h.AddCommit(OffsetCommit{Group: "g", Partition: 1, Offset: 2, Fetched: true})
	h.AddCommit(OffsetCommit{Group: "g", Partition: 0, Offset: 5, Fetched: true})
	r := Check(h, Options{})
	only(t, r, OffsetBackwards, 1)
	if r.GroupCommits != 2 || r.GroupFetches != 3 {
		t.Fatalf("%+v", r)
	}
	if !strings.Contains(r.Anomalies[0].Detail, "offset 5 read back after 9") {
		t.Fatalf("%+v", r.Anomalies)
	}
}

// A fetch in flight while a commit was acknowledged may return the older offset; one sent
// after the acknowledgement may not (several members commit while the reader fetches).
func TestOffsetBackwardsOnlyAfterAck(t *testing.T) {
	h := NewHistory()
	sent := time.Now()
	h.AddCommit(OffsetCommit{Group: "g", Partition: 0, Offset: 5, At: sent.Add(-time.Second)})
	h.AddCommit(OffsetCommit{Group: "g", Partition: 0, Offset: 9, At: sent.Add(time.Millisecond)})
	h.AddCommit(OffsetCommit{Group: "g", Partition: 0, Offset: 5, Fetched: true, SentAt: sent})
	if r := Check(h, Options{}); !r.OK() || r.GroupFetches != 1 {
		t.Fatalf("fetch sent before the commit's acknowledgement: %+v", r)
	}
	h.AddCommit(OffsetCommit{Group: "g", Partition: 0, Offset: 5, Fetched: true, SentAt: sent.Add(2 * time.Millisecond)})
	only(t, Check(h, Options{}), OffsetBackwards, 1)
}

// compaction may hide a value a later one of its key supersedes, and a session may jump
// over it; the latest value of a key must stay.
func TestCompactedHidesOnlySuperseded(t *testing.T) {
	h := NewHistory()
	acked(h, "x1/k1", 0, 0, 0)
	acked(h, "x2/k2", 0, 1, 0)
	acked(h, "x3/k1", 0, 2, 0)
	acked(h, "x4/k2", 0, 3, 0)
	poll(h, 1, false, time.Now(), Read{0, 0, "x1/k1"}, Read{0, 2, "x3/k1"}, Read{0, 3, "x4/k2"})
	h.AddPoll(Poll{Session: 2, Final: true, At: time.Now(), Reads: []Read{{0, 2, "x3/k1"}, {0, 3, "x4/k2"}}})
	if r := Check(h, Options{Compacted: true}); !r.OK() {
		t.Fatalf("compacted: %+v", r.Anomalies)
	}
	// Without compaction the same history lost x1 and x2, and session 1 skipped x2.
	r := Check(h, Options{})
	if r.Lost != 2 || r.Count(PollSkip) != 1 {
		t.Fatalf("uncompacted: %+v", r.Anomalies)
	}

	// The latest value of k2 missing from the final reads is lost, even compacted, and
	// jumping over it is a skip.
	h = NewHistory()
	acked(h, "x1/k1", 0, 0, 0)
	acked(h, "x2/k2", 0, 1, 0)
	acked(h, "x3/k1", 0, 2, 0)
	poll(h, 1, false, time.Now(), Read{0, 0, "x1/k1"}, Read{0, 2, "x3/k1"})
	h.AddPoll(Poll{Session: 2, Final: true, At: time.Now(), Reads: []Read{{0, 2, "x3/k1"}}})
	r = Check(h, Options{Compacted: true})
	if r.Lost != 1 || r.Count(PollSkip) != 1 || len(r.Anomalies) != 2 || !strings.Contains(r.Anomalies[0].Detail+r.Anomalies[1].Detail, `"x2/k2"`) {
		t.Fatalf("compacted, latest of k2 gone: %+v", r.Anomalies)
	}
}

// Retention: records below the final log start may be gone (not lost, and a session may
// jump over them), but a record at or above it that is missing is still lost, and a jump
// over one is still a skip.
func TestRetentionLogStart(t *testing.T) {
	h := NewHistory()
	for o, v := range []string{"a", "b", "c", "d", "e"} {
		acked(h, v, 0, int64(o), 0)
	}
	poll(h, 1, false, time.Now(), Read{0, 0, "a"}, Read{0, 3, "d"}) // jumps over b (deleted) and c (not)
	h.AddPoll(Poll{Session: 2, Final: true, At: time.Now(), Reads: []Read{{0, 3, "d"}}})
	r := Check(h, Options{LogStart: map[int32]int64{0: 2}})
	if r.Lost != 2 || r.Count(Lost) != 2 || r.Count(PollSkip) != 1 || len(r.Anomalies) != 3 || r.Expired != 2 {
		t.Fatalf("want c and e lost, one skip over c, a and b expired: %+v", r)
	}
	for _, a := range r.Anomalies {
		if strings.Contains(a.Detail, `"a"`) || strings.Contains(a.Detail, `"b"`) {
			t.Fatalf("a record below the log start reported: %+v", a)
		}
	}
	// Without the log start, the same history loses a, b, c and e.
	if r := Check(h, Options{}); r.Lost != 4 {
		t.Fatalf("without LogStart: %+v", r)
	}
}
