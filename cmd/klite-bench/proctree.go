package main

// CPU time and memory of a broker's whole process tree, from /proc: Kafka runs as
// run-kafka.sh exec'ing a JVM (with a short-lived formatting JVM before it), klite as one
// process, and both are counted the same way.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procStat is what the bench reads of one process's /proc/<pid>/stat.
type procStat struct {
	ppid     int
	cpuTicks int64 // utime + stime
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	// Fields after the parenthesised command name: state is the 1st, ppid the 2nd, utime and
	// stime the 12th and 13th.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 13 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return procStat{ppid: ppid, cpuTicks: ut + st}, true
}

// processTree returns root and all its descendants that are alive now.
func processTree(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, ok := readStat(pid); ok {
			children[s.ppid] = append(children[s.ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out) && i < 10000; i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// treeCPU is the user+system CPU time of root's process tree (-1 if root is gone). Time of
// children that already exited is counted through their parent's cutime/cstime only once
// reaped; the bench reads it around phases of a long-running broker, where that is nothing.
func treeCPU(root int) time.Duration {
	if root <= 0 {
		return -1
	}
	var ticks int64
	found := false
	for _, pid := range processTree(root) {
		if s, ok := readStat(pid); ok {
			ticks += s.cpuTicks
			found = true
		}
	}
	if !found {
		return -1
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ticks) * time.Second / clkTck
}

// treeRSS is the summed current (VmRSS) and peak (VmHWM) resident set of root's tree.
func treeRSS(root int) (cur, peak int64) {
	if root <= 0 {
		return 0, 0
	}
	for _, pid := range processTree(root) {
		c, p := pidRSS(pid)
		cur, peak = cur+c, peak+p
	}
	return cur, peak
}

// treeAnonRSS is the summed anonymous resident memory (RssAnon: heap, stacks; not the
// pages of the executable and libraries, which the page cache shares) of root's tree.
func treeAnonRSS(root int) int64 {
	if root <= 0 {
		return 0
	}
	var n int64
	for _, pid := range processTree(root) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			var kb int64
			if _, err := fmt.Sscanf(line, "RssAnon: %d kB", &kb); err == nil {
				n += kb * 1024
			}
		}
	}
	return n
}

func pidRSS(pid int) (cur, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			cur = kb * 1024
		}
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
			peak = kb * 1024
		}
	}
	return cur, peak
}

// rssSample is one point of a broker's RSS over the run.
type rssSample struct {
	at  time.Duration // since the sampler started
	rss int64
}

// rssSampler records a process tree's RSS every interval until stopped, and the highest
// sample (VmHWM of a JVM counts its heap reservation touched once, so the bench reports the
// sampled peak for both brokers alike).
type rssSampler struct {
	mu      sync.Mutex
	samples []rssSample
	peak    int64
	stopped chan struct{}
	done    chan struct{}
}

func startRSSSampler(pid int, start time.Time, every time.Duration) *rssSampler {
	s := &rssSampler{stopped: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			cur, _ := treeRSS(pid)
			s.mu.Lock()
			s.samples = append(s.samples, rssSample{time.Since(start), cur})
			s.peak = max(s.peak, cur)
			s.mu.Unlock()
			select {
			case <-s.stopped:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// resetPeak starts a new peak window and returns the peak of the one before.
func (s *rssSampler) resetPeak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peak
	s.peak = 0
	return p
}

func (s *rssSampler) stop() []rssSample {
	close(s.stopped)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}
