package storage

import "sync"

// completion is one finished append whose done callback is still to be called.
type completion struct {
	done func(Location, error)
	loc  Location
	err  error
}

// dispatcher calls done callbacks in order on its own goroutine, so that the goroutine that
// writes and fsyncs never waits for a callback (a callback may take locks that an appender
// holds while it is blocked on back-pressure).
type dispatcher struct {
	mu      sync.Mutex
	cond    sync.Cond
	queue   []completion
	spare   []completion
	closing bool
	exited  chan struct{}
}

func newDispatcher() *dispatcher {
	d := &dispatcher{exited: make(chan struct{})}
	d.cond.L = &d.mu
	go d.run()
	return d
}

// push queues completions; they are called after everything pushed before them.
func (d *dispatcher) push(cs ...completion) {
	d.mu.Lock()
	d.queue = append(d.queue, cs...)
	d.mu.Unlock()
	d.cond.Signal()
}

func (d *dispatcher) run() {
	defer close(d.exited)
	d.mu.Lock()
	for {
		for len(d.queue) == 0 && !d.closing {
			d.cond.Wait()
		}
		if len(d.queue) == 0 {
			d.mu.Unlock()
			return
		}
		batch := d.queue
		d.queue = d.spare[:0]
		d.mu.Unlock()
		for i := range batch {
			batch[i].done(batch[i].loc, batch[i].err)
			batch[i] = completion{}
		}
		d.mu.Lock()
		d.spare = batch[:0]
	}
}

// close waits until every queued callback has been called, then stops the goroutine.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closing = true
	d.mu.Unlock()
	d.cond.Signal()
	<-d.exited
}
