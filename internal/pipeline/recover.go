package pipeline

import (
	"fmt"
	"runtime/debug"

	"github.com/cxstream/cxstream/processors"
)

// PanicError is a processor's panic, recovered, with the stack.
type PanicError struct {
	Processor string
	Value     any
	Stack     []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("%s processor panicked: %v\n%s", e.Processor, e.Value, e.Stack)
}

// Recover turns a processor's panic into a *PanicError: a processor bug
// must not stop the stream; the pipeline dead-letters the event with the
// error (reason processor_error).
func Recover() Middleware {
	return func(name string, next Step) Step { return recovering{name, next} }
}

type recovering struct {
	name string
	next Step
}

func (r recovering) Apply(u *processors.User, ev processors.Event) (eff processors.Effects, err error) {
	defer r.recover(&err)
	return r.next.Apply(u, ev)
}

func (r recovering) Fire(u *processors.User, at int64, earlier processors.Effects) (eff processors.Effects, err error) {
	defer r.recover(&err)
	return r.next.Fire(u, at, earlier)
}

func (r recovering) recover(err *error) {
	if v := recover(); v != nil {
		*err = &PanicError{Processor: r.name, Value: v, Stack: debug.Stack()}
	}
}
