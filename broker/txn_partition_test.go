package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestMarkerBatchFormat(t *testing.T) {
	for _, commit := range []bool{false, true} {
		data := buildMarker(42, 7, commit, 3, 1700000000000)
		stampBatch(data, 100, -1)
		h, berr := parseBatchHeader(data)
		if !berr {
			t.Fatal("short marker")
		}
		if !h.control() || !h.transactional() || h.ProducerID != 42 || h.ProducerEpoch != 7 || h.BaseSequence != -1 || h.NumRecords != 1 || h.LastOffsetDelta != 0 {
			t.Fatalf("marker header %+v", h)
		}
		if crc32Checksum(data[21:]) != h.CRC || int(h.Length)+12 != len(data) {
			t.Fatalf("marker CRC or length wrong")
		}
		// kmsg decodes it as Kafka clients would.
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(data); err != nil {
			t.Fatal(err)
		}
		var r kmsg.Record
		if err := r.ReadFrom(rb.Records); err != nil {
			t.Fatal(err)
		}
		wantType := byte(0)
		if commit {
			wantType = 1
		}
		if len(r.Key) != 4 || r.Key[0] != 0 || r.Key[1] != 0 || r.Key[3] != wantType || r.Key[2] != 0 {
			t.Fatalf("marker key %v", r.Key)
		}
		if len(r.Value) != 6 || r.Value[5] != 3 {
			t.Fatalf("marker value %v", r.Value)
		}
		got, ok := markerType(data, &h)
		if !ok || got != commit {
			t.Fatalf("markerType = %v %v, want %v", got, ok, commit)
		}
	}
}

func TestPartitionTxnIndex(t *testing.T) {
	p := &partition{producers: map[int64]*producerState{}}
	p.hwm = 10
	p.noteTxnDataLocked(1, 2)
	p.noteTxnDataLocked(1, 5) // same transaction: first offset stays 2
	p.noteTxnDataLocked(2, 4)
	if lso := p.lsoLocked(); lso != 2 {
		t.Fatalf("lso %d, want 2", lso)
	}
	p.noteMarkerLocked(1, 0, false, 6)
	if lso := p.lsoLocked(); lso != 4 {
		t.Fatalf("lso after abort of 1: %d, want 4", lso)
	}
	p.noteMarkerLocked(1, 0, false, 8) // duplicate marker (re-driven after a crash): no entry
	p.noteMarkerLocked(2, 1, true, 7)
	if lso := p.lsoLocked(); lso != 10 {
		t.Fatalf("lso with nothing open %d, want hwm 10", lso)
	}
	// The aborted-transaction index is the partition Log's (broker/logstore tests).
	if ps := p.producers[2]; ps == nil || ps.epoch != 1 {
		t.Fatalf("marker epoch not applied to the producer state: %+v", ps)
	}
}

func FuzzMarkerType(f *testing.F) {
	f.Add(buildMarker(1, 0, true, 0, 0))
	f.Add(buildMarker(1, 0, false, 5, 0))
	f.Add(make([]byte, batchHeaderLen+3))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, ok := parseBatchHeader(data)
		if !ok {
			return
		}
		markerType(data, &h) // must not panic
	})
}
