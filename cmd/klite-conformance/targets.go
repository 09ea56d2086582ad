package main

import (
	"context"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/klite/klite/conformance"
)

// selectGlobs keeps the items whose name matches one of the comma-separated globs (all of
// them when globs is empty); nil, false when globs select nothing.
func selectGlobs[T any](items []T, name func(T) string, globs string) ([]T, bool) {
	want := split(globs)
	if len(want) == 0 {
		return items, true
	}
	var sel []T
	for _, it := range items {
		for _, g := range want {
			if ok, _ := path.Match(g, name(it)); ok {
				sel = append(sel, it)
				break
			}
		}
	}
	return sel, len(sel) > 0
}

// startBoth starts (or attaches to, where addrs names an address) every target at once. On
// error the targets already up are stopped. stop stops them all.
func startBoth(ctx context.Context, root string, addrs map[string]string, logf func(string, ...any)) (targets map[string]*conformance.Target, stop func(), err error) {
	targets = map[string]*conformance.Target{}
	var terr []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range conformance.TargetNames {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t, err := conformance.StartTarget(ctx, root, name, addrs[name])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				terr = append(terr, fmt.Sprintf("target %s: %v", name, err))
				return
			}
			targets[name] = t
			logf("target %s up at %s (%s, %d APIs)", name, t.Addr, t.Version, len(t.APIs))
		}()
	}
	wg.Wait()
	stop = func() {
		for _, t := range targets {
			t.Stop()
		}
	}
	if len(terr) > 0 {
		stop()
		return nil, func() {}, fmt.Errorf("%s", strings.Join(terr, "\n"))
	}
	return targets, stop, nil
}
