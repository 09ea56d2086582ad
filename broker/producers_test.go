package broker

import "testing"

func TestProducerStateCheck(t *testing.T) {
	var ps *producerState
	if r, _ := ps.check(0, 17, 20); r != seqOK {
		t.Fatalf("unknown producer: %v", r)
	}
	ps = &producerState{}
	for i := int32(0); i < 7; i++ {
		ps.push(0, &seqBatch{firstSeq: i * 2, lastSeq: i*2 + 1, base: int64(i * 2)})
	}
	if len(ps.batches) != producerWindow {
		t.Fatalf("window holds %d batches", len(ps.batches))
	}
	cases := []struct {
		epoch       int16
		first, last int32
		want        seqCheck
	}{
		{0, 14, 15, seqOK},
		{0, 12, 13, seqDuplicate},
		{0, 4, 5, seqDuplicate}, // oldest still in the window
		{0, 2, 3, seqOutOfOrder},
		{0, 16, 16, seqOutOfOrder},
		{0, 12, 12, seqOutOfOrder}, // overlaps but is not the same batch
		{1, 0, 3, seqOK},
		{1, 5, 6, seqOutOfOrder},
		{-1, 14, 15, seqStaleEpoch},
	}
	for _, c := range cases {
		if r, _ := ps.check(c.epoch, c.first, c.last); r != c.want {
			t.Errorf("check(%d, %d, %d) = %v, want %v", c.epoch, c.first, c.last, r, c.want)
		}
	}
	// Sequence numbers wrap at MaxInt32.
	w := &producerState{}
	w.push(0, &seqBatch{firstSeq: 2147483640, lastSeq: 2147483647})
	if r, _ := w.check(0, 0, 3); r != seqOK {
		t.Errorf("wrapped sequence: %v", r)
	}
}

func TestExpireProducers(t *testing.T) {
	p := newPartition(&topic{name: "t"}, 0)
	day := int64(producerExpiryMs)
	p.producers[1] = &producerState{lastSeen: 0}
	p.producers[2] = &producerState{lastSeen: day}
	p.producers[3] = &producerState{lastSeen: 0, batches: []*seqBatch{{pending: &pendingAppend{}}}}
	p.producers[4] = &producerState{lastSeen: 0}
	p.noteTxnDataLocked(4, 0) // an open transaction, idle for a day
	p.expireProducersLocked(day + 1)
	if _, ok := p.producers[1]; ok {
		t.Error("idle producer kept")
	}
	if _, ok := p.producers[2]; !ok {
		t.Error("recent producer dropped")
	}
	if _, ok := p.producers[3]; !ok {
		t.Error("producer with an append in flight dropped")
	}
	if _, ok := p.producers[4]; !ok {
		t.Error("producer with an open transaction dropped")
	}
}

// Two batches in flight whose appends both fail (the oldest's failure reported first): both
// must leave the window, or a retry of the oldest is answered as a duplicate at offsets that
// were given back and go to other records (seen by the chaos disk-full fault: two
// acknowledgements at one offset, the first record never stored).
func TestDropFailedBatchNotNewest(t *testing.T) {
	ps := &producerState{}
	ok := &seqBatch{firstSeq: 0, lastSeq: 0, base: 10}
	a := &seqBatch{firstSeq: 1, lastSeq: 1, base: 11, pending: &pendingAppend{}}
	b := &seqBatch{firstSeq: 2, lastSeq: 2, base: 12, pending: &pendingAppend{}}
	ps.push(0, ok)
	ps.push(0, a)
	ps.push(0, b)
	ps.drop(a)
	ps.drop(b)
	if len(ps.batches) != 1 || ps.batches[0] != ok {
		t.Fatalf("window after both failures: %+v", ps.batches)
	}
	if r, _ := ps.check(0, 1, 1); r != seqOK {
		t.Fatalf("retry of the failed oldest batch: %v, want it appended anew", r)
	}
	if r, _ := ps.check(0, 0, 0); r != seqDuplicate {
		t.Fatalf("retry of the stored batch: %v", r)
	}
}
