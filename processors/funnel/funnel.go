// Package funnel tracks each user's progress through conversion funnels
// (for example product view -> add to cart -> checkout -> purchase): entry,
// advancing steps, conversion within a window, and drop-off when the window
// runs out, an exclusion step happens, or (strict order) another event
// comes between steps.
//
// Events may arrive out of order by up to the allowed lateness: a user's
// progress is a folded base plus a short buffer of recent events kept in
// event-time order, so a late event is put in its place and the result is
// the same as if the events had arrived in order. Duplicate event ids
// inside the buffer are dropped.
package funnel

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cxstream/cxstream/schemas"
)

// Order says how steps must follow each other.
type Order string

// Orders.
const (
	// Ordered: steps in order; other events may happen in between.
	Ordered Order = "ordered"
	// Strict: steps in order with no other event of the user in between.
	Strict Order = "strict"
	// Any: the first step first, the others in any order.
	Any Order = "any"
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
	// Order: ordered (default), strict or any.
	Order Order `yaml:"order,omitempty"`
	// Exclusions end an attempt when one happens after entry.
	Exclusions []Step `yaml:"exclusions,omitempty"`
	// HoldConstant names a field (session_id, page, item_id or
	// properties.X) all steps of an attempt must share.
	HoldConstant string `yaml:"hold_constant,omitempty"`
	// Breakdowns the funnel keeps per attempt: "segment" and
	// "property.<name>" (see CheckBreakdown).
	Breakdowns []string `yaml:"breakdowns,omitempty"`
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
		Window:     24 * time.Hour,
		Breakdowns: []string{BySegment},
	}}
}

// Validate reports a definition that cannot work.
func (d Definition) Validate() error {
	if d.Name == "" {
		return errors.New("funnel needs a name")
	}
	if len(d.Steps) < 2 || len(d.Steps) > 32 {
		return fmt.Errorf("funnel %q needs 2 to 32 steps", d.Name)
	}
	if d.Window <= 0 {
		return fmt.Errorf("funnel %q needs a positive window", d.Name)
	}
	switch d.Order {
	case "", Ordered, Strict, Any:
	default:
		return fmt.Errorf("funnel %q: order must be ordered, strict or any, got %q", d.Name, d.Order)
	}
	for i, s := range append(slices.Clone(d.Steps), d.Exclusions...) {
		if s.Name == "" {
			return fmt.Errorf("funnel %q step %d needs a name", d.Name, i+1)
		}
		if len(s.Events) == 0 {
			return fmt.Errorf("funnel %q step %q needs at least one event type", d.Name, s.Name)
		}
	}
	return nil
}

// Kind of a transition.
type Kind string

// Transition kinds.
const (
	Entered   Kind = "entered"
	Advanced  Kind = "advanced"
	Converted Kind = "converted"
	Abandoned Kind = "abandoned"
)

// Why an attempt was abandoned.
const (
	ReasonWindow   = "window"
	ReasonStrict   = "strict_order"
	ReasonExcluded = "excluded"
)

// Transition is a change in a user's funnel position.
type Transition struct {
	Funnel string `json:"funnel"`
	Kind   Kind   `json:"kind"`
	// Step is the index of the step reached (for Abandoned: the furthest
	// step reached before the attempt ended).
	Step     int    `json:"step"`
	StepName string `json:"step_name"`
	At       int64  `json:"at"`
	// TookMs is the time from entry, for Converted and Abandoned.
	TookMs int64  `json:"took_ms,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Processor applies click events to funnel State.
type Processor struct {
	defs     []Definition
	lateness int64
	limits   Limits
	// bySegment: some funnel breaks down by segment.
	bySegment bool
}

// New checks the definitions and returns a processor. lateness is how far
// behind a user's latest event an event may arrive and still be put in
// its place (0: events are taken in arrival order).
func New(defs []Definition, lateness time.Duration, opts ...Option) (*Processor, error) {
	p := &Processor{lateness: lateness.Milliseconds(), limits: DefaultLimits()}
	for _, o := range opts {
		o(p)
	}
	if err := p.limits.Validate(); err != nil {
		return nil, fmt.Errorf("funnel: breakdown limits: %w", err)
	}
	seen := map[string]bool{}
	for i, d := range defs {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("funnel: %w", err)
		}
		if len(d.Breakdowns) > MaxBreakdowns {
			return nil, fmt.Errorf("funnel %q: at most %d breakdowns, got %d", d.Name, MaxBreakdowns, len(d.Breakdowns))
		}
		for j, b := range d.Breakdowns {
			if err := CheckBreakdown(b); err != nil {
				return nil, fmt.Errorf("funnel %q: %w", d.Name, err)
			}
			if slices.Contains(d.Breakdowns[:j], b) {
				return nil, fmt.Errorf("funnel %q: breakdown %q is listed twice", d.Name, b)
			}
			p.bySegment = p.bySegment || b == BySegment
		}
		if seen[d.Name] {
			return nil, fmt.Errorf("funnel: two funnels named %q", d.Name)
		}
		seen[d.Name] = true
		if d.Order == "" {
			defs[i].Order = Ordered
		}
	}
	p.defs = slices.Clone(defs)
	return p, nil
}

// Definitions returns the funnels this processor tracks.
func (p *Processor) Definitions() []Definition { return p.defs }

// State is a user's progress in every funnel, by funnel name.
type State map[string]*Progress

// Progress is one user's position in one funnel: Base folded, plus Recent
// events (time order) not yet older than the lateness horizon.
type Progress struct {
	Base   Attempt       `json:"b"`
	Recent []RecentEvent `json:"r,omitempty"`
	// Now is Base with Recent applied: the current position, kept so
	// readers (churn, reports, `cxstream user`) need not fold.
	Now   Attempt        `json:"n"`
	Stats ConversionStat `json:"x"`
}

// RecentEvent is what the funnel needs of a buffered event.
type RecentEvent struct {
	ID string `json:"i"`
	At int64  `json:"t"`
	// Matches: bit i set when the event matches step i (up to 32 steps).
	Matches uint32 `json:"m"`
	// Excluded: the event matches an exclusion and ends the attempt.
	Excluded bool   `json:"x,omitempty"`
	Hold     string `json:"h,omitempty"`
	// Touch holds the event's values of the funnel's breakdowns (only
	// those it has), taken when it arrived.
	Touch map[string]string `json:"v,omitempty"`
}

// legacyExclusionBit marked exclusions inside Matches before Excluded
// existed, which made step 32 unreachable. Documents stored then may still
// hold it for funnels of fewer than 32 steps.
const legacyExclusionBit = 1 << 31

// excluded tells whether ev ends the attempt.
func excluded(d *Definition, ev RecentEvent) bool {
	return ev.Excluded || (len(d.Steps) < 32 && ev.Matches&legacyExclusionBit != 0)
}

// Attempt is the folded position and counters.
type Attempt struct {
	// Step is the furthest step index reached in the open attempt, -1
	// when none is open.
	Step      int     `json:"s"`
	Done      uint32  `json:"d,omitempty"` // steps done (order any)
	EnteredAt int64   `json:"e,omitempty"`
	StepAt    []int64 `json:"st,omitempty"`
	Hold      string  `json:"h,omitempty"`
	LastAt    int64   `json:"l,omitempty"`
	// Reached counts attempts that reached each step.
	Reached      []int   `json:"rc,omitempty"`
	Conversions  int     `json:"c,omitempty"`
	Abandonments int     `json:"a,omitempty"`
	AbandonedAt  []int64 `json:"ab,omitempty"`
	// ByHour counts entries, conversions and drop-offs per hour (hours
	// since the epoch) over the last HourHistory hours, for reports.
	ByHour map[int64]*HourCounts `json:"hr,omitempty"`
	// First and Last are the open attempt's breakdown values (only those
	// it has): at entry, and at the last step reached. Never changed in
	// place (Base and Now may share them).
	First map[string]string `json:"vf,omitempty"`
	Last  map[string]string `json:"vl,omitempty"`
	// Groups tallies the ended attempts per breakdown and group value.
	Groups map[string]*Tally `json:"g,omitempty"`
}

// HourCounts are one hour's funnel outcomes.
type HourCounts struct {
	Entries      int `json:"e,omitempty"`
	Conversions  int `json:"c,omitempty"`
	Abandonments int `json:"a,omitempty"`
}

// HourHistory is how many hours of ByHour a user keeps.
const HourHistory = 48

const hourMs = int64(time.Hour / time.Millisecond)

func (a *Attempt) hour(at int64) *HourCounts {
	h := at / hourMs
	if a.ByHour == nil {
		a.ByHour = map[int64]*HourCounts{}
	}
	c := a.ByHour[h]
	if c == nil {
		c = &HourCounts{}
		a.ByHour[h] = c
		for old := range a.ByHour {
			if old <= h-HourHistory {
				delete(a.ByHour, old)
			}
		}
	}
	return c
}

// ConversionStat keeps time-to-convert figures of the conversions folded
// into the base (Base.Conversions of them): the total, for the mean, and
// the most recent durations, for the median.
type ConversionStat struct {
	TotalMs int64   `json:"tm,omitempty"`
	Last    []int64 `json:"ls,omitempty"`
}

const (
	maxAbandonHistory = 8
	maxRecent         = 256
	maxConvertHistory = 64
)

// View is the current position: the base with the recent events applied.
func (p *Processor) View(d *Definition, pr *Progress) Attempt {
	if pr.Now.Reached == nil && pr.Base.Reached == nil && len(pr.Recent) == 0 {
		return Attempt{Step: -1}
	}
	return pr.Now
}

// ConvertStats are the time-to-convert figures of every conversion of pr
// (View(d, pr).Conversions of them),
// the ones still in the lateness buffer included, so a report is complete
// at any moment, not only once later events settle the buffer.
func (p *Processor) ConvertStats(d *Definition, pr *Progress) ConversionStat {
	a := pr.Base.clone()
	stats := ConversionStat{TotalMs: pr.Stats.TotalMs, Last: slices.Clone(pr.Stats.Last)}
	for _, ev := range pr.Recent {
		p.fold(d, &a, ev, nil, &stats)
	}
	return stats
}

// refresh recomputes Now.
func (p *Processor) refresh(d *Definition, pr *Progress) {
	pr.Now, _ = p.foldRecent(d, pr)
}

func (a Attempt) clone() Attempt {
	a.StepAt = slices.Clone(a.StepAt)
	a.Reached = slices.Clone(a.Reached)
	a.AbandonedAt = slices.Clone(a.AbandonedAt)
	if a.ByHour != nil {
		hours := make(map[int64]*HourCounts, len(a.ByHour))
		for h, c := range a.ByHour {
			cc := *c
			hours[h] = &cc
		}
		a.ByHour = hours
	}
	a.Groups = cloneGroups(a.Groups)
	return a
}

// Apply folds one click event into st and returns the transitions it
// causes, in event-time order. An event more than the lateness behind the
// user's latest is applied in arrival order (the pipeline dead-letters
// those before they get here).
func (p *Processor) Apply(st State, ev schemas.ClickEvent) []Transition {
	return p.ApplyWith(st, ev, nil)
}

// ApplyWith is Apply for funnels with breakdowns: segment tells the
// user's segment, and is asked at most once, only when the event matches
// a step of a funnel that breaks down by segment.
func (p *Processor) ApplyWith(st State, ev schemas.ClickEvent, segment func() string) []Transition {
	if segment != nil && p.bySegment {
		asked, seg := false, ""
		ask := segment
		segment = func() string {
			if !asked {
				asked, seg = true, ask()
			}
			return seg
		}
	}
	var out []Transition
	for i := range p.defs {
		d := &p.defs[i]
		pr := st[d.Name]
		if pr == nil {
			pr = &Progress{Base: Attempt{Step: -1}}
		}
		matched, excl := p.matches(d, ev)
		re := RecentEvent{ID: ev.EventID, At: ev.EventTime, Matches: matched, Excluded: excl, Hold: fieldValue(ev, d.HoldConstant)}
		if re.Matches == 0 && !re.Excluded && d.Order != Strict {
			// Irrelevant: an expired window is judged by the next relevant
			// event or the timer. A strict funnel keeps every event: one
			// arriving late may turn out to sit between two steps.
			continue
		}
		if slices.ContainsFunc(pr.Recent, func(r RecentEvent) bool { return r.ID == re.ID && r.At == re.At }) {
			continue // a duplicate
		}
		if re.Matches != 0 && len(d.Breakdowns) > 0 {
			re.Touch = p.touches(d, &ev, segment)
		}
		if n := len(pr.Recent); n == 0 || re.At >= pr.Recent[n-1].At {
			// In order (the usual case): fold the event onto the current
			// position; nothing before it changes.
			if pr.Now.Reached == nil && len(pr.Recent) == 0 {
				pr.Now = pr.Base.clone()
			}
			p.fold(d, &pr.Now, re, &out, nil)
			pr.Recent = append(pr.Recent, re)
			p.settle(d, pr)
		} else {
			// Late: put it in its place and fold the buffer again; report
			// what the new order produces that the old one did not.
			_, before := p.foldRecent(d, pr)
			pos, _ := slices.BinarySearchFunc(pr.Recent, re.At, func(r RecentEvent, at int64) int {
				if r.At <= at {
					return -1 // equal times keep arrival order
				}
				return 1
			})
			pr.Recent = slices.Insert(pr.Recent, pos, re)
			now, after := p.foldRecent(d, pr)
			out = append(out, newOnes(before, after)...)
			p.settle(d, pr) // moves events from Recent into Base: Base+Recent, so Now, stays the same
			pr.Now = now
		}
		st[d.Name] = pr
	}
	return out
}

// foldRecent folds the buffer over a copy of the base: the current
// position and the transitions it took to get there.
func (p *Processor) foldRecent(d *Definition, pr *Progress) (Attempt, []Transition) {
	a := pr.Base.clone()
	var out []Transition
	for _, ev := range pr.Recent {
		p.fold(d, &a, ev, &out, nil)
	}
	return a, out
}

// newOnes returns the transitions of after that before did not have
// (before is usually a prefix of after).
func newOnes(before, after []Transition) []Transition {
	seen := map[Transition]int{}
	for _, t := range before {
		seen[t]++
	}
	var out []Transition
	for _, t := range after {
		if seen[t] > 0 {
			seen[t]--
			continue
		}
		out = append(out, t)
	}
	return out
}

// settle folds buffered events older than the lateness horizon into the
// base, and keeps the buffer bounded.
func (p *Processor) settle(d *Definition, pr *Progress) {
	latest := pr.Recent[len(pr.Recent)-1].At
	n := 0
	for n < len(pr.Recent) && (pr.Recent[n].At < latest-p.lateness || len(pr.Recent)-n > maxRecent) {
		p.fold(d, &pr.Base, pr.Recent[n], nil, &pr.Stats)
		n++
	}
	pr.Recent = slices.Delete(pr.Recent, 0, n)
}

// fold applies one event to an attempt, appending transitions to out and
// recording conversion times in stats when given.
func (p *Processor) fold(d *Definition, a *Attempt, ev RecentEvent, out *[]Transition, stats *ConversionStat) {
	emit := func(t Transition) {
		if out != nil {
			*out = append(*out, t)
		}
	}
	if len(a.Reached) != len(d.Steps) {
		a.Reached = make([]int, len(d.Steps))
	}
	a.LastAt = max(a.LastAt, ev.At)
	p.expireAttempt(d, a, ev.At, emit)
	if a.Step >= 0 {
		switch {
		case excluded(d, ev):
			p.abandonAt(d, a, ev.At, ReasonExcluded, emit)
		case d.HoldConstant != "" && ev.Hold != a.Hold:
			return // another session (or item...): not part of this attempt
		case d.Order == Strict && ev.Matches&(1<<(a.Step+1)) == 0 && ev.Matches&(1<<a.Step) == 0:
			p.abandonAt(d, a, ev.At, ReasonStrict, emit)
		}
	}
	if a.Step < 0 {
		if ev.Matches&1 == 0 {
			return
		}
		a.Step, a.Done, a.EnteredAt, a.StepAt, a.Hold = 0, 1, ev.At, []int64{ev.At}, ev.Hold
		a.First, a.Last = ev.Touch, ev.Touch
		a.Reached[0]++
		a.hour(ev.At).Entries++
		emit(Transition{Funnel: d.Name, Kind: Entered, Step: 0, StepName: d.Steps[0].Name, At: ev.At})
		return
	}
	next := -1
	if d.Order == Any {
		for i := 1; i < len(d.Steps); i++ {
			if a.Done&(1<<i) == 0 && ev.Matches&(1<<i) != 0 {
				next = i
				break
			}
		}
	} else if ev.Matches&(1<<(a.Step+1)) != 0 {
		next = a.Step + 1
	}
	if next < 0 {
		return
	}
	a.Done |= 1 << next
	a.Last = ev.Touch
	a.Reached[next]++
	a.StepAt = append(a.StepAt, ev.At)
	a.Step = max(a.Step, next)
	if d.Order == Any {
		a.Step = len(a.StepAt) - 1
	}
	if a.Done != (1<<len(d.Steps))-1 {
		emit(Transition{Funnel: d.Name, Kind: Advanced, Step: next, StepName: d.Steps[next].Name, At: ev.At})
		return
	}
	took := ev.At - a.EnteredAt
	emit(Transition{Funnel: d.Name, Kind: Converted, Step: next, StepName: d.Steps[next].Name, At: ev.At, TookMs: took})
	a.Conversions++
	a.hour(ev.At).Conversions++
	p.tally(d, a, true, took)
	if stats != nil {
		stats.TotalMs += took
		stats.Last = append(stats.Last, took)
		if len(stats.Last) > maxConvertHistory {
			stats.Last = stats.Last[len(stats.Last)-maxConvertHistory:]
		}
	}
	a.reset()
}

func (a *Attempt) reset() {
	a.Step, a.Done, a.EnteredAt, a.StepAt, a.Hold = -1, 0, 0, nil, ""
	a.First, a.Last = nil, nil
}

func (p *Processor) expireAttempt(d *Definition, a *Attempt, now int64, emit func(Transition)) {
	if a.Step >= 0 && now >= a.EnteredAt+d.Window.Milliseconds() {
		p.abandonAt(d, a, a.EnteredAt+d.Window.Milliseconds(), ReasonWindow, emit)
	}
}

func (p *Processor) abandonAt(d *Definition, a *Attempt, at int64, reason string, emit func(Transition)) {
	emit(Transition{Funnel: d.Name, Kind: Abandoned, Step: a.Step, StepName: d.Steps[a.Step].Name, At: at, TookMs: at - a.EnteredAt, Reason: reason})
	a.Abandonments++
	a.hour(at).Abandonments++
	p.tally(d, a, false, 0)
	a.AbandonedAt = append(a.AbandonedAt, at)
	if len(a.AbandonedAt) > maxAbandonHistory {
		a.AbandonedAt = a.AbandonedAt[len(a.AbandonedAt)-maxAbandonHistory:]
	}
	a.reset()
}

// Expire abandons every attempt whose window ended at or before now (ms),
// for users who send no further event. Buffered events are settled first
// when they are all older than the lateness horizon; otherwise the window
// is judged when they settle.
func (p *Processor) Expire(st State, now int64) []Transition {
	var out []Transition
	for i := range p.defs {
		d := &p.defs[i]
		pr := st[d.Name]
		if pr == nil {
			continue
		}
		if len(pr.Recent) > 0 && pr.Recent[len(pr.Recent)-1].At >= now-p.lateness {
			continue
		}
		for _, ev := range pr.Recent {
			p.fold(d, &pr.Base, ev, nil, &pr.Stats)
		}
		pr.Recent = nil
		p.expireAttempt(d, &pr.Base, now, func(t Transition) { out = append(out, t) })
		p.refresh(d, pr)
	}
	return out
}

// NextDeadline is the earliest time at which Expire would act on st, or 0
// when no attempt is open.
func (p *Processor) NextDeadline(st State) int64 {
	var next int64
	for i := range p.defs {
		d := &p.defs[i]
		pr := st[d.Name]
		if pr == nil {
			continue
		}
		a := p.View(d, pr)
		if a.Step < 0 {
			continue
		}
		due := a.EnteredAt + d.Window.Milliseconds()
		if n := len(pr.Recent); n > 0 {
			// Expire acts once the newest buffered event is more than
			// the lateness old.
			due = max(due, pr.Recent[n-1].At+p.lateness+1)
		}
		if next == 0 || due < next {
			next = due
		}
	}
	return next
}

// Stage names the event type of the furthest step reached in the first
// funnel's open attempt, or "" when none is open.
func (p *Processor) Stage(st State) string {
	if len(p.defs) == 0 {
		return ""
	}
	d := &p.defs[0]
	pr := st[d.Name]
	if pr == nil {
		return ""
	}
	a := p.View(d, pr)
	if a.Step < 0 {
		return ""
	}
	return d.Steps[a.Step].Events[0]
}

// AbandonedAt lists the recent abandonment times across funnels.
func (p *Processor) AbandonedAt(st State) []int64 {
	var out []int64
	for i := range p.defs {
		if pr := st[p.defs[i].Name]; pr != nil {
			out = append(out, p.View(&p.defs[i], pr).AbandonedAt...)
		}
	}
	return out
}

// matches returns the steps ev matches, one bit each, and whether it
// matches an exclusion.
func (p *Processor) matches(d *Definition, ev schemas.ClickEvent) (steps uint32, excluded bool) {
	for i, s := range d.Steps {
		if matches(s, ev) {
			steps |= 1 << i
		}
	}
	for _, s := range d.Exclusions {
		if matches(s, ev) {
			excluded = true
		}
	}
	return steps, excluded
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
	case "":
		return ""
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
