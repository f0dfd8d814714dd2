package segment

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/processors/churn"
)

const dayMs = int64(24 * 60 * 60 * 1000)

// kind of a feature's value.
type kind int

const (
	number kind = iota
	text
	// property: the latest value a click carried under properties.<name>,
	// compared as a number when both sides are numbers, else as text.
	property
)

// moves says how a feature changes with event time alone, which is what
// NextDue must foresee.
type moves int

const (
	// still: only an event changes it.
	still moves = iota
	// elapsed: days since a base time, growing with event time.
	elapsed
	// steps: changes at times the user's facts give (a day boundary, an
	// abandonment leaving the recent window).
	steps
)

// Feature describes one feature rules can test.
type Feature struct {
	Name string
	Help string
	kind kind
	move moves
}

// Features are the features a condition may name, besides
// properties.<name>.
var Features = []Feature{
	{"days_since_last_event", "recency: days since the user's latest click", number, elapsed},
	{"days_since_last_purchase", "recency: days since the latest purchase (absent before the first)", number, elapsed},
	{"days_since_first_event", "age: days since the user's first click", number, elapsed},
	{"purchases", "frequency: purchases so far", number, still},
	{"spend", "monetary: amount spent so far", number, still},
	{"lifecycle", "new, current, dormant or resurrected (as churn alerts say)", text, steps},
	{"events_7d", "clicks in the last 7 days", number, steps},
	{"events_28d", "clicks in the last 28 days", number, steps},
	{"activity_trend", "activity trend: the daily rate of the last 7 days over that of the last 28 (1 steady, below 1 slowing; absent without clicks in 28 days)", number, steps},
	{"recent_abandonments", "funnel abandonments within recent_window", number, steps},
	{"recent_negative_chats", "negative chat messages within recent_window (as of the user's latest click or timer)", number, steps},
	{"funnel_stage", "furthest step of the open attempt of the first funnel (built-in names, empty when none)", text, still},
}

// FeatureNames lists the features' names, for messages.
func FeatureNames() []string {
	names := make([]string, len(Features))
	for i, f := range Features {
		names[i] = f.Name
	}
	return names
}

// PropertyPrefix starts a condition on an event property; "property." is
// accepted too.
const PropertyPrefix = "properties."

// Lifecycles are the values of the lifecycle feature.
var Lifecycles = []string{churn.LifecycleNew, churn.LifecycleCurrent, churn.LifecycleDormant, churn.LifecycleResurrected}

// Errors of Parse.
var (
	ErrSyntax = errors.New(`want "<feature> <op> <value>", e.g. "purchases >= 3"`)
	// ErrValue: the value does not fit the feature (text for a number,
	// an order on text, an unknown lifecycle).
	ErrValue = errors.New("value does not fit the feature")
)

// UnknownFeatureError names a feature no rule can test.
type UnknownFeatureError struct{ Name string }

func (e *UnknownFeatureError) Error() string {
	return fmt.Sprintf("unknown feature %q; known: %s, or properties.<name>", e.Name, strings.Join(FeatureNames(), ", "))
}

// Condition is one parsed "<feature> <op> <value>".
type Condition struct {
	Feature string
	Op      string
	// Num is the value when it is a number (IsNum), Text otherwise.
	Num   float64
	Text  string
	IsNum bool
	f     Feature
	// thresholdMs is Num in ms, for elapsed features: compared in whole
	// ms, so the moment a condition flips is exact.
	thresholdMs int64
}

var condRE = regexp.MustCompile(`^\s*([A-Za-z0-9_.\-]+)\s*(>=|<=|!=|==|=|>|<)\s*(.*?)\s*$`)

// Parse reads a condition.
func Parse(s string) (Condition, error) {
	m := condRE.FindStringSubmatch(s)
	if m == nil || m[3] == "" {
		return Condition{}, fmt.Errorf("%q: %w", s, ErrSyntax)
	}
	c := Condition{Feature: m[1], Op: m[2]}
	if c.Op == "==" {
		c.Op = "="
	}
	value := m[3]
	quoted := len(value) >= 2 && (value[0] == '"' && value[len(value)-1] == '"' || value[0] == '\'' && value[len(value)-1] == '\'')
	if quoted {
		value = value[1 : len(value)-1]
	}
	if n, err := strconv.ParseFloat(value, 64); err == nil && !quoted && !math.IsNaN(n) && !math.IsInf(n, 0) {
		c.Num, c.IsNum = n, true
	}
	c.Text = value
	if name, ok := cutProperty(c.Feature); ok {
		if name == "" {
			return Condition{}, fmt.Errorf("%q: %w", s, ErrSyntax)
		}
		c.Feature = PropertyPrefix + name
		c.f = Feature{Name: c.Feature, kind: property}
		if !c.IsNum && c.Op != "=" && c.Op != "!=" {
			return Condition{}, fmt.Errorf("%q: %w: %s compares text with = or != only (%q is not a number)", s, ErrValue, c.Feature, value)
		}
		return c, nil
	}
	i := slices.IndexFunc(Features, func(f Feature) bool { return f.Name == c.Feature })
	if i < 0 {
		return Condition{}, &UnknownFeatureError{Name: c.Feature}
	}
	c.f = Features[i]
	switch c.f.kind {
	case number:
		if !c.IsNum {
			return Condition{}, fmt.Errorf("%q: %w: %s is a number, got %q", s, ErrValue, c.Feature, value)
		}
		c.thresholdMs = int64(math.Round(c.Num * float64(dayMs)))
	case text:
		if c.Op != "=" && c.Op != "!=" {
			return Condition{}, fmt.Errorf("%q: %w: %s is text, compare it with = or !=", s, ErrValue, c.Feature)
		}
		c.IsNum = false
		if c.Feature == "lifecycle" && !slices.Contains(Lifecycles, c.Text) {
			return Condition{}, fmt.Errorf("%q: %w: lifecycle is one of %s", s, ErrValue, strings.Join(Lifecycles, ", "))
		}
	}
	return c, nil
}

func cutProperty(feature string) (string, bool) {
	if name, ok := strings.CutPrefix(feature, PropertyPrefix); ok {
		return name, true
	}
	return strings.CutPrefix(feature, "property.")
}

// String is the condition as written in the configuration, normalised.
func (c Condition) String() string {
	if c.IsNum {
		return c.Feature + " " + c.Op + " " + strconv.FormatFloat(c.Num, 'f', -1, 64)
	}
	return c.Feature + " " + c.Op + " " + strconv.Quote(c.Text)
}

// view is what the features are computed from: the user's facts, the
// properties the segment state keeps, and the evaluation's event time.
type view struct {
	facts  processors.Facts
	props  map[string]Prop
	now    int64
	window int64
}

// base is the start of an elapsed feature (0: the user has none).
func (v *view) base(name string) int64 {
	switch name {
	case "days_since_last_event":
		return v.facts.LastSeen
	case "days_since_last_purchase":
		return v.facts.LastPurchase
	case "days_since_first_event":
		return v.facts.FirstSeen
	}
	return 0
}

// featureValue is a feature's value, kept unboxed: rules are evaluated on
// every click, and only a change's reasons need the value as an any.
type featureValue struct {
	kind valueKind
	num  float64
	text string
}

type valueKind uint8

const (
	absent valueKind = iota // the user has none (no purchase yet, a property never seen)
	numeric
	textual
)

// any is the value for a reason: a float64, a string, or nil when absent.
func (x featureValue) any() any {
	switch x.kind {
	case numeric:
		return x.num
	case textual:
		return x.text
	}
	return nil
}

func num(n float64, ok bool) featureValue {
	if !ok {
		return featureValue{}
	}
	return featureValue{kind: numeric, num: n}
}

func txt(s string, ok bool) featureValue {
	if !ok {
		return featureValue{}
	}
	return featureValue{kind: textual, text: s}
}

// value of a feature at v.now.
func (v *view) value(c *Condition) featureValue {
	f := &v.facts
	switch c.f.move {
	case elapsed:
		b := v.base(c.Feature)
		return num(float64(v.now-b)/float64(dayMs), b != 0)
	}
	switch c.Feature {
	case "purchases":
		return num(float64(f.Purchases), true)
	case "spend":
		return num(f.Spend, true)
	case "lifecycle":
		lc := churn.Lifecycle(v.lifecycleState(), v.now)
		return txt(lc, lc != "")
	case "events_7d":
		return num(float64(v.events(7)), f.LastSeen > 0)
	case "events_28d":
		return num(float64(v.events(28)), f.LastSeen > 0)
	case "activity_trend":
		month := v.events(28)
		return num((float64(v.events(7))/7)/(float64(month)/28), month != 0)
	case "recent_abandonments":
		return num(float64(v.recent(f.AbandonedAt)), true)
	case "recent_negative_chats":
		return num(float64(v.recent(f.NegativeAt)), true)
	case "funnel_stage":
		return txt(f.FunnelStage, true)
	}
	if name, ok := strings.CutPrefix(c.Feature, PropertyPrefix); ok {
		p, ok := v.props[name]
		return txt(p.V, ok)
	}
	return featureValue{}
}

// lifecycleState is the part of churn's state Lifecycle reads, from Facts.
func (v *view) lifecycleState() *churn.State {
	return &churn.State{FirstSeen: v.facts.FirstSeen, LastSeen: v.facts.LastSeen, ResurrectedAt: v.facts.ResurrectedAt}
}

// events counts the user's clicks on the n UTC days ending with now's.
func (v *view) events(n int64) int {
	today := v.now / dayMs
	total := 0
	for i, count := range v.facts.DailyEvents {
		if d := v.facts.Day - int64(i); d <= today && d > today-n {
			total += count
		}
	}
	return total
}

// eventsChangeAfter is the next day boundary at which a counted day
// leaves the n-day window (0: none will).
func (v *view) eventsChangeAfter(n int64) int64 {
	today := v.now / dayMs
	for i := len(v.facts.DailyEvents) - 1; i >= 0; i-- { // oldest first
		if d := v.facts.Day - int64(i); d <= today && d > today-n && v.facts.DailyEvents[i] > 0 {
			return (d + n) * dayMs
		}
	}
	return 0
}

func (v *view) recent(times []int64) int {
	n := 0
	for _, t := range times {
		if t <= v.now && t > v.now-v.window {
			n++
		}
	}
	return n
}

// recentChangeAfter is when the next of times leaves the window.
func (v *view) recentChangeAfter(times []int64) int64 {
	var next int64
	for _, t := range times {
		if out := t + v.window; t <= v.now && out > v.now && (next == 0 || out < next) {
			next = out
		}
	}
	return next
}

// holds evaluates the condition at v.now, and returns the user's value
// (absent, and then the condition does not hold).
func (v *view) holds(c *Condition) (bool, featureValue) {
	val := v.value(c)
	switch {
	case val.kind == absent:
		return false, val
	case c.f.move == elapsed:
		return compareInt(v.now-v.base(c.Feature), c.Op, c.thresholdMs), val
	case val.kind == numeric:
		return compare(val.num, c.Op, c.Num), val
	case val.kind == textual:
		if c.IsNum {
			if n, err := strconv.ParseFloat(val.text, 64); err == nil {
				return compare(n, c.Op, c.Num), val
			}
			return c.Op == "!=", val
		}
		return (val.text == c.Text) == (c.Op == "="), val
	}
	return false, val
}

func compare(x float64, op string, y float64) bool {
	switch op {
	case ">=":
		return x >= y
	case ">":
		return x > y
	case "<=":
		return x <= y
	case "<":
		return x < y
	case "=":
		return x == y
	case "!=":
		return x != y
	}
	return false
}

func compareInt(x int64, op string, y int64) bool { return compare(float64(x), op, float64(y)) }

// changesAfter is the earliest event time after v.now at which the
// condition's truth can change with no event, or 0 when only an event
// can change it. It may be early (a re-evaluation that changes nothing
// costs nothing), never late.
func (v *view) changesAfter(c *Condition) int64 {
	switch c.f.move {
	case elapsed:
		b := v.base(c.Feature)
		if b == 0 {
			return 0
		}
		// The truth of "elapsed op threshold" flips where elapsed reaches
		// the threshold (>=, <) or passes it (>, <=); = and != at both.
		var flips []int64
		switch c.Op {
		case ">=", "<":
			flips = []int64{b + c.thresholdMs}
		case ">", "<=":
			flips = []int64{b + c.thresholdMs + 1}
		default:
			flips = []int64{b + c.thresholdMs, b + c.thresholdMs + 1}
		}
		for _, t := range flips {
			if t > v.now {
				return t
			}
		}
		return 0
	case steps:
		switch c.Feature {
		case "lifecycle":
			return churn.LifecycleChangesAfter(v.lifecycleState(), v.now)
		case "events_7d":
			return v.eventsChangeAfter(7)
		case "events_28d":
			return v.eventsChangeAfter(28)
		case "activity_trend":
			return earliest(v.eventsChangeAfter(7), v.eventsChangeAfter(28))
		case "recent_abandonments":
			return v.recentChangeAfter(v.facts.AbandonedAt)
		case "recent_negative_chats":
			return v.recentChangeAfter(v.facts.NegativeAt)
		}
	}
	return 0
}

// earliest of two times, 0 meaning none.
func earliest(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
