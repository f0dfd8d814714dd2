package pipeline

import (
	"github.com/cxstream/cxstream/processors"
)

// Step is a processor as the pipeline calls it: a failure is an error, not
// a panic. Middleware wraps every registered processor's Step once (see
// recover.go and observe.go), as the pipeline is built.
type Step interface {
	Apply(u *processors.User, ev processors.Event) (processors.Effects, error)
	Fire(u *processors.User, at int64, earlier processors.Effects) (processors.Effects, error)
}

// Middleware wraps the Step of the named processor.
type Middleware func(name string, next Step) Step

// stepOf is the bare Step of a processor: Fire does nothing for a
// processor without timers.
type stepOf struct{ p processors.Processor }

func (s stepOf) Apply(u *processors.User, ev processors.Event) (processors.Effects, error) {
	return s.p.Apply(u, ev), nil
}

func (s stepOf) Fire(u *processors.User, at int64, earlier processors.Effects) (processors.Effects, error) {
	if t, ok := s.p.(processors.Timed); ok {
		return t.Fire(u, at, earlier), nil
	}
	return processors.Effects{}, nil
}

// stage is one registered processor with its wrapped Step.
type stage struct {
	processors.Processor
	timed processors.Timed // nil: no timers
	step  Step
}
