package pipeline

import (
	"context"
	"runtime"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Combiner makes the small batches that several workers hand it at the
// same moment as one batch (ProcessParts). Under moderate load each
// partition's batch holds a few dozen records, and what a batch costs
// beyond its records (three round trips in turn, and waking the goroutines
// that wait for them) is most of its cost; the workers of one poll's
// partitions then share those round trips. A batch of MaxRecords records
// or more is made on its own, so the big batches of a backlog still run
// side by side on the cores.
//
// A worker that finds no batch gathering starts one: it yields once, so
// that the other workers the same poll woke (runnable at that moment) can
// join, then makes the batch with every batch that joined. Nothing waits
// on a timer, and a batch gathering never waits for one already running.
// (Yielding again while more joined made no fewer batches in the bench.)
type Combiner struct {
	p          *Pipeline
	maxRecords int
	// gather lets the batches of other workers join (yield but in tests).
	gather func()

	mu        sync.Mutex
	waiting   []*joined
	gathering bool
}

type joined struct {
	recs []*kgo.Record
	done chan struct{}
	err  error
}

// NewCombiner combines p's batches of fewer than maxRecords records
// (maxRecords <= 0: none, every batch is made on its own).
func NewCombiner(p *Pipeline, maxRecords int) *Combiner {
	return &Combiner{p: p, maxRecords: maxRecords, gather: runtime.Gosched}
}

// Process makes recs (one worker's batch, as Process takes it) durable,
// with the batches of other workers that arrive meanwhile. When that
// batch fails, each is made again on its own, so one partition's failure
// leaves the others going; on error the worker retries its own.
func (c *Combiner) Process(ctx context.Context, recs []*kgo.Record) error {
	if len(recs) >= c.maxRecords {
		_, err := c.p.Process(ctx, recs)
		return err
	}
	me := &joined{recs: recs, done: make(chan struct{})}
	c.mu.Lock()
	c.waiting = append(c.waiting, me)
	if c.gathering {
		c.mu.Unlock()
		<-me.done // bounded as the batch that took it is
		return me.err
	}
	c.gathering = true
	c.mu.Unlock()

	c.gather()

	c.mu.Lock()
	group := c.waiting
	c.waiting, c.gathering = nil, false
	c.mu.Unlock()
	parts := make([][]*kgo.Record, len(group))
	for i, j := range group {
		parts[i] = j.recs
	}
	_, err := c.p.ProcessParts(ctx, parts)
	for _, j := range group {
		j.err = err
	}
	if err != nil && len(group) > 1 {
		// One part's failure (a document that cannot be read, say) must
		// not hold the others back: each is made again on its own, as
		// its worker's retry would be (the fences make that safe), and
		// gets its own outcome.
		for _, j := range group {
			_, j.err = c.p.Process(ctx, j.recs)
		}
	}
	for _, j := range group {
		if j != me {
			close(j.done)
		}
	}
	return me.err
}
