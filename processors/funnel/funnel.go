// Package funnel tracks each user's progress through conversion funnels
// (for example product view -> add to cart -> checkout -> purchase): entry,
// advancing steps, conversion within a window, and abandonment when the
// window runs out.
package funnel

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cxstream/cxstream/schemas"
)

// Step is one step of a funnel: an event of one of Events whose fields
// match Where ("properties.category": "course", "page": "/checkout").
type Step struct {
	Name   string            `yaml:"name"`
	Events []string          `yaml:"events"`
	Where  map[string]string `yaml:"where,omitempty"`
}

// Definition is one funnel.
type Definition struct {
	Name  string `yaml:"name"`
	Steps []Step `yaml:"steps"`
	// Window counts from the first step; a repeated first step does not
	// reset it.
	Window time.Duration `yaml:"window"`
}

// DefaultDefinitions is the funnel cxstream ships: view -> cart ->
// checkout -> purchase within a day.
func DefaultDefinitions() []Definition {
	return []Definition{{
		Name: "purchase",
		Steps: []Step{
			{Name: "view", Events: []string{schemas.ClickProductView, schemas.ClickCourseView}},
			{Name: "cart", Events: []string{schemas.ClickAddToCart}},
			{Name: "checkout", Events: []string{schemas.ClickCheckoutStart}},
			{Name: "purchase", Events: []string{schemas.ClickPurchase}},
		},
		Window: 24 * time.Hour,
	}}
}

// Validate reports a definition that cannot work.
func (d Definition) Validate() error {
	if d.Name == "" {
		return errors.New("funnel needs a name")
	}
	if len(d.Steps) < 2 {
		return fmt.Errorf("funnel %q needs at least two steps", d.Name)
	}
	if d.Window <= 0 {
		return fmt.Errorf("funnel %q needs a positive window", d.Name)
	}
	for i, s := range d.Steps {
		if s.Name == "" {
			return fmt.Errorf("funnel %q step %d needs a name", d.Name, i+1)
		}
		if len(s.Events) == 0 {
			return fmt.Errorf("funnel %q step %q needs at least one event type", d.Name, s.Name)
		}
	}
	return nil
}

// Progress is one user's position in one funnel.
type Progress struct {
	// Step is the index of the furthest step reached in the current
	// attempt, -1 when the user is not in the funnel.
	Step      int     `json:"s"`
	EnteredAt int64   `json:"e,omitempty"`
	StepAt    []int64 `json:"t,omitempty"`
	// LastAt is the latest event time applied, for ordering checks.
	LastAt       int64 `json:"l,omitempty"`
	Conversions  int   `json:"c,omitempty"`
	Abandonments int   `json:"a,omitempty"`
	// AbandonedAt are the times of recent abandonments (newest last,
	// at most maxAbandonHistory), for the churn features.
	AbandonedAt []int64 `json:"ab,omitempty"`
}

const maxAbandonHistory = 8

// State is a user's progress in every funnel, by funnel name.
type State map[string]*Progress

// Kind of a transition.
type Kind string

// Transition kinds.
const (
	Entered   Kind = "entered"
	Advanced  Kind = "advanced"
	Converted Kind = "converted"
	Abandoned Kind = "abandoned"
)

// Transition is a change in a user's funnel position.
type Transition struct {
	Funnel string `json:"funnel"`
	Kind   Kind   `json:"kind"`
	// Step is the index of the step reached (for Abandoned: the furthest
	// step reached before the window ran out).
	Step     int    `json:"step"`
	StepName string `json:"step_name"`
	At       int64  `json:"at"`
	// TookMs is the time from entry, for Converted and Abandoned.
	TookMs int64 `json:"took_ms,omitempty"`
}

// Processor applies click events to funnel State.
type Processor struct {
	defs []Definition
}

// New checks the definitions and returns a processor for them.
func New(defs []Definition) (*Processor, error) {
	seen := map[string]bool{}
	for _, d := range defs {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("funnel: %w", err)
		}
		if seen[d.Name] {
			return nil, fmt.Errorf("funnel: two funnels named %q", d.Name)
		}
		seen[d.Name] = true
	}
	return &Processor{defs: slices.Clone(defs)}, nil
}

// Definitions returns the funnels this processor tracks.
func (p *Processor) Definitions() []Definition { return p.defs }

// Apply folds one click event into st and returns the transitions, in
// order. An abandonment whose window ran out before this event comes
// first.
func (p *Processor) Apply(st State, ev schemas.ClickEvent) []Transition {
	var out []Transition
	for i := range p.defs {
		d := &p.defs[i]
		pr := st[d.Name]
		if pr == nil {
			pr = &Progress{Step: -1}
		}
		out = p.expire(d, pr, ev.EventTime, out)
		out = p.step(d, pr, ev, out)
		if pr.Step >= 0 || pr.Conversions > 0 || pr.Abandonments > 0 {
			st[d.Name] = pr
		}
	}
	return out
}

// Expire abandons every funnel attempt whose window ended at or before
// now (ms). Timers call it for users who send no further event.
func (p *Processor) Expire(st State, now int64) []Transition {
	var out []Transition
	for i := range p.defs {
		if pr := st[p.defs[i].Name]; pr != nil {
			out = p.expire(&p.defs[i], pr, now, out)
		}
	}
	return out
}

// NextDeadline is the earliest time at which Expire would abandon an
// attempt in st, or 0 when no attempt is open.
func (p *Processor) NextDeadline(st State) int64 {
	var next int64
	for i := range p.defs {
		pr := st[p.defs[i].Name]
		if pr == nil || pr.Step < 0 {
			continue
		}
		due := pr.EnteredAt + p.defs[i].Window.Milliseconds()
		if next == 0 || due < next {
			next = due
		}
	}
	return next
}

// Stage names the furthest step reached in the first funnel's open
// attempt, or "" when none is open.
func (p *Processor) Stage(st State) string {
	if len(p.defs) == 0 {
		return ""
	}
	pr := st[p.defs[0].Name]
	if pr == nil || pr.Step < 0 {
		return ""
	}
	return p.defs[0].Steps[pr.Step].Events[0]
}

func (p *Processor) expire(d *Definition, pr *Progress, now int64, out []Transition) []Transition {
	if pr.Step < 0 {
		return out
	}
	due := pr.EnteredAt + d.Window.Milliseconds()
	if now < due {
		return out
	}
	out = append(out, Transition{Funnel: d.Name, Kind: Abandoned, Step: pr.Step, StepName: d.Steps[pr.Step].Name, At: due, TookMs: due - pr.EnteredAt})
	pr.Abandonments++
	pr.AbandonedAt = append(pr.AbandonedAt, due)
	if len(pr.AbandonedAt) > maxAbandonHistory {
		pr.AbandonedAt = pr.AbandonedAt[len(pr.AbandonedAt)-maxAbandonHistory:]
	}
	pr.Step, pr.EnteredAt, pr.StepAt = -1, 0, nil
	return out
}

func (p *Processor) step(d *Definition, pr *Progress, ev schemas.ClickEvent, out []Transition) []Transition {
	pr.LastAt = max(pr.LastAt, ev.EventTime)
	next := pr.Step + 1
	if !matches(d.Steps[next], ev) {
		return out
	}
	if next == 0 {
		pr.EnteredAt = ev.EventTime
	}
	pr.Step = next
	pr.StepAt = append(pr.StepAt, ev.EventTime)
	kind := Advanced
	switch {
	case next == 0:
		kind = Entered
	case next == len(d.Steps)-1:
		kind = Converted
	}
	t := Transition{Funnel: d.Name, Kind: kind, Step: next, StepName: d.Steps[next].Name, At: ev.EventTime}
	if kind == Converted {
		t.TookMs = ev.EventTime - pr.EnteredAt
		pr.Conversions++
		pr.Step, pr.EnteredAt, pr.StepAt = -1, 0, nil
	}
	return append(out, t)
}

func matches(s Step, ev schemas.ClickEvent) bool {
	if !slices.Contains(s.Events, ev.Type) {
		return false
	}
	for field, want := range s.Where {
		if fieldValue(ev, field) != want {
			return false
		}
	}
	return true
}

func fieldValue(ev schemas.ClickEvent, field string) string {
	switch field {
	case "page":
		return ev.Page
	case "item_id":
		return ev.ItemID
	case "session_id":
		return ev.SessionID
	case "currency":
		return ev.Currency
	}
	const prefix = "properties."
	if len(field) > len(prefix) && field[:len(prefix)] == prefix {
		if v, ok := ev.Properties[field[len(prefix):]]; ok {
			return fmt.Sprint(v)
		}
	}
	return ""
}
