package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Broker is a klite process the faults are applied to. It keeps its address and data
// directory across restarts, so clients reconnect to the same place.
type Broker struct {
	Bin, Dir, Addr string
	// HealthAddr is klite's --health-addr (StartBroker gives one; the storage faults use it).
	HealthAddr string
	Extra      []string // more flags
	// Wrap, when set, is the command klite runs under (its arguments follow); Mount is the
	// file system it mounts for klite (see StartBrokerOnTmpfs).
	Wrap  []string
	Mount string
	// StartTimeout bounds each start (recovery included).
	StartTimeout time.Duration

	cmd    *exec.Cmd
	exited chan error
	mu     sync.Mutex
	tail   []string
	lines  int // lines printed in all, over every start
	Starts int
	// Damage counts how the Corrupt fault's restarts went.
	Damage DamageCounts
	// races: the data race reports of a klite built with -race (the first one whole).
	races    int
	raceText []string
}

var servingRE = regexp.MustCompile(`msg="klite serving" listen=(\S+)`)

// StartBroker starts bin on a free loopback port with dir as its data directory.
func StartBroker(bin, dir string, extra ...string) (*Broker, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	health := hl.Addr().String()
	hl.Close()
	b := &Broker{Bin: bin, Dir: dir, Addr: addr, HealthAddr: health, Extra: extra, StartTimeout: 60 * time.Second}
	return b, b.Start()
}

// ErrNoTmpfs says the machine allows no unprivileged mount of a small file system.
var ErrNoTmpfs = errors.New("no unprivileged user+mount namespace here (unshare -rm): cannot mount a small file system")

// StartBrokerOnTmpfs starts bin with its data directory on a real file system of sizeMiB:
// a tmpfs mounted on mnt in a user and mount namespace of klite's own (unshare -rm, no root
// needed where the kernel allows unprivileged user namespaces; ErrNoTmpfs otherwise). The
// tmpfs is visible from outside only through /proc/PID/root (Inside), and dies with the
// process, so such a broker cannot be restarted on its data.
func StartBrokerOnTmpfs(bin, mnt string, sizeMiB int, extra ...string) (*Broker, error) {
	if err := exec.Command("unshare", "-rm", "true").Run(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoTmpfs, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	script := fmt.Sprintf(`mount -t tmpfs -o size=%dm tmpfs "$0" && exec "$@"`, sizeMiB)
	b := &Broker{Bin: bin, Dir: filepath.Join(mnt, "data"), Addr: addr, Extra: extra, StartTimeout: 60 * time.Second,
		Wrap: []string{"unshare", "-rm", "sh", "-c", script, mnt}, Mount: mnt}
	return b, b.Start()
}

// Inside is path as the running broker sees it (through its mount namespace).
func (b *Broker) Inside(path string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", b.cmd.Process.Pid), path)
}

// leaseHeld is klite's refusal while the S3 writer lease of a killed broker has not expired.
const leaseHeld = "another broker uses this S3 bucket and prefix"

// Start (re)starts the process and waits until it logs that it serves. With S3, a restart
// after SIGKILL is refused until the dead process's lease expires (--s3-lease-ttl): it is
// tried again every half second within StartTimeout.
func (b *Broker) Start() error {
	deadline := time.Now().Add(b.StartTimeout)
	for {
		mark := b.Lines()
		serving, exited, err := b.spawn()
		if err != nil {
			return err
		}
		select {
		case <-serving:
			return nil
		case err := <-exited:
			exited <- err
			if b.said(mark, leaseHeld) && time.Now().Before(deadline) {
				time.Sleep(500 * time.Millisecond)
				continue
			}
			return fmt.Errorf("klite exited at start (start %d): %v\n%s", b.Starts, err, b.Tail(40))
		case <-time.After(time.Until(deadline)):
			b.Kill()
			return fmt.Errorf("klite did not serve within %v (start %d)\n%s", b.StartTimeout, b.Starts, b.Tail(40))
		}
	}
}

// KillEarly starts the process and kills it after d, before or during its recovery (or just
// after it began serving, if it was faster), and waits for it to be gone.
func (b *Broker) KillEarly(d time.Duration) error {
	if _, _, err := b.spawn(); err != nil {
		return err
	}
	time.Sleep(d)
	b.Kill()
	return nil
}

// spawn starts the process; serving is signalled once it logs that it serves.
func (b *Broker) spawn() (serving <-chan struct{}, exited chan error, err error) {
	args := []string{b.Bin, "--listen", b.Addr, "--data-dir", b.Dir}
	if b.HealthAddr != "" {
		args = append(args, "--health-addr", b.HealthAddr)
	}
	args = append(args, b.Extra...)
	args = append(append([]string(nil), b.Wrap...), args...)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %v", b.Bin, err)
	}
	b.cmd, b.exited = cmd, make(chan error, 1)
	b.Starts++
	srv := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			b.mu.Lock()
			b.tail = append(b.tail, line)
			b.lines++
			if strings.Contains(line, "WARNING: DATA RACE") {
				b.races++
			}
			if b.races == 1 && len(b.raceText) < 200 {
				b.raceText = append(b.raceText, line)
			}
			if len(b.tail) > 200 {
				b.tail = b.tail[len(b.tail)-200:]
			}
			b.mu.Unlock()
			if servingRE.MatchString(line) {
				select {
				case srv <- struct{}{}:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	exited = b.exited
	go func() { exited <- cmd.Wait(); pw.Close() }()
	return srv, exited, nil
}

// Tail returns the last n lines the process printed.
func (b *Broker) Tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.tail
	if len(t) > n {
		t = t[len(t)-n:]
	}
	return strings.Join(t, "\n")
}

// said reports whether a line printed after mark contains s, waiting up to a second for
// lines still in the pipe (a process's exit can be seen before its last lines are read).
func (b *Broker) said(mark int, s string) bool {
	for i := 0; i < 20; i++ {
		if saidAny(b.LinesSince(mark), s) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Races returns how many data races a klite built with -race reported, and the first report.
func (b *Broker) Races() (int, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.races, strings.Join(b.raceText, "\n")
}

// Lines returns how many lines the process printed so far (a mark for LinesSince).
func (b *Broker) Lines() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lines
}

// LinesSince returns the lines printed after mark (those still in the last 200 kept).
func (b *Broker) LinesSince(mark int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(b.lines-mark, len(b.tail))
	return append([]string(nil), b.tail[len(b.tail)-n:]...)
}

// Kill sends SIGKILL and waits for the process to be gone.
func (b *Broker) Kill() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once continued on some kernels
	b.cmd.Process.Signal(syscall.SIGKILL)
	err := <-b.exited
	b.exited <- err
}

// Pause stops the process (SIGSTOP) for d, then continues it.
func (b *Broker) Pause(d time.Duration) error {
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	time.Sleep(d)
	return b.cmd.Process.Signal(syscall.SIGCONT)
}

// Exited reports whether the process died on its own.
func (b *Broker) Exited() (error, bool) {
	select {
	case err := <-b.exited:
		b.exited <- err
		return err, true
	default:
		return nil, false
	}
}

// Stop ends the process gracefully (SIGTERM), killing it after 15 s.
func (b *Broker) Stop() {
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGCONT)
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-b.exited:
		b.exited <- err
	case <-time.After(15 * time.Second):
		b.Kill()
	}
}
