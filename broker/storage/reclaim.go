package storage

// Giving a removed WAL segment's blocks back a slice at a time.
//
// Unlinking a whole 256 MiB segment frees all its blocks in one journal transaction; on a file
// system mounted with online discard (ext4 -o discard, common on cloud disks) that commit
// also waits for the device to discard them all, and every WAL fsync queued behind it waits
// too: measured here, 57-79 ms per removed segment, which showed as e2e latency spikes of
// 50-270 ms every WAL rotation under 100 MB/s of produce. So a removed segment is renamed
// out of the way first (durable at once, invisible to OpenWAL's listing, so the removal is as
// atomic as before), then truncated from its end reclaimStep at a time with reclaimPause
// between steps, and unlinked once empty. One background goroutine does it for the whole
// process, one file after the other; a file left over by a crash is finished at the next
// OpenWAL.

import (
	"os"
	"sync"
	"time"
)

const (
	// reclaimSuffix marks a removed WAL segment whose blocks are still being given back.
	reclaimSuffix = ".del"
	reclaimStep   = 8 << 20
	reclaimPause  = 5 * time.Millisecond
	// reclaimMaxQueued: with this many files waiting the steps go without pauses, so a
	// WAL written faster than the pauses allow (1.6 GB/s) does not pile up removed files.
	reclaimMaxQueued = 4
)

var reclaim struct {
	mu      sync.Mutex
	queue   []string
	running bool
	idle    sync.Cond // L = &mu; broadcast when the queue empties
}

func init() { reclaim.idle.L = &reclaim.mu }

// reclaimFile truncates path step by step in the background and then removes it. The file
// must no longer be reachable under a name anything reads.
func reclaimFile(path string) {
	reclaim.mu.Lock()
	defer reclaim.mu.Unlock()
	reclaim.queue = append(reclaim.queue, path)
	if !reclaim.running {
		reclaim.running = true
		go reclaimLoop()
	}
}

func reclaimLoop() {
	for {
		reclaim.mu.Lock()
		if len(reclaim.queue) == 0 {
			reclaim.running = false
			reclaim.idle.Broadcast()
			reclaim.mu.Unlock()
			return
		}
		path := reclaim.queue[0]
		reclaim.queue = reclaim.queue[1:]
		reclaim.mu.Unlock()
		shrinkAndRemove(path)
	}
}

// shrinkAndRemove gives path's blocks back from its end, reclaimStep at a time, then removes
// it. Any failure falls back to removing it at once: the space must come back either way.
func shrinkAndRemove(path string) {
	if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
		if fi, err := f.Stat(); err == nil {
			for size := fi.Size(); size > reclaimStep; {
				size -= reclaimStep
				if f.Truncate(size) != nil {
					break
				}
				reclaim.mu.Lock()
				behind := len(reclaim.queue) >= reclaimMaxQueued
				reclaim.mu.Unlock()
				if !behind {
					time.Sleep(reclaimPause)
				}
			}
		}
		f.Close()
	}
	os.Remove(path)
}

// waitReclaimed waits until every removed WAL segment's file is gone (tests).
func waitReclaimed() {
	reclaim.mu.Lock()
	defer reclaim.mu.Unlock()
	for reclaim.running {
		reclaim.idle.Wait()
	}
}
