// Package segment keeps every customer's segment live: ordered rules over
// the user's features (recency, frequency, spend, lifecycle, activity
// trend, recent abandonments and negative chats, event properties), the
// first match wins, all in event time. A change of segment is published
// as a segments.v1 message; a segment can also change with time alone (a
// buyer gone quiet becomes churned), which a timer at the moment a rule
// can flip catches.
package segment

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/schemas"
)

// State is one user's segment state, in the clickstream document under
// "segment".
type State struct {
	// Segment is the current segment ("" before the first click), since
	// Since (event time).
	Segment string `json:"segment,omitempty"`
	Since   int64  `json:"since,omitempty"`
	// At is the event time of the latest evaluation: evaluations never go
	// back in time, so a late click does not undo a change.
	At int64 `json:"at,omitempty"`
	// Due is when a time-dependent condition can next flip (0: never).
	Due int64 `json:"due,omitempty"`
	// Next is the first change time alone would bring, foreseen from the
	// facts of the latest evaluation: a click that arrives after it but
	// before the watermark fired the timer publishes it first, at its
	// own time, so the change does not depend on how far the watermark
	// lags.
	Next *Foreseen `json:"next,omitempty"`
	// Props are the latest values of the event properties the rules
	// test, with their event times.
	Props map[string]Prop `json:"props,omitempty"`
	// Recent are the latest changes, oldest first, at most
	// Config.History.
	Recent []Change `json:"recent,omitempty"`
}

// Foreseen is a change time alone brings.
type Foreseen struct {
	At      int64                   `json:"at"`
	To      string                  `json:"to"`
	Reasons []schemas.SegmentReason `json:"why,omitempty"`
}

// maxForesight bounds how many flips ahead Evaluate looks for a change.
const maxForesight = 8

// Prop is a property's latest value.
type Prop struct {
	V string `json:"v"`
	T int64  `json:"t"`
}

// Change is a kept change of segment.
type Change struct {
	From string `json:"from,omitempty"`
	To   string `json:"to"`
	At   int64  `json:"at"`
}

// maxPropBytes bounds a kept property value: rules compare short codes
// (a plan, a source), and the state must stay small.
const maxPropBytes = 128

type rule struct {
	segment string
	when    []Condition
}

// Processor evaluates the configured rules.
type Processor struct {
	cfg   Config
	rules []rule
	// props are the property names the rules test.
	props []string
}

// New compiles a configuration.
func New(cfg Config) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("segments: %w", err)
	}
	p := &Processor{cfg: cfg}
	for _, r := range cfg.Rules {
		cr := rule{segment: r.Segment}
		for _, w := range r.When {
			c, err := Parse(w)
			if err != nil {
				return nil, fmt.Errorf("segments: %w", err)
			}
			cr.when = append(cr.when, c)
			if name, ok := cutProperty(c.Feature); ok && !slices.Contains(p.props, name) {
				p.props = append(p.props, name)
			}
		}
		p.rules = append(p.rules, cr)
	}
	return p, nil
}

// Observe keeps the latest values of the properties the rules test.
func (p *Processor) Observe(st *State, ev schemas.ClickEvent) {
	for _, name := range p.props {
		raw, ok := ev.Properties[name]
		if !ok {
			continue
		}
		v, ok := propertyText(raw)
		if !ok {
			continue
		}
		if old, seen := st.Props[name]; seen && old.T > ev.EventTime {
			continue // a late event does not override a newer value
		}
		if st.Props == nil {
			st.Props = map[string]Prop{}
		}
		st.Props[name] = Prop{V: v, T: ev.EventTime}
	}
}

// propertyText renders a scalar property as the text rules compare;
// objects and arrays are not comparable.
func propertyText(v any) (string, bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(x)
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	default:
		return "", false
	}
	if len(s) > maxPropBytes {
		cut := maxPropBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut-- // never split a character
		}
		s = s[:cut]
	}
	return s, true
}

// Evaluate puts the user in the segment of the first matching rule at
// event time now (or the latest evaluation's, if later) and returns the
// change, or nil when the segment stays. It also sets when the next
// time-dependent flip can happen (State.Due) and foresees the first
// change time alone would bring (State.Next).
func (p *Processor) Evaluate(st *State, userID string, facts processors.Facts, now int64, trigger string) *schemas.SegmentChange {
	now = max(now, st.At)
	st.At = now
	v := view{facts: facts, props: st.Props, now: now, window: p.cfg.RecentWindow.Milliseconds()}
	rule, due := p.match(v)
	st.Due = due
	foreseen := st.Next
	st.Next = nil
	for at, i := due, 0; at > 0 && i < maxForesight; i++ {
		fv := v
		fv.now = at
		next, after := p.match(fv)
		if to := p.segmentOf(next); to != p.segmentOf(rule) {
			if foreseen == nil || foreseen.At != at || foreseen.To != to {
				// Reasons are built only when what is foreseen changes:
				// most clicks foresee the same change as the last one.
				foreseen = &Foreseen{At: at, To: to, Reasons: p.reasons(fv, next)}
			}
			st.Next = foreseen
			break
		}
		at = after
	}
	segment := p.segmentOf(rule)
	if segment == st.Segment {
		return nil
	}
	return p.move(st, userID, segment, p.reasons(v, rule), now, trigger)
}

// segmentOf is the segment of rule index i (-1: the fallback).
func (p *Processor) segmentOf(i int) string {
	if i < 0 {
		return p.cfg.Fallback
	}
	return p.rules[i].segment
}

// reasons are rule i's conditions with the user's values in v (none for
// the fallback).
func (p *Processor) reasons(v view, i int) []schemas.SegmentReason {
	out := []schemas.SegmentReason{}
	if i < 0 {
		return out
	}
	for _, c := range p.rules[i].when {
		_, val := v.holds(&c)
		out = append(out, reason(c, val.any()))
	}
	return out
}

// CatchUp publishes the foreseen change if event time now has passed it
// (a click arriving before the watermark fired the timer); call it
// before the click is evaluated.
func (p *Processor) CatchUp(st *State, userID string, now int64) *schemas.SegmentChange {
	f := st.Next
	if f == nil || f.At > now || f.At <= st.At {
		return nil
	}
	st.At, st.Next = f.At, nil
	return p.move(st, userID, f.To, f.Reasons, f.At, schemas.SegmentTriggerTime)
}

// match finds the first matching rule in the view (-1: none, the
// fallback) and when time alone can next change the outcome.
func (p *Processor) match(v view) (int, int64) {
	var due int64
	for i, r := range p.rules {
		all := true
		// A rule that does not match matters to the due time only if time
		// alone can make it match: every false condition must be able
		// to flip.
		stuck := false
		var flips int64
		for j := range r.when {
			c := &r.when[j]
			ok, _ := v.holds(c)
			next := v.changesAfter(c)
			flips = earliest(flips, next)
			if !ok {
				all = false
				if next == 0 {
					stuck = true
				}
			}
		}
		if all {
			return i, earliest(due, flips) // or any of its conditions turning false
		}
		if !stuck {
			due = earliest(due, flips)
		}
	}
	return -1, due
}

// move puts the user in segment at event time at and returns the change,
// or nil if they are there already.
func (p *Processor) move(st *State, userID, segment string, reasons []schemas.SegmentReason, at int64, trigger string) *schemas.SegmentChange {
	if segment == st.Segment {
		return nil
	}
	from := st.Segment
	st.Segment, st.Since = segment, at
	st.Recent = append(st.Recent, Change{From: from, To: segment, At: at})
	if len(st.Recent) > p.cfg.History {
		st.Recent = st.Recent[len(st.Recent)-p.cfg.History:]
	}
	return &schemas.SegmentChange{
		Schema:    schemas.SegmentsV1,
		ChangeID:  schemas.SegmentChangeID(userID, at, segment),
		UserID:    userID,
		From:      from,
		To:        segment,
		Reasons:   reasons,
		EventTime: at,
		Trigger:   trigger,
	}
}

// NextDue is when the user's segment can next change with no event.
func (p *Processor) NextDue(st *State) int64 { return st.Due }

func reason(c Condition, val any) schemas.SegmentReason {
	var threshold any = c.Text
	if c.IsNum {
		threshold = c.Num
	}
	if x, ok := val.(float64); ok {
		val = math.Round(x*100) / 100
	}
	return schemas.SegmentReason{Feature: c.Feature, Op: c.Op, Threshold: threshold, Value: val,
		Text: reasonText(c.Feature, val, c.Op, threshold)}
}

// reasonText is fmt.Sprintf("%s %v %s %v", feature, val, op, threshold)
// without fmt's reflection: every segment change and foreseen change
// builds one per condition. The values are float64, string or nil.
func reasonText(feature string, val any, op string, threshold any) string {
	var buf [96]byte
	b := buf[:0]
	b = append(append(b, feature...), ' ')
	b = appendPrinted(b, val)
	b = append(append(append(b, ' '), op...), ' ')
	return string(appendPrinted(b, threshold))
}

// appendPrinted appends v as fmt's %v does.
func appendPrinted(b []byte, v any) []byte {
	switch x := v.(type) {
	case float64:
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case string:
		return append(b, x...)
	case nil:
		return append(b, "<nil>"...)
	}
	return fmt.Append(b, v)
}
