package txn

// Transaction log records. Each MetaLog record is the whole state of one transactional ID as
// one JSON object; replay keeps the last record per ID, so a snapshot is one record per ID:
//
//	{"id":"tx","pid":1000,"epoch":3,"last_epoch":2,"timeout_ms":60000,"state":"Ongoing",
//	 "start_ms":1700000000000,"updated_ms":1700000000000,
//	 "parts":[{"t":"topic","p":0}],"groups":["g"],
//	 "offsets":{"g":[{"t":"topic","p":0,"o":42,"le":-1,"md":""}]}}
//
// offsets are only present in PrepareCommit records (that is when they become durable).

import (
	"encoding/json"
	"fmt"
	"time"
)

type recTP struct {
	T string `json:"t"`
	P int32  `json:"p"`
}

type recOffset struct {
	T  string `json:"t"`
	P  int32  `json:"p"`
	O  int64  `json:"o"`
	LE int32  `json:"le"`
	MD string `json:"md,omitempty"`
}

type record struct {
	ID        string                 `json:"id"`
	PID       int64                  `json:"pid"`
	Epoch     int16                  `json:"epoch"`
	LastEpoch int16                  `json:"last_epoch"`
	TimeoutMs int64                  `json:"timeout_ms"`
	State     string                 `json:"state"`
	StartMs   int64                  `json:"start_ms,omitempty"`
	UpdatedMs int64                  `json:"updated_ms,omitempty"`
	Parts     []recTP                `json:"parts,omitempty"`
	Groups    []string               `json:"groups,omitempty"`
	Offsets   map[string][]recOffset `json:"offsets,omitempty"`
}

func (t *txnState) record() record {
	r := record{ID: t.id, PID: t.pid, Epoch: t.epoch, LastEpoch: t.lastEpoch, TimeoutMs: t.timeout.Milliseconds(), State: t.state.String(), UpdatedMs: t.updated.UnixMilli()}
	if !t.start.IsZero() {
		r.StartMs = t.start.UnixMilli()
	}
	in := t.info()
	for _, tp := range in.Parts {
		r.Parts = append(r.Parts, recTP{tp.Topic, tp.Partition})
	}
	r.Groups = in.Groups
	if t.state == PrepareCommit && len(t.offsets) > 0 {
		r.Offsets = map[string][]recOffset{}
		for g, m := range t.offsets {
			for tp, o := range m {
				r.Offsets[g] = append(r.Offsets[g], recOffset{tp.Topic, tp.Partition, o.Offset, o.LeaderEpoch, o.Metadata})
			}
		}
	}
	return r
}

func encodeRecord(t *txnState) []byte {
	b, err := json.Marshal(t.record())
	if err != nil {
		panic(err) // plain types only
	}
	return b
}

// persistLocked durably writes t's state. c.mu held.
func (c *Coordinator) persistLocked(t *txnState) error {
	if c.closed {
		return ErrClosed
	}
	if err := c.cfg.Log.Append(encodeRecord(t)); err != nil {
		c.log.Error("txn log append failed", "transactional_id", t.id, "err", err)
		return err
	}
	if size := c.cfg.Log.Size(); size > c.cfg.CompactBytes && size > 2*c.lastSnap {
		snap := make([][]byte, 0, len(c.txns)+1)
		for _, o := range c.txns {
			if o != t {
				snap = append(snap, encodeRecord(o))
			}
		}
		snap = append(snap, encodeRecord(t))
		if err := c.cfg.Log.Compact(snap); err != nil {
			c.log.Warn("txn log compaction failed", "err", err)
		} else {
			c.lastSnap = c.cfg.Log.Size()
		}
	}
	return nil
}

// applyRecord replays one record.
func (c *Coordinator) applyRecord(raw []byte) error {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("txn log record: %w", err)
	}
	st, ok := ParseState(r.State)
	if !ok || r.ID == "" {
		return fmt.Errorf("txn log record: bad state %q or id %q", r.State, r.ID)
	}
	if old := c.txns[r.ID]; old != nil && c.pids[old.pid] == old {
		delete(c.pids, old.pid)
	}
	t := &txnState{id: r.ID, pid: r.PID, epoch: r.Epoch, lastEpoch: r.LastEpoch, timeout: time.Duration(r.TimeoutMs) * time.Millisecond, state: st}
	if r.StartMs != 0 {
		t.start = time.UnixMilli(r.StartMs)
	}
	t.updated = time.UnixMilli(r.UpdatedMs)
	if len(r.Parts) > 0 {
		t.parts = map[TP]bool{}
		for _, p := range r.Parts {
			t.parts[TP{p.T, p.P}] = true
		}
	}
	if len(r.Groups) > 0 {
		t.groups = map[string]bool{}
		for _, g := range r.Groups {
			t.groups[g] = true
		}
	}
	if len(r.Offsets) > 0 {
		t.offsets = map[string]map[TP]Offset{}
		for g, os := range r.Offsets {
			m := map[TP]Offset{}
			for _, o := range os {
				m[TP{o.T, o.P}] = Offset{o.O, o.LE, o.MD}
			}
			t.offsets[g] = m
		}
	}
	c.txns[r.ID] = t
	c.pids[r.PID] = t
	return nil
}

func (c *Coordinator) load() error {
	if err := c.cfg.Log.Replay(c.applyRecord); err != nil {
		return err
	}
	c.lastSnap = c.cfg.Log.Size()
	return nil
}

// MaxProducerID is the largest producer ID in the log (the broker's allocator must stay above).
func (c *Coordinator) MaxProducerID() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	max := int64(-1)
	for pid := range c.pids {
		if pid > max {
			max = pid
		}
	}
	return max
}

// ProducerEpoch returns the transactional ID and epoch the log holds for producer ID pid (the
// broker cross-checks them against the epochs its partitions saw in the WAL).
func (c *Coordinator) ProducerEpoch(pid int64) (id string, epoch int16, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.pids[pid]
	if t == nil {
		return "", 0, false
	}
	return t.id, t.epoch, true
}
