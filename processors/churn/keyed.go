package churn

import (
	"strconv"

	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/schemas"
)

// Keyed is the churn processor on the processor contract: it observes
// every click, scores the user after each and when they fall silent, and
// tells the others the user's activity and purchases.
type Keyed struct{ p *Processor }

// NewKeyed returns the churn processor on the processor contract.
func NewKeyed(p *Processor) *Keyed { return &Keyed{p: p} }

var _ processors.Timed = (*Keyed)(nil)

// Name implements processors.Processor.
func (k *Keyed) Name() string { return "churn" }

// Stream implements processors.Processor.
func (k *Keyed) Stream() processors.Stream { return processors.Clicks }

// NewState implements processors.Processor.
func (k *Keyed) NewState() any { return &State{} }

func state(u *processors.User) *State { return u.State("churn").(*State) }

// Apply implements processors.Processor.
func (k *Keyed) Apply(u *processors.User, ev processors.Event) processors.Effects {
	st := state(u)
	ObserveAs(st, *ev.Click, ev.Role)
	return alerted(k.p.Evaluate(st, u.ID, signals(u.Facts()), ev.Time(), ev.ID()))
}

// Describe implements processors.Processor.
func (k *Keyed) Describe(u *processors.User, f *processors.Facts) {
	st := state(u)
	f.FirstSeen, f.LastSeen, f.ResurrectedAt = st.FirstSeen, st.LastSeen, st.ResurrectedAt
	f.Purchases, f.Spend, f.LastPurchase = st.Purchases, st.Spend, st.LastPurchase
	f.Day, f.DailyEvents = st.Day, st.Days[:]
}

// NextDue implements processors.Timed: the next inactivity check.
func (k *Keyed) NextDue(u *processors.User) int64 { return k.p.NextCheck(state(u)) }

// Fire implements processors.Timed: a silent user is scored at each
// inactivity check, and a user is scored again when the funnel has just
// recorded an abandonment, which can tip the score.
func (k *Keyed) Fire(u *processors.User, at int64, earlier processors.Effects) processors.Effects {
	st := state(u)
	if check := k.p.NextCheck(st); check > 0 && check <= at {
		return alerted(k.p.CheckInactive(st, u.ID, signals(u.Facts()), check))
	}
	if earlier.Has("abandoned") {
		return alerted(k.p.Evaluate(st, u.ID, signals(u.Facts()), at, "abandoned:"+strconv.FormatInt(at, 10)))
	}
	return processors.Effects{}
}

func signals(f processors.Facts) Signals {
	return Signals{AbandonedAt: f.AbandonedAt, NegativeAt: f.NegativeAt, ContactAt: f.ContactAt, FunnelStage: f.FunnelStage, Sentiment: f.Sentiment, Segment: f.Segment}
}

func alerted(a *schemas.Alert) processors.Effects {
	if a == nil {
		return processors.Effects{}
	}
	return processors.Effects{Alerts: []*schemas.Alert{a}}
}
