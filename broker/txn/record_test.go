package txn

import "testing"

func FuzzApplyRecord(f *testing.F) {
	f.Add([]byte(`{"id":"a","pid":1,"epoch":0,"last_epoch":-1,"timeout_ms":60000,"state":"Ongoing","parts":[{"t":"x","p":0}],"groups":["g"]}`))
	f.Add([]byte(`{"id":"a","pid":1,"state":"PrepareCommit","offsets":{"g":[{"t":"x","p":0,"o":3,"le":-1}]}}`))
	f.Add([]byte(`{"id":"","state":"Bogus"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := &Coordinator{txns: map[string]*txnState{}, pids: map[int64]*txnState{}}
		if err := c.applyRecord(raw); err != nil {
			return
		}
		for _, tx := range c.txns {
			_ = encodeRecord(tx) // a replayed state must encode again
		}
	})
}
