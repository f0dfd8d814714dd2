package funnel

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cxstream/cxstream/schemas"
)

// Breakdowns group a funnel's attempts by a value the attempt carries: the
// user's segment, or a property of the step events. Each attempt records
// the value at entry (first touch) and at the last step reached (last
// touch), and when it ends (conversion or drop-off) it is tallied in the
// user's state under both, so a report reads either attribution without
// replaying events.

// Breakdown names a funnel may list under breakdowns.
const (
	// BySegment groups by the user's segment (processors.Facts.Segment).
	BySegment = "segment"
	// PropertyPrefix followed by a property name groups by that property
	// of the step events ("property.utm_source").
	PropertyPrefix = "property."
)

// Group values that are no value of the event.
const (
	// NoValue is the group of attempts whose event had no value.
	NoValue = "(none)"
	// OtherValue collects values beyond Limits.MaxValues.
	OtherValue = "(other)"
)

// MaxBreakdowns is how many breakdowns one funnel may keep.
const MaxBreakdowns = 8

// Attribution picks which of an attempt's values names its group.
type Attribution string

// Attributions.
const (
	// FirstTouch: the value when the attempt entered the funnel.
	FirstTouch Attribution = "first"
	// LastTouch: the value at the last step the attempt reached.
	LastTouch Attribution = "last"
)

// ErrBreakdown is wrapped by every error about a breakdown name.
var ErrBreakdown = errors.New("invalid breakdown")

// CheckBreakdown reports whether name is a breakdown a funnel can keep:
// "segment" or "property.<name>".
func CheckBreakdown(name string) error {
	if name == BySegment {
		return nil
	}
	if prop, ok := strings.CutPrefix(name, PropertyPrefix); ok {
		if prop == "" || strings.ContainsFunc(prop, unicode.IsSpace) {
			return fmt.Errorf("%w %q: a property name follows %q, without spaces", ErrBreakdown, name, PropertyPrefix)
		}
		return nil
	}
	hint := ""
	if prop, ok := strings.CutPrefix(name, "properties."); ok && prop != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", PropertyPrefix+prop)
	}
	return fmt.Errorf("%w %q%s; accepted: %s or %s<name>", ErrBreakdown, name, hint, BySegment, PropertyPrefix)
}

// Limits bound the groups a user's state keeps per funnel and breakdown.
type Limits struct {
	// MaxValues distinct values are kept per funnel, breakdown and
	// attribution in a user's state, and shown per group in a report;
	// further values are counted under OtherValue.
	MaxValues int `yaml:"max_values"`
	// MaxValueLength cuts longer values (in characters).
	MaxValueLength int `yaml:"max_value_length"`
}

// DefaultLimits are 20 values of at most 64 characters.
func DefaultLimits() Limits { return Limits{MaxValues: 20, MaxValueLength: 64} }

// Validate reports limits that cannot work.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxValues < 1 || l.MaxValues > 1000 {
		errs = append(errs, fmt.Errorf("max_values must be 1 to 1000, got %d", l.MaxValues))
	}
	if l.MaxValueLength < 1 || l.MaxValueLength > 1024 {
		errs = append(errs, fmt.Errorf("max_value_length must be 1 to 1024, got %d", l.MaxValueLength))
	}
	return errors.Join(errs...)
}

// Option configures a Processor.
type Option func(*Processor)

// WithLimits sets the breakdown limits (default DefaultLimits).
func WithLimits(l Limits) Option { return func(p *Processor) { p.limits = l } }

// Limits are the processor's breakdown limits.
func (p *Processor) Limits() Limits { return p.limits }

// Tally is one breakdown's counts of ended attempts by group value, under
// each attribution.
type Tally struct {
	First map[string]*GroupCounts `json:"f,omitempty"`
	Last  map[string]*GroupCounts `json:"l,omitempty"`
}

// GroupCounts are one group's ended attempts.
type GroupCounts struct {
	Attempts int `json:"n,omitempty"`
	// Reached[i] counts attempts that reached step i.
	Reached     []int `json:"rc,omitempty"`
	Conversions int   `json:"c,omitempty"`
	// TotalMs sums the times to convert; Took keeps the most recent ones
	// (up to 64), for medians.
	TotalMs int64   `json:"tm,omitempty"`
	Took    []int64 `json:"ls,omitempty"`
}

func (c *GroupCounts) clone() *GroupCounts {
	cc := *c
	cc.Reached = slices.Clone(c.Reached)
	cc.Took = slices.Clone(c.Took)
	return &cc
}

func cloneGroups(g map[string]*Tally) map[string]*Tally {
	if g == nil {
		return nil
	}
	out := make(map[string]*Tally, len(g))
	for b, t := range g {
		ct := &Tally{First: make(map[string]*GroupCounts, len(t.First)), Last: make(map[string]*GroupCounts, len(t.Last))}
		for v, c := range t.First {
			ct.First[v] = c.clone()
		}
		for v, c := range t.Last {
			ct.Last[v] = c.clone()
		}
		out[b] = ct
	}
	return out
}

// Group is the group of value: NoValue for "".
func Group(value string) string {
	if value == "" {
		return NoValue
	}
	return value
}

// Touch returns the attempt's group value for a breakdown under an
// attribution (NoValue when it had none).
func (a *Attempt) Touch(breakdown string, attr Attribution) string {
	if attr == LastTouch {
		return Group(a.Last[breakdown])
	}
	return Group(a.First[breakdown])
}

// Tracks reports whether the funnel keeps the breakdown.
func (d *Definition) Tracks(breakdown string) bool { return slices.Contains(d.Breakdowns, breakdown) }

// touches returns the values ev carries for d's breakdowns (only the
// non-empty ones; nil when none). segment is asked at most once per event.
func (p *Processor) touches(d *Definition, ev *schemas.ClickEvent, segment func() string) map[string]string {
	var out map[string]string
	for _, b := range d.Breakdowns {
		var v string
		if b == BySegment {
			if segment != nil {
				v = segment()
			}
		} else {
			v = fieldValue(*ev, "properties."+strings.TrimPrefix(b, PropertyPrefix))
		}
		if v = p.clean(v); v != "" {
			if out == nil {
				out = make(map[string]string, len(d.Breakdowns))
			}
			out[b] = v
		}
	}
	return out
}

// clean cuts v to the maximum length and replaces control characters and
// invalid UTF-8, so a value prints on one line.
func (p *Processor) clean(v string) string {
	if v == "" {
		return ""
	}
	if !utf8.ValidString(v) {
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		v = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, v)
	}
	if n := p.limits.MaxValueLength; n > 0 && len(v) > n && utf8.RuneCountInString(v) > n {
		k := 0
		for i := range v {
			if k == n {
				v = v[:i]
				break
			}
			k++
		}
	}
	return v
}

// tally counts the attempt that is ending in its groups.
func (p *Processor) tally(d *Definition, a *Attempt, converted bool, took int64) {
	if len(d.Breakdowns) == 0 {
		return
	}
	if a.Groups == nil {
		a.Groups = make(map[string]*Tally, len(d.Breakdowns))
	}
	for _, b := range d.Breakdowns {
		t := a.Groups[b]
		if t == nil {
			t = &Tally{}
			a.Groups[b] = t
		}
		t.First = p.count(t.First, a.Touch(b, FirstTouch), d, a, converted, took)
		t.Last = p.count(t.Last, a.Touch(b, LastTouch), d, a, converted, took)
	}
}

func (p *Processor) count(m map[string]*GroupCounts, value string, d *Definition, a *Attempt, converted bool, took int64) map[string]*GroupCounts {
	if m == nil {
		m = map[string]*GroupCounts{}
	}
	c := m[value]
	if c == nil {
		kept := len(m)
		if m[OtherValue] != nil {
			kept--
		}
		if kept >= p.limits.MaxValues {
			value = OtherValue
		}
		if c = m[value]; c == nil {
			c = &GroupCounts{}
			m[value] = c
		}
	}
	if len(c.Reached) != len(d.Steps) {
		// New, or the funnel's steps changed since.
		r := make([]int, len(d.Steps))
		copy(r, c.Reached)
		c.Reached = r
	}
	c.Attempts++
	for i := range d.Steps {
		if a.Done&(1<<i) != 0 {
			c.Reached[i]++
		}
	}
	if converted {
		c.Conversions++
		c.TotalMs += took
		c.Took = append(c.Took, took)
		if len(c.Took) > maxConvertHistory {
			c.Took = c.Took[len(c.Took)-maxConvertHistory:]
		}
	}
	return m
}

// ErrAttribution: an attribution that is neither first nor last.
var ErrAttribution = errors.New("attribution must be first or last")

// ParseAttribution reads "first" or "last".
func ParseAttribution(s string) (Attribution, error) {
	switch a := Attribution(s); a {
	case FirstTouch, LastTouch:
		return a, nil
	}
	return "", fmt.Errorf("%w, got %q", ErrAttribution, s)
}
