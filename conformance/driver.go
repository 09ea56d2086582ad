package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Manifest is clients/<name>/driver.json.
type Manifest struct {
	Name  string   `json:"-"`
	Build []string `json:"build"`
	Run   []string `json:"run"`
}

// LoadManifests reads every clients/*/driver.json under root; a client without one is not in the
// matrix.
func LoadManifests(root string) ([]Manifest, error) {
	files, _ := filepath.Glob(filepath.Join(root, "clients", "*", "driver.json"))
	sort.Strings(files)
	var out []Manifest
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var m Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		if len(m.Run) == 0 {
			return nil, fmt.Errorf("%s: run command missing", f)
		}
		m.Name = filepath.Base(filepath.Dir(f))
		out = append(out, m)
	}
	return out, nil
}

// errUnsupported marks an `unsupported` answer.
type errUnsupported struct{ reason string }

func (e *errUnsupported) Error() string { return "unsupported: " + e.reason }

// errDriver is a broken driver: crashed, hung, or speaking nonsense. The cell fails.
type errDriver struct{ msg string }

func (e *errDriver) Error() string { return e.msg }

// Driver is one running driver process (one actor).
type Driver struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	done   chan struct{} // closed when the process exited
	stderr *tailBuffer
	mu     sync.Mutex
	nextID int64
	dead   error
}

// StartDriver starts a manifest's run command in root.
func StartDriver(root string, m Manifest, actor string) (*Driver, error) {
	cmd := exec.Command(m.Run[0], m.Run[1:]...)
	if !filepath.IsAbs(m.Run[0]) && strings.Contains(m.Run[0], "/") {
		cmd.Path = filepath.Join(root, m.Run[0])
	}
	cmd.Dir = root
	// Own process group (to kill the whole tree); die with the harness.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	d := &Driver{name: m.Name + "/" + actor, cmd: cmd, lines: make(chan []byte, 16),
		done: make(chan struct{}), stderr: &tailBuffer{max: 16 << 10}}
	cmd.Stderr = d.stderr
	var err error
	if d.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start driver %s: %v (is it built? make -C clients/%s)", m.Name, err, m.Name)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			d.lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(d.lines)
	}()
	go func() {
		cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// Call sends one command and waits for its answer. A `ok:false` answer is returned as an
// answer (the expectation decides); `unsupported` returns *errUnsupported; a broken driver
// returns *errDriver and the driver is killed.
func (d *Driver) Call(op string, args map[string]any, timeout time.Duration) (map[string]any, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dead != nil {
		return nil, d.dead
	}
	d.nextID++
	id := d.nextID
	cmd := map[string]any{}
	for k, v := range args {
		cmd[k] = v
	}
	cmd["id"], cmd["op"] = id, op
	line, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	if _, err := d.stdin.Write(append(line, '\n')); err != nil {
		return nil, d.fail("driver %s: writing %s: %v", d.name, op, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-d.lines:
			if !ok {
				select {
				case <-d.done:
				case <-time.After(2 * time.Second):
				}
				return nil, d.fail("driver %s exited during %s (%s)", d.name, op, d.exitState())
			}
			ans, err := decodeJSON(l)
			if err != nil {
				return nil, d.fail("driver %s wrote a non-JSON line on stdout during %s: %q", d.name, op, clip(string(l)))
			}
			if ansID, _ := ans["id"].(int64); ansID != id {
				return nil, d.fail("driver %s answered id %v to command %d (%s)", d.name, ans["id"], id, op)
			}
			if u, _ := ans["unsupported"].(bool); u {
				r, _ := ans["reason"].(string)
				return ans, &errUnsupported{reason: r}
			}
			if _, ok := ans["ok"].(bool); !ok {
				return nil, d.fail("driver %s: answer to %s has neither ok nor unsupported: %s", d.name, op, clip(string(l)))
			}
			return ans, nil
		case <-timer.C:
			return nil, d.fail("driver %s did not answer %s within %v (hung?)", d.name, op, timeout)
		}
	}
}

func (d *Driver) exitState() string {
	if d.cmd.ProcessState != nil {
		return d.cmd.ProcessState.String()
	}
	return "still running"
}

func (d *Driver) fail(f string, a ...any) error {
	d.dead = &errDriver{msg: fmt.Sprintf(f, a...)}
	d.kill()
	return d.dead
}

func (d *Driver) kill() {
	if d.cmd.Process != nil {
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Close sends close, waits briefly for a clean exit and kills the process otherwise.
func (d *Driver) Close() {
	if d.dead == nil {
		_, err := d.Call("close", nil, 10*time.Second)
		var ed *errDriver
		if err != nil && !errors.As(err, &ed) {
			d.kill()
		}
	}
	d.stdin.Close()
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		d.kill()
		<-d.done
	}
}

// Stderr returns the tail of the driver's stderr.
func (d *Driver) Stderr() string { return d.stderr.String() }

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// Reset forgets what was written (a pooled driver starts a new cell).
func (t *tailBuffer) Reset() {
	t.mu.Lock()
	t.buf = nil
	t.mu.Unlock()
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// BuildDriver runs a manifest's build command (once per run).
func BuildDriver(ctx context.Context, root string, m Manifest) error {
	if len(m.Build) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.Build[0], m.Build[1:]...)
	cmd.Dir = root
	out := &tailBuffer{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s (%s): %v\n%s", m.Name, strings.Join(m.Build, " "), err, out.String())
	}
	return nil
}
