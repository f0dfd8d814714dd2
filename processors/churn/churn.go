// Package churn keeps per-user churn-risk features incrementally and turns
// them into a transparent logistic score: every alert names the features
// that pushed the score up.
package churn

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cxstream/cxstream/schemas"
)

// RuleVersion names the churn rule in the alerts it emits.
const RuleVersion = "churn/1"

const dayMs = int64(24 * time.Hour / time.Millisecond)

// Feature names, also the keys of Config.Weights.
const (
	FeatDaysInactive   = "days_inactive"
	FeatActivityDrop   = "activity_drop"
	FeatAbandonments   = "abandonments_14d"
	FeatNegativeChats  = "negative_chats_14d"
	FeatSupportContact = "support_contacts_14d"
	FeatPurchases      = "purchases"
	FeatSpend          = "log_spend"
	FeatResurrected    = "resurrected"
	FeatPurchaseGap    = "days_since_purchase"
)

// Lifecycle states.
const (
	LifecycleNew         = "new"         // first seen within 14 days
	LifecycleCurrent     = "current"     // active within 30 days
	LifecycleDormant     = "dormant"     // nothing for 30 days or more
	LifecycleResurrected = "resurrected" // back within 14 days after being dormant
)

const dormantAfter = 30 * dayMs

// Config holds the logistic model and the alerting policy.
type Config struct {
	Bias    float64            `yaml:"bias"`
	Weights map[string]float64 `yaml:"weights"`
	// Threshold: the alert fires when the score crosses it upwards.
	Threshold float64 `yaml:"threshold"`
	// Cooldown per user between alerts.
	Cooldown time.Duration `yaml:"cooldown"`
	// InactivityCheck: a user who sends nothing is scored again this long
	// after their last event, and every InactivityCheck after that, up to
	// MaxInactivityChecks times, so a silent user is noticed.
	InactivityCheck     time.Duration `yaml:"inactivity_check"`
	MaxInactivityChecks int           `yaml:"max_inactivity_checks"`
}

// DefaultConfig is what cxstream ships. The weights are set by hand to
// rank the scripted personas of the tests sensibly, not fitted to data.
func DefaultConfig() Config {
	return Config{
		Bias: -3.2,
		Weights: map[string]float64{
			FeatDaysInactive:   0.12,
			FeatActivityDrop:   1.2,
			FeatAbandonments:   0.9,
			FeatNegativeChats:  1.1,
			FeatSupportContact: 0.35,
			FeatPurchases:      -0.35,
			FeatSpend:          -0.15,
			FeatResurrected:    0.6,
			FeatPurchaseGap:    0.01,
		},
		Threshold:           0.6,
		Cooldown:            7 * 24 * time.Hour,
		InactivityCheck:     7 * 24 * time.Hour,
		MaxInactivityChecks: 4,
	}
}

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	if c.InactivityCheck <= 0 || c.MaxInactivityChecks < 0 {
		return fmt.Errorf("inactivity_check must be positive and max_inactivity_checks not negative")
	}
	if c.Threshold <= 0 || c.Threshold >= 1 {
		return fmt.Errorf("threshold must be in (0, 1), got %v", c.Threshold)
	}
	for name := range c.Weights {
		if _, ok := featureText[name]; !ok {
			return fmt.Errorf("unknown feature %q in weights", name)
		}
	}
	return nil
}

// activityDays is how many daily activity counters a user keeps: 7 recent
// days against the 28 before.
const activityDays = 35

// State is one user's churn state, kept on the clickstream side.
type State struct {
	FirstSeen    int64   `json:"f"`
	LastSeen     int64   `json:"l"`
	Purchases    int     `json:"p,omitempty"`
	Spend        float64 `json:"m,omitempty"`
	LastPurchase int64   `json:"lp,omitempty"`
	// Days counts events per day; Days[i] is day (Day - i).
	Day  int64             `json:"d"`
	Days [activityDays]int `json:"n"`
	// LastScore is the score at the last evaluation; LastAlertAt the
	// time of the last alert.
	LastScore   float64 `json:"s"`
	LastAlertAt int64   `json:"a,omitempty"`
	// CheckedUntil is the latest inactivity check already done.
	CheckedUntil int64 `json:"ck,omitempty"`
	// ResurrectedAt is when the user came back after being dormant.
	ResurrectedAt int64 `json:"rz,omitempty"`
	// ContactAt are times of support contacts seen in the clickstream
	// (events whose name has the support_contact role).
	ContactAt []int64 `json:"ct,omitempty"`
}

// maxContacts bounds ContactAt; the feature is capped at 5 anyway.
const maxContacts = 8

// freshFor is how long a user stays new, or resurrected, after their
// first event or their return.
const freshFor = 14 * dayMs

// Lifecycle classifies the user at now (ms).
func Lifecycle(st *State, now int64) string {
	switch {
	case st.LastSeen == 0:
		return ""
	case now-st.LastSeen >= dormantAfter:
		return LifecycleDormant
	case st.ResurrectedAt > 0 && now-st.ResurrectedAt < freshFor:
		return LifecycleResurrected
	case now-st.FirstSeen < freshFor:
		return LifecycleNew
	}
	return LifecycleCurrent
}

// LifecycleChangesAfter is the earliest event time after now at which
// Lifecycle(st, ·) can change with no new event, or 0 if it cannot: for
// processors (segments) that must re-evaluate when it does.
func LifecycleChangesAfter(st *State, now int64) int64 {
	if st.LastSeen == 0 {
		return 0
	}
	changes := []int64{st.FirstSeen + freshFor, st.LastSeen + dormantAfter}
	if st.ResurrectedAt > 0 {
		changes = append(changes, st.ResurrectedAt+freshFor)
	}
	var next int64
	for _, t := range changes {
		if t > now && (next == 0 || t < next) {
			next = t
		}
	}
	return next
}

// NextCheck is when the silent user should be scored again, or 0.
func (p *Processor) NextCheck(st *State) int64 {
	if st.LastSeen == 0 {
		return 0
	}
	step := p.cfg.InactivityCheck.Milliseconds()
	for k := int64(1); k <= int64(p.cfg.MaxInactivityChecks); k++ {
		if due := st.LastSeen + k*step; due > st.CheckedUntil {
			return due
		}
	}
	return 0
}

// CheckInactive scores a user who has been silent until due (a timer set
// by NextCheck) and returns an alert if the score crossed the threshold.
func (p *Processor) CheckInactive(st *State, userID string, sig Signals, due int64) *schemas.Alert {
	st.CheckedUntil = max(st.CheckedUntil, due)
	return p.Evaluate(st, userID, sig, due, "inactive:"+strconv.FormatInt(due, 10))
}

// Observe records one click event, with the role of its built-in name.
func Observe(st *State, ev schemas.ClickEvent) {
	ObserveAs(st, ev, schemas.Vocabulary{}.RoleOf(ev.Type))
}

// ObserveAs records one click event whose name has the given role (from
// the configured vocabulary): purchases count towards the RFM features,
// support contacts towards support_contacts_14d; every event, whatever its
// name, is activity.
func ObserveAs(st *State, ev schemas.ClickEvent, role schemas.Role) {
	if st.FirstSeen == 0 || ev.EventTime < st.FirstSeen {
		st.FirstSeen = ev.EventTime
	}
	if st.LastSeen > 0 && ev.EventTime-st.LastSeen >= dormantAfter {
		st.ResurrectedAt = ev.EventTime
	}
	st.LastSeen = max(st.LastSeen, ev.EventTime)
	switch role {
	case schemas.RolePurchase:
		st.Purchases++
		st.Spend += ev.Amount
		st.LastPurchase = max(st.LastPurchase, ev.EventTime)
	case schemas.RoleSupportContact:
		st.ContactAt = append(st.ContactAt, ev.EventTime)
		// Only the last 14 days count; keep a bounded few.
		horizon := st.LastSeen - 14*dayMs
		st.ContactAt = slices.DeleteFunc(st.ContactAt, func(t int64) bool { return t < horizon })
		if len(st.ContactAt) > maxContacts {
			st.ContactAt = st.ContactAt[len(st.ContactAt)-maxContacts:]
		}
	}
	day := ev.EventTime / dayMs
	st.advance(day)
	if i := st.Day - day; i >= 0 && i < activityDays {
		st.Days[i]++
	}
}

func (st *State) advance(day int64) {
	if day <= st.Day {
		return
	}
	shift := day - st.Day
	if st.Day == 0 || shift >= activityDays {
		st.Days = [activityDays]int{}
	} else {
		copy(st.Days[shift:], st.Days[:activityDays-int(shift)])
		for i := 0; i < int(shift); i++ {
			st.Days[i] = 0
		}
	}
	st.Day = day
}

// Signals are the inputs that live outside this package's state: funnel
// abandonments and chat history, as event times in ms.
type Signals struct {
	AbandonedAt []int64
	NegativeAt  []int64
	ContactAt   []int64
	FunnelStage string
	Sentiment   float64
	// Segment is the customer's segment (processors/segment) as of the
	// latest evaluation, "" when unknown; alerts name it, else the
	// lifecycle.
	Segment string
}

// featureOrder names the entries of a featureVector.
var featureOrder = [...]string{FeatResurrected, FeatPurchaseGap, FeatDaysInactive, FeatActivityDrop, FeatAbandonments,
	FeatNegativeChats, FeatSupportContact, FeatPurchases, FeatSpend}

// featureVector is the model's inputs in featureOrder: what every
// evaluation computes, without a map per event.
type featureVector [len(featureOrder)]float64

// Features computes the model's inputs at time now (ms).
func Features(st *State, sig Signals, now int64) map[string]float64 {
	v := features(st, sig, now)
	m := make(map[string]float64, len(v))
	for i, name := range featureOrder {
		m[name] = v[i]
	}
	return m
}

func features(st *State, sig Signals, now int64) featureVector {
	since := now - 14*dayMs
	recent, before := 0, 0
	offset := now/dayMs - st.Day // days passed since the last counted day
	for i, n := range st.Days {
		age := int64(i) + offset
		switch {
		case age < 7:
			recent += n
		case age < activityDays:
			before += n
		}
	}
	drop := 0.0
	if before >= 4 {
		weeklyBefore := float64(before) / 4
		drop = math.Max(0, math.Min(1, (weeklyBefore-float64(recent))/weeklyBefore))
	}
	inactive := 0.0
	if st.LastSeen > 0 {
		inactive = math.Min(60, math.Max(0, float64(now-st.LastSeen)/float64(dayMs)))
	}
	resurrected, purchaseGap := 0.0, 0.0
	if Lifecycle(st, now) == LifecycleResurrected {
		resurrected = 1
	}
	if st.LastPurchase > 0 {
		purchaseGap = math.Min(180, float64(now-st.LastPurchase)/float64(dayMs))
	}
	return featureVector{
		resurrected,
		purchaseGap,
		inactive,
		drop,
		math.Min(3, float64(countSince(sig.AbandonedAt, since, now))),
		math.Min(3, float64(countSince(sig.NegativeAt, since, now))),
		math.Min(5, float64(countSince(sig.ContactAt, since, now)+countSince(st.ContactAt, since, now))),
		math.Min(5, float64(st.Purchases)),
		math.Log1p(st.Spend),
	}
}

// countSince counts the times in [since, now]: a score at an event's time
// counts nothing that happened after it, whatever was read first.
func countSince(times []int64, since, now int64) int {
	n := 0
	for _, t := range times {
		if t >= since && t <= now {
			n++
		}
	}
	return n
}

// Processor scores users and decides on churn alerts.
type Processor struct {
	cfg Config
	// names and weights in a fixed order: the score is summed the same
	// way every time, without a map walk per event.
	names   []string
	weights []float64
	// index[i] is names[i]'s place in a featureVector (-1: none).
	index []int
}

// New returns a processor for cfg.
func New(cfg Config) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("churn: %w", err)
	}
	p := &Processor{cfg: cfg, names: slices.Sorted(maps.Keys(cfg.Weights))}
	for _, n := range p.names {
		p.weights = append(p.weights, cfg.Weights[n])
		p.index = append(p.index, slices.Index(featureOrder[:], n))
	}
	return p, nil
}

// Contribution is one feature's share of the logit.
type Contribution struct {
	Feature string
	Value   float64
	Logit   float64
}

// logistic is the score in [0, 1], summed in a fixed order.
func (p *Processor) logistic(f map[string]float64) float64 {
	z := p.cfg.Bias
	for i, name := range p.names {
		z += p.weights[i] * f[name]
	}
	return 1 / (1 + math.Exp(-z))
}

// logisticOf is logistic on a vector: the same sum in the same order.
func (p *Processor) logisticOf(v *featureVector) float64 {
	z := p.cfg.Bias
	for i, j := range p.index {
		f := 0.0
		if j >= 0 {
			f = v[j]
		}
		z += p.weights[i] * f
	}
	return 1 / (1 + math.Exp(-z))
}

// Score is the logistic score in [0, 1] and the contributions, largest
// first.
func (p *Processor) Score(f map[string]float64) (float64, []Contribution) {
	cs := make([]Contribution, 0, len(p.names))
	for i, name := range p.names {
		cs = append(cs, Contribution{Feature: name, Value: f[name], Logit: p.weights[i] * f[name]})
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Logit != cs[j].Logit {
			return cs[i].Logit > cs[j].Logit
		}
		return cs[i].Feature < cs[j].Feature
	})
	return p.logistic(f), cs
}

// Evaluate scores the user at time now and returns an alert when the score
// crosses the threshold upwards, outside the cooldown. seed names what
// triggered the evaluation (an event id or a timer) for the alert id.
func (p *Processor) Evaluate(st *State, userID string, sig Signals, now int64, seed string) *schemas.Alert {
	v := features(st, sig, now)
	score := p.logisticOf(&v)
	crossed := score >= p.cfg.Threshold && st.LastScore < p.cfg.Threshold
	st.LastScore = score
	if !crossed || (st.LastAlertAt > 0 && now-st.LastAlertAt < p.cfg.Cooldown.Milliseconds()) {
		return nil
	}
	_, contributions := p.Score(Features(st, sig, now))
	st.LastAlertAt = now
	reasons := Reasons(contributions)
	lc := Lifecycle(st, now)
	if lc != "" {
		reasons = append(reasons, schemas.AlertReason{Code: schemas.CodeLifecycle,
			Params: map[string]any{"lifecycle": lc}, Text: "lifecycle: " + lc})
	}
	priority := schemas.PriorityNormal
	if score >= 0.85 {
		priority = schemas.PriorityHigh
	}
	return &schemas.Alert{
		Schema:           schemas.AlertV2,
		AlertID:          schemas.AlertID(schemas.AlertChurnRisk, userID, seed),
		Type:             schemas.AlertChurnRisk,
		UserID:           userID,
		Segment:          cmp.Or(sig.Segment, lc),
		Priority:         priority,
		ChurnProbability: new(round3(score)),
		Reasons:          reasons,
		FunnelStage:      sig.FunnelStage,
		RollingSentiment: new(round3(sig.Sentiment)),
		EventTime:        now,
		RuleVersion:      RuleVersion,
	}
}

// Reasons are the coded reasons of a score: its top three positive
// contributions, each coded by its feature name with the model's input
// (value; a fraction for activity_drop) and its share of the logit
// (contribution), or baseline_risk when none is positive.
func Reasons(contributions []Contribution) []schemas.AlertReason {
	var reasons []schemas.AlertReason
	for _, c := range contributions {
		if c.Logit <= 0 || len(reasons) == 3 {
			break
		}
		shown := c.Value
		if c.Feature == FeatActivityDrop {
			shown *= 100
		}
		reasons = append(reasons, schemas.AlertReason{Code: c.Feature,
			Params: map[string]any{"value": round3(c.Value), "contribution": round3(c.Logit)},
			Text:   fmt.Sprintf("%s (+%.2f)", singular(fmt.Sprintf(featureText[c.Feature], shown)), c.Logit)})
	}
	if len(reasons) == 0 {
		reasons = []schemas.AlertReason{{Code: schemas.CodeBaselineRisk, Text: "baseline risk"}}
	}
	return reasons
}

// Explain is the English text of Reasons.
func Explain(contributions []Contribution) []string {
	var texts []string
	for _, r := range Reasons(contributions) {
		texts = append(texts, r.Text)
	}
	return texts
}

// singular turns a count of one into the singular: "1 purchases" into
// "1 purchase", "inactive for 1 days" into "inactive for 1 day". The
// counted noun is the last word before " in ", " since " or the end.
func singular(text string) string {
	at := -1
	switch {
	case strings.HasPrefix(text, "1 "):
		at = 0
	case strings.Contains(text, " 1 "):
		at = strings.Index(text, " 1 ") + 1
	}
	if at < 0 {
		return text
	}
	end := len(text)
	for _, sep := range []string{" in ", " since "} {
		if i := strings.Index(text[at:], sep); i >= 0 && at+i < end {
			end = at + i
		}
	}
	if strings.HasSuffix(text[:end], "s") {
		return text[:end-1] + text[end:]
	}
	return text
}

var featureText = map[string]string{
	FeatDaysInactive:   "inactive for %.0f days",
	FeatActivityDrop:   "activity down %.0f%% vs the 4 weeks before",
	FeatAbandonments:   "%.0f abandoned funnels in 14 days",
	FeatNegativeChats:  "%.0f negative chat messages in 14 days",
	FeatSupportContact: "%.0f support contacts in 14 days",
	FeatPurchases:      "%.0f purchases",
	FeatSpend:          "log spend %.1f",
	FeatResurrected:    "came back after 30+ days away (%.0f)",
	FeatPurchaseGap:    "%.0f days since the last purchase",
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }
