package funnel

import (
	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/schemas"
)

// Output names the topic kind funnel transitions go to.
const Output = "transitions"

// Keyed is the funnel processor on the processor contract.
type Keyed struct {
	p     *Processor
	vocab schemas.Vocabulary
}

// NewKeyed returns the funnel on the processor contract; vocab translates
// the source's step names to the built-in ones for Facts.FunnelStage.
func NewKeyed(p *Processor, vocab schemas.Vocabulary) *Keyed { return &Keyed{p: p, vocab: vocab} }

var _ processors.Timed = (*Keyed)(nil)

// Name implements processors.Processor.
func (k *Keyed) Name() string { return "funnel" }

// Stream implements processors.Processor.
func (k *Keyed) Stream() processors.Stream { return processors.Clicks }

// NewState implements processors.Processor.
func (k *Keyed) NewState() any { st := State{}; return &st }

func (k *Keyed) state(u *processors.User) State {
	st := u.State("funnel").(*State)
	if *st == nil {
		*st = State{}
	}
	return *st
}

// Apply implements processors.Processor. The user's segment is read from
// the Facts only for an event that matches a step of a funnel breaking
// down by segment (entries and steps, not every click).
func (k *Keyed) Apply(u *processors.User, ev processors.Event) processors.Effects {
	if !k.p.bySegment {
		return k.effects(u.ID, k.p.Apply(k.state(u), *ev.Click))
	}
	return k.effects(u.ID, k.p.ApplyWith(k.state(u), *ev.Click, func() string { return u.Facts().Segment }))
}

// Describe implements processors.Processor.
func (k *Keyed) Describe(u *processors.User, f *processors.Facts) {
	st := k.state(u)
	f.FunnelStage = k.vocab.Canonical(k.p.Stage(st))
	f.AbandonedAt = k.p.AbandonedAt(st)
}

// NextDue implements processors.Timed: the end of the earliest open window.
func (k *Keyed) NextDue(u *processors.User) int64 { return k.p.NextDeadline(k.state(u)) }

// Fire implements processors.Timed: attempts whose window ended are
// abandoned.
func (k *Keyed) Fire(u *processors.User, at int64, _ processors.Effects) processors.Effects {
	return k.effects(u.ID, k.p.Expire(k.state(u), at))
}

// RecordMetric implements processors.Counted: transitions are counted by
// funnel, step and kind, every series from the start.
func (k *Keyed) RecordMetric() processors.Metric {
	m := processors.Metric{Output: Output, Name: "cx_funnel_transitions_total", Help: "Funnel transitions, by funnel, step and kind.", Labels: []string{"funnel", "step", "kind"}}
	for _, d := range k.p.Definitions() {
		for _, s := range d.Steps {
			for _, kind := range []Kind{Entered, Advanced, Converted, Abandoned} {
				m.Known = append(m.Known, []string{d.Name, s.Name, string(kind)})
			}
		}
	}
	return m
}

// UserTransition is a transition as published: keyed by user.
type UserTransition struct {
	UserID string `json:"user_id"`
	Transition
}

func (k *Keyed) effects(userID string, ts []Transition) processors.Effects {
	if len(ts) == 0 {
		return processors.Effects{}
	}
	recs := make([]processors.Record, len(ts))
	for i, t := range ts {
		recs[i] = processors.Record{Output: Output, Kind: string(t.Kind), Labels: []string{t.Funnel, t.StepName, string(t.Kind)},
			Value: UserTransition{UserID: userID, Transition: t}}
	}
	return processors.Effects{Records: recs}
}
