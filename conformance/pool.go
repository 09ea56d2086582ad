package conformance

import (
	"sync"
	"time"
)

// DriverPool keeps driver processes between cells so JVM and interpreter start-up is paid
// once. A driver is pooled only if it answers the optional `reset` op (clients/README.md);
// drivers that answer `unsupported` are closed as before.
type DriverPool struct {
	mu     sync.Mutex
	idle   map[string][]*Driver // client name -> idle drivers
	noPool map[string]bool      // clients whose drivers do not implement reset
	max    int
}

// NewDriverPool keeps at most max idle drivers per client.
func NewDriverPool(max int) *DriverPool {
	return &DriverPool{idle: map[string][]*Driver{}, noPool: map[string]bool{}, max: max}
}

// get returns an idle driver of the client, or nil.
func (p *DriverPool) get(client, actor string) *Driver {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.idle[client]
	if len(l) == 0 {
		return nil
	}
	d := l[len(l)-1]
	p.idle[client] = l[:len(l)-1]
	d.stderr.Reset()
	d.name = client + "/" + actor
	return d
}

// put resets a driver and keeps it, or closes it.
func (p *DriverPool) put(client string, d *Driver) {
	if p == nil || d.dead != nil {
		d.Close()
		return
	}
	p.mu.Lock()
	skip := p.noPool[client]
	p.mu.Unlock()
	if skip {
		d.Close()
		return
	}
	_, err := d.Call("reset", nil, 10*time.Second)
	if err != nil {
		// unsupported, or a driver that mishandles reset: never try again for this client.
		p.mu.Lock()
		p.noPool[client] = true
		p.mu.Unlock()
		d.Close()
		return
	}
	p.mu.Lock()
	if len(p.idle[client]) < p.max {
		p.idle[client] = append(p.idle[client], d)
		d = nil
	}
	p.mu.Unlock()
	if d != nil {
		d.Close()
	}
}

// Close closes every idle driver.
func (p *DriverPool) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	var all []*Driver
	for _, l := range p.idle {
		all = append(all, l...)
	}
	p.idle = map[string][]*Driver{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range all {
		wg.Add(1)
		go func() { defer wg.Done(); d.Close() }()
	}
	wg.Wait()
}
