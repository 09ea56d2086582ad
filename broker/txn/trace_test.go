package txn

// Golden trace tests: each testdata/*.txt holds commands; the test runs them against a
// coordinator with a fake clock and fake effects and compares the trace (commands, answers,
// markers and offsets written, state changes) with testdata/*.golden. Regenerate with
// go test ./broker/txn -run TestTraces -update.
//
// Commands:
//
//	init ID [PID EPOCH]              InitProducerID (KIP-360 fields optional)
//	add ID PID EPOCH T-P...          AddPartitionsToTxn
//	implicit PID EPOCH T-P           Produce v12+ implicit add (TV2)
//	group ID PID EPOCH G             AddOffsetsToTxn
//	stage ID PID EPOCH G T-P=OFF...  TxnOffsetCommit
//	produce PID EPOCH T-P            the Produce check for a transactional batch
//	end ID PID EPOCH commit|abort [tv2]
//	hold | release | fail | ok       marker writes wait / complete / fail / succeed again
//	advance DURATION, tick, restart, state ID

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klite/klite/broker/internal/golden"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestTraces(t *testing.T) { golden.Run(t, "testdata/*.txt", runTrace) }

func errStr(e *kerr.Error) string {
	if e == nil {
		return "ok"
	}
	return e.Message
}

func parseTP(s string) TP {
	i := strings.LastIndexByte(s, '-')
	p, _ := strconv.Atoi(s[i+1:])
	return TP{s[:i], int32(p)}
}

func runTrace(t *testing.T, script string) string {
	h := newHarness(t)
	var out strings.Builder
	num := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("bad number %q", s)
		}
		return n
	}
	flushFX := func() {
		h.fx.mu.Lock()
		for _, m := range h.fx.markers {
			fmt.Fprintf(&out, "  marker %s\n", m)
		}
		h.fx.markers = nil
		for g, m := range h.fx.offsets {
			for tp, o := range m {
				fmt.Fprintf(&out, "  offset %s %s-%d=%d\n", g, tp.Topic, tp.Partition, o.Offset)
			}
		}
		h.fx.offsets = nil
		h.fx.mu.Unlock()
	}
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		fmt.Fprintf(&out, "> %s\n", line)
		switch f[0] {
		case "init":
			pid, epoch := int64(-1), int16(-1)
			if len(f) == 4 {
				pid, epoch = num(f[2]), int16(num(f[3]))
			}
			h.c.InitProducerID(f[1], time.Minute, pid, epoch, func(p int64, e int16, err *kerr.Error) {
				fmt.Fprintf(&out, "  init: pid=%d epoch=%d %s\n", p, e, errStr(err))
			})
		case "add":
			var tps []TP
			for _, s := range f[4:] {
				tps = append(tps, parseTP(s))
			}
			fmt.Fprintf(&out, "  %s\n", errStr(h.c.AddPartitions(f[1], num(f[2]), int16(num(f[3])), tps)))
		case "implicit":
			fmt.Fprintf(&out, "  %s\n", errStr(h.c.ImplicitAdd(num(f[1]), int16(num(f[2])), parseTP(f[3]))))
		case "group":
			fmt.Fprintf(&out, "  %s\n", errStr(h.c.AddGroup(f[1], num(f[2]), int16(num(f[3])), f[4])))
		case "stage":
			offs := map[TP]Offset{}
			for _, s := range f[5:] {
				kv := strings.SplitN(s, "=", 2)
				offs[parseTP(kv[0])] = Offset{Offset: num(kv[1]), LeaderEpoch: -1}
			}
			fmt.Fprintf(&out, "  %s\n", errStr(h.c.StageOffsets(f[1], num(f[2]), int16(num(f[3])), f[4], offs)))
		case "produce":
			fmt.Fprintf(&out, "  %s\n", errStr(h.c.ProduceCheck(num(f[1]), int16(num(f[2])), parseTP(f[3]))))
		case "end":
			tv2 := len(f) > 5 && f[5] == "tv2"
			h.c.EndTxn(f[1], num(f[2]), int16(num(f[3])), f[4] == "commit", tv2, func(p int64, e int16, err *kerr.Error) {
				fmt.Fprintf(&out, "  end: pid=%d epoch=%d %s\n", p, e, errStr(err))
			})
		case "hold":
			h.fx.mu.Lock()
			h.fx.hold = true
			h.fx.mu.Unlock()
		case "release":
			h.fx.mu.Lock()
			held := h.fx.held
			h.fx.held, h.fx.hold = nil, false
			h.fx.mu.Unlock()
			for _, d := range held {
				d(nil)
			}
		case "fail":
			h.fx.fail = fmt.Errorf("disk failure")
		case "ok":
			h.fx.fail = nil
		case "advance":
			d, err := time.ParseDuration(f[1])
			if err != nil {
				t.Fatal(err)
			}
			h.clk.advance(d)
		case "tick":
			h.c.Tick()
		case "restart":
			h.open()
			h.c.Start()
		case "state":
			in, ok := h.c.Describe(f[1])
			if !ok {
				fmt.Fprintf(&out, "  unknown\n")
				break
			}
			fmt.Fprintf(&out, "  %s pid=%d epoch=%d parts=%v groups=%v\n", in.State, in.PID, in.Epoch, in.Parts, in.Groups)
		default:
			t.Fatalf("unknown command %q", line)
		}
		flushFX()
	}
	return out.String()
}
