package processors

import (
	"slices"

	"github.com/cxstream/cxstream/schemas"
)

// Stream names an input stream. A processor reads one stream, and its
// state lives in the user's document of that stream, which has a single
// writer: the owner of the user's partition of that stream.
type Stream string

// The input streams.
const (
	Clicks Stream = "click"
	Chats  Stream = "chat"
)

// Event is one valid input event of a user, exactly one of Click and Chat
// set.
type Event struct {
	Click *schemas.ClickEvent
	Chat  *schemas.ChatMessage
	// Role is the configured role of a click event's name (purchase,
	// support contact, ...); "" for chat messages and plain activity.
	Role schemas.Role
}

// Stream is the stream the event came from.
func (e Event) Stream() Stream {
	if e.Chat != nil {
		return Chats
	}
	return Clicks
}

// ID is the event id.
func (e Event) ID() string {
	if e.Chat != nil {
		return e.Chat.EventID
	}
	return e.Click.EventID
}

// UserID is the (pseudonymised) user id.
func (e Event) UserID() string {
	if e.Chat != nil {
		return e.Chat.UserID
	}
	return e.Click.UserID
}

// Time is the event time in ms.
func (e Event) Time() int64 {
	if e.Chat != nil {
		return e.Chat.EventTime
	}
	return e.Click.EventTime
}

// Record is something a processor publishes besides alerts: a funnel
// transition, a segment change. The pipeline counts it and produces it to
// the topic configured for its Output, if any.
type Record struct {
	// Output names the record's kind of topic ("transitions",
	// "segments"); the pipeline maps it to a configured topic.
	Output string
	// Kind is what happened ("abandoned", "converted", "changed"), for
	// the processors after this one.
	Kind string
	// Labels are the record's metric labels (cx_<output>_total).
	Labels []string
	// Value is marshalled to JSON as the record's value, keyed by user.
	Value any
}

// Effects are what one Apply or Fire returns: alerts and records, in the
// order they happened.
type Effects struct {
	Alerts  []*schemas.Alert
	Records []Record
}

// Add appends other's effects to e.
func (e *Effects) Add(other Effects) {
	e.Alerts = append(e.Alerts, other.Alerts...)
	e.Records = append(e.Records, other.Records...)
}

// Has reports whether e holds a record of the given kind.
func (e Effects) Has(kind string) bool {
	return slices.ContainsFunc(e.Records, func(r Record) bool { return r.Kind == kind })
}

// Facts are what processors tell each other about a user: each fills its
// part in Describe from its own state. A processor reads the others
// through Facts only, so none depends on another's state layout. Facts of
// the other stream's processors are as of the event's time: the consumer
// hands the pipeline a partition number's clicks and chats merged by event
// time.
type Facts struct {
	// From churn (clickstream): activity, purchases and spend.
	FirstSeen, LastSeen int64
	Purchases           int
	Spend               float64
	LastPurchase        int64
	ResurrectedAt       int64
	// DailyEvents[i] counts the user's events on day Day-i (UTC days
	// since the epoch), newest first.
	Day         int64
	DailyEvents []int
	// From funnel (clickstream): the furthest step of the first funnel's
	// open attempt, in the built-in vocabulary, and recent abandonments.
	FunnelStage string
	AbandonedAt []int64
	// From sentiment (chat): recent negative messages and conversation
	// starts, and the rolling sentiment of the user's messages.
	NegativeAt []int64
	ContactAt  []int64
	Sentiment  float64
	// From segment (clickstream): the user's current segment.
	Segment string
}

// Processor is the one contract of cxstream's stateful logic. It is pure:
// it changes only the state the User holds for it and returns what follows;
// the pipeline loads and stores state, fences and deduplicates events,
// fires timers by event time and produces the effects.
type Processor interface {
	// Name is the processor's name, and the key of its state in the
	// user's document.
	Name() string
	// Stream is the input stream it reads.
	Stream() Stream
	// NewState returns a pointer to an empty state; the pipeline decodes
	// stored state into it: with its own compact codec when the state
	// implements encoding.BinaryAppender and encoding.BinaryUnmarshaler
	// (see codec.go), else as JSON.
	NewState() any
	// Apply applies one event of the processor's stream.
	Apply(u *User, ev Event) Effects
	// Describe fills the processor's part of the user's Facts. It must
	// not call u.Facts (which calls Describe with u's scratch Facts).
	Describe(u *User, f *Facts)
}

// Timed is implemented by processors that act when event time passes a
// deadline with no event (a funnel window, an inactivity check). Timers
// are kept per clickstream partition, so only clickstream processors can
// be Timed.
type Timed interface {
	Processor
	// NextDue is when the processor next needs to act on the user without
	// an event (event time, ms), or 0 for never.
	NextDue(u *User) int64
	// Fire acts at event time at, which is the user's earliest deadline.
	// earlier holds what the processors before this one did at the same
	// instant (churn scores an abandonment the funnel just recorded).
	Fire(u *User, at int64, earlier Effects) Effects
}

// User is one user's state across processors, as the pipeline loaded it.
type User struct {
	ID     string
	procs  []Processor
	states []any
	// facts is Facts' scratch: a Facts passed to Describe, an interface
	// method, would otherwise be allocated on every call (three an event).
	facts Facts
}

// NewUser holds states[i] as the state of procs[i] (a nil state is
// replaced by procs[i].NewState()).
func NewUser(id string, procs []Processor, states []any) *User {
	if len(states) < len(procs) {
		states = append(states, make([]any, len(procs)-len(states))...)
	}
	for i, p := range procs {
		if states[i] == nil {
			states[i] = p.NewState()
		}
	}
	return &User{ID: id, procs: procs, states: states}
}

// State returns the state of the named processor (a pointer, as its
// NewState returns), or nil if no such processor is registered.
func (u *User) State(name string) any {
	for i, p := range u.procs {
		if p.Name() == name {
			return u.states[i]
		}
	}
	return nil
}

// States are the users' processor states, in registration order.
func (u *User) States() []any { return u.states }

// Facts asks every processor to describe the user.
func (u *User) Facts() Facts {
	u.facts = Facts{}
	for _, p := range u.procs {
		p.Describe(u, &u.facts)
	}
	return u.facts
}

// Counted is implemented by processors whose records are counted in a
// metric of their own; Record.Labels are its label values.
type Counted interface {
	RecordMetric() Metric
}

// Metric describes a counter of a processor's records.
type Metric struct {
	// Output is the Record.Output whose records it counts.
	Output string
	// Name of the counter (cx_..._total) and its help text.
	Name, Help string
	// Labels are the label names.
	Labels []string
	// Known lists label values known at start, whose series are created
	// at 0.
	Known [][]string
}
