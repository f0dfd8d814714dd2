package segment

import (
	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/schemas"
)

// Output names the topic kind segment changes go to (topics.segments).
const Output = "segments"

// KindChanged is the Record.Kind of a segment change.
const KindChanged = "changed"

// None is the "from" metric label of a user's first segment.
const None = "none"

// Keyed is the segment processor on the processor contract. Register it
// after funnel and churn: it reads their Facts after the same click.
type Keyed struct{ p *Processor }

// NewKeyed returns the segment processor on the processor contract.
func NewKeyed(p *Processor) *Keyed { return &Keyed{p: p} }

var (
	_ processors.Timed   = (*Keyed)(nil)
	_ processors.Counted = (*Keyed)(nil)
)

// Name implements processors.Processor.
func (k *Keyed) Name() string { return "segment" }

// Stream implements processors.Processor.
func (k *Keyed) Stream() processors.Stream { return processors.Clicks }

// NewState implements processors.Processor.
func (k *Keyed) NewState() any { return &State{} }

func state(u *processors.User) *State { return u.State("segment").(*State) }

// Apply implements processors.Processor: a change time alone brought
// before the click is published first (the watermark may not have fired
// it yet), then the click's properties are kept if a rule tests them and
// the user is evaluated at the click's time.
func (k *Keyed) Apply(u *processors.User, ev processors.Event) processors.Effects {
	st := state(u)
	eff := changed(k.p.CatchUp(st, u.ID, ev.Time()))
	k.p.Observe(st, *ev.Click)
	eff.Add(changed(k.p.Evaluate(st, u.ID, u.Facts(), ev.Time(), schemas.SegmentTriggerEvent)))
	return eff
}

// Describe implements processors.Processor.
func (k *Keyed) Describe(u *processors.User, f *processors.Facts) { f.Segment = state(u).Segment }

// NextDue implements processors.Timed: when a time-dependent rule can
// next flip.
func (k *Keyed) NextDue(u *processors.User) int64 { return k.p.NextDue(state(u)) }

// Fire implements processors.Timed: the user is evaluated at the
// deadline, whichever processor's it is (a funnel abandonment can move
// the user too).
func (k *Keyed) Fire(u *processors.User, at int64, _ processors.Effects) processors.Effects {
	return changed(k.p.Evaluate(state(u), u.ID, u.Facts(), at, schemas.SegmentTriggerTime))
}

// RecordMetric implements processors.Counted: changes by from and to,
// every pair of configured segments from the start.
func (k *Keyed) RecordMetric() processors.Metric {
	m := processors.Metric{Output: Output, Name: "cx_segment_changes_total", Help: "Changes of customers' segments, by from and to segment (from none: a user's first segment).", Labels: []string{"from", "to"}}
	names := k.p.cfg.Names()
	for _, to := range names {
		for _, from := range append([]string{None}, names...) {
			if from != to {
				m.Known = append(m.Known, []string{from, to})
			}
		}
	}
	return m
}

func changed(c *schemas.SegmentChange) processors.Effects {
	if c == nil {
		return processors.Effects{}
	}
	from := c.From
	if from == "" {
		from = None
	}
	return processors.Effects{Records: []processors.Record{{Output: Output, Kind: KindChanged, Labels: []string{from, c.To}, Value: c}}}
}
