package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain doubles as a fake driver when KLITE_FAKE_DRIVER is set, so runner tests exercise
// real processes, pipes and timeouts.
func TestMain(m *testing.M) {
	if os.Getenv("KLITE_FAKE_DRIVER") == "1" {
		fakeDriver()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func fakeDriver() {
	in := bufio.NewScanner(os.Stdin)
	calls := 0
	for in.Scan() {
		var c map[string]any
		json.Unmarshal(in.Bytes(), &c)
		ans := map[string]any{"id": c["id"], "ok": true}
		switch c["op"] {
		case "hello":
			ans["library_version"] = "fake-1"
		case "produce":
			var res []any
			recs, _ := c["records"].([]any)
			for i := range recs {
				res = append(res, map[string]any{"partition": 0, "offset": i, "error": nil})
			}
			ans["results"] = res
			ans["topic"] = c["topic"]
		case "list_offsets": // answers 0, 1, 2, ... on successive calls
			ans["offset"] = calls
			calls++
		case "metadata":
			ans = map[string]any{"id": c["id"], "unsupported": true, "reason": "fake cannot"}
		case "create_topic":
			ans = map[string]any{"id": c["id"], "ok": false, "error": "TOPIC_ALREADY_EXISTS", "message": "exists"}
		case "consume":
			fmt.Fprintln(os.Stderr, "fake driver: hanging in consume")
			time.Sleep(time.Hour)
		case "delete_topic":
			fmt.Fprintln(os.Stderr, "fake driver: boom")
			os.Exit(3)
		case "reset":
			if os.Getenv("KLITE_FAKE_RESET") != "1" {
				ans = map[string]any{"id": c["id"], "unsupported": true, "reason": "unknown op"}
			}
			calls = 0
		case "close":
			fmt.Println(`{"id":` + fmt.Sprint(c["id"]) + `,"ok":true}`)
			return
		}
		b, _ := json.Marshal(ans)
		fmt.Println(string(b))
	}
}

func runFake(t *testing.T, spec string) *CellResult {
	t.Helper()
	s, err := Parse("x.yaml", []byte("name: x\n"+spec))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KLITE_FAKE_DRIVER", "1")
	exe, _ := os.Executable()
	r := &Runner{Root: ".", RunID: "abc"}
	return r.RunCell(context.Background(), s, Manifest{Name: "fake", Run: []string{exe}}, &Target{Name: "klite", Addr: "127.0.0.1:1"})
}

func TestRunCellPass(t *testing.T) {
	res := runFake(t, `names: [t]
actors: [p, q]
steps:
  - actor: p
    op: produce
    args: {topic: "${t}", records: [{value: a}, {value: b}]}
    expect: {results: [{offset: 0}, {offset: 1}], topic: "x-t-fake-abc"}
    save: {last: results.1.offset}
  - label: retried until the answer matches
    actor: q
    op: list_offsets
    args: {}
    expect: {offset: {$var: {name: last, add: 1}}}
    retry: 5
  - parallel:
      - {actor: p, op: produce, args: {records: []}, expect: {results: null}}
      - {actor: q, op: create_topic, args: {}, expect: {error: TOPIC_ALREADY_EXISTS}}
`)
	if res.Status != StatusPass {
		t.Fatalf("status %s: %s\n%s", res.Status, res.Message, res.Stderr)
	}
	if res.LibraryVersion != "fake-1" || len(res.Observations) != 4 {
		t.Fatalf("result: %+v", res)
	}
	if got := canonJSON(res.Observations[0].Answer); !strings.Contains(got, `"topic":"${t}"`) {
		t.Fatalf("unique name not normalized: %s", got)
	}
	if res.Observations[1].Step != "2 retried until the answer matches" || canonJSON(res.Observations[1].Answer) != `{"offset":2,"ok":true}` {
		t.Fatalf("retry observation: %+v", res.Observations[1])
	}
}

func TestRunCellFailures(t *testing.T) {
	cases := []struct {
		name, spec, status, msg, stderr string
	}{
		{"mismatch", "actors: [p]\nsteps:\n  - actor: p\n    op: list_offsets\n    expect: {offset: 7}\n",
			StatusFail, "step 1 p list_offsets (line 4): offset: got 0, want 7", ""},
		{"unsupported is n/a", "actors: [p]\nsteps:\n  - actor: p\n    op: metadata\n",
			StatusNA, "metadata unsupported: fake cannot", ""},
		{"optional unsupported is skipped", "actors: [p]\nsteps:\n  - actor: p\n    op: metadata\n    optional: true\n",
			StatusPass, "", ""},
		{"hung driver", "actors: [p]\nsteps:\n  - actor: p\n    op: consume\n    timeout_ms: 500\n",
			StatusFail, "did not answer consume within 500ms", "hanging in consume"},
		{"crashed driver", "actors: [p]\nsteps:\n  - actor: p\n    op: delete_topic\n",
			StatusFail, "exited during delete_topic", "boom"},
		{"cell budget", "timeout_ms: 700\nactors: [p]\nsteps:\n  - actor: p\n    op: consume\n",
			StatusFail, "exceeded its 700ms budget", "hanging"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			res := runFake(t, c.spec)
			if res.Status != c.status || !strings.Contains(res.Message, c.msg) || !strings.Contains(res.Stderr, c.stderr) {
				t.Fatalf("got %s %q stderr %q; want %s %q stderr containing %q", res.Status, res.Message, res.Stderr, c.status, c.msg, c.stderr)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
		})
	}
}

func TestRunCellDeadTarget(t *testing.T) {
	tg := &Target{Name: "klite", Addr: "127.0.0.1:1", log: &tailBuffer{max: 1 << 10}, done: make(chan struct{})}
	tg.cmd = exec.Command("sh", "-c", "echo panic: boom-in-broker; exit 3")
	tg.cmd.Stdout = tg.log
	if err := tg.cmd.Run(); err == nil {
		t.Fatal("want exit status 3")
	}
	close(tg.done)
	s, err := Parse("x.yaml", []byte("name: x\nactors: [p]\nsteps:\n  - {actor: p, op: list_offsets}\n"))
	if err != nil {
		t.Fatal(err)
	}
	res := (&Runner{Root: ".", RunID: "r"}).RunCell(context.Background(), s, Manifest{Name: "fake", Run: []string{"/nonexistent"}}, tg)
	if res.Status != StatusFail || !strings.Contains(res.Message, "klite target exited (exit status 3)") || !strings.Contains(res.Message, "panic: boom-in-broker") {
		t.Fatalf("got %s %q", res.Status, res.Message)
	}
}

func TestDriverPool(t *testing.T) {
	t.Setenv("KLITE_FAKE_DRIVER", "1")
	exe, _ := os.Executable()
	s, err := Parse("x.yaml", []byte("name: x\nactors: [p]\nsteps:\n  - {actor: p, op: list_offsets, expect: {offset: 0}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, reset := range []string{"1", "0"} {
		t.Run("reset="+reset, func(t *testing.T) {
			t.Setenv("KLITE_FAKE_RESET", reset)
			pool := NewDriverPool(2)
			defer pool.Close()
			r := &Runner{Root: ".", RunID: "p", Pool: pool}
			m := Manifest{Name: "fake", Run: []string{exe}}
			tg := &Target{Name: "klite", Addr: "127.0.0.1:1"}
			var pids []int
			for i := 0; i < 2; i++ {
				// offset 0 each time: the reset driver forgot its state.
				if res := r.RunCell(context.Background(), s, m, tg); res.Status != StatusPass {
					t.Fatalf("cell %d: %s %s", i, res.Status, res.Message)
				}
				pool.mu.Lock()
				for _, d := range pool.idle["fake"] {
					pids = append(pids, d.cmd.Process.Pid)
				}
				pool.mu.Unlock()
			}
			if reset == "1" && (len(pids) != 2 || pids[0] != pids[1]) {
				t.Fatalf("driver not reused: pids %v", pids)
			}
			if reset == "0" && (len(pids) != 0 || !pool.noPool["fake"]) {
				t.Fatalf("driver without reset pooled: pids %v", pids)
			}
		})
	}
}
