package pipeline

import (
	"time"

	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/processors"
)

// Observe records every call of a processor once, around it: its latency
// (cx_processor_seconds) and its errors (cx_processor_errors_total), as
// Benthos' auto-observed processors do.
func Observe(m *metrics.Metrics) Middleware {
	return func(name string, next Step) Step {
		return observed{next: next, latency: m.Processor(name), errors: m.ProcessorErrors.WithLabelValues(name)}
	}
}

type observed struct {
	next    Step
	latency metrics.ProcessorObserver
	errors  interface{ Inc() }
}

func (o observed) Apply(u *processors.User, ev processors.Event) (processors.Effects, error) {
	start := time.Now()
	eff, err := o.next.Apply(u, ev)
	o.done(start, err)
	return eff, err
}

func (o observed) Fire(u *processors.User, at int64, earlier processors.Effects) (processors.Effects, error) {
	start := time.Now()
	eff, err := o.next.Fire(u, at, earlier)
	o.done(start, err)
	return eff, err
}

func (o observed) done(start time.Time, err error) {
	o.latency.Since(start)
	if err != nil {
		o.errors.Inc()
	}
}
