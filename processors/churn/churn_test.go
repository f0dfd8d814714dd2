package churn

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cxstream/cxstream/schemas"
)

const t0 = int64(1_763_900_000_000)

func ev(typ string, at int64, amount float64) schemas.ClickEvent {
	return schemas.ClickEvent{EventID: typ, UserID: "u", Type: typ, EventTime: at, Amount: amount}
}

func TestPersonas(t *testing.T) {
	p, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// A loyal buyer: active every day for five weeks, buys weekly.
	loyal := &State{}
	for d := int64(0); d < 35; d++ {
		Observe(loyal, ev("page_view", t0+d*dayMs, 0))
		if d%7 == 0 {
			Observe(loyal, ev("purchase", t0+d*dayMs+1, 40))
		}
	}
	now := t0 + 35*dayMs
	if a := p.Evaluate(loyal, "loyal", Signals{}, now, "x"); a != nil {
		t.Errorf("loyal buyer alerted: %+v", a)
	}
	loyalScore := loyal.LastScore

	// Active for four weeks, then abandoned checkout twice, complained
	// three times, and went quiet for ten days.
	angry := &State{}
	for d := int64(0); d < 28; d++ {
		Observe(angry, ev("page_view", t0+d*dayMs, 0))
	}
	sig := Signals{AbandonedAt: []int64{t0 + 27*dayMs, t0 + 28*dayMs}, NegativeAt: []int64{t0 + 28*dayMs, t0 + 28*dayMs + 1, t0 + 28*dayMs + 2}, ContactAt: []int64{t0 + 28*dayMs}}
	later := t0 + 38*dayMs
	a := p.Evaluate(angry, "angry", sig, later, "timer")
	if a == nil {
		t.Fatalf("angry-then-gone user scored %.3f and did not alert", angry.LastScore)
	}
	if a.Type != schemas.AlertChurnRisk || a.ChurnProbability == nil || *a.ChurnProbability < 0.6 || a.Sentiment != nil ||
		len(a.Reasons) == 0 || !strings.Contains(strings.Join(a.ReasonTexts(), ";"), "negative chat") {
		t.Errorf("alert %+v", a)
	}
	// Each model reason is coded by its feature, with the figures behind
	// the text; the lifecycle closes the list and is the segment.
	if !a.HasReason(FeatNegativeChats) {
		t.Errorf("reason codes %v lack %s", a.ReasonCodes(), FeatNegativeChats)
	}
	for _, r := range a.Reasons {
		if _, known := featureText[r.Code]; known {
			if r.Params["value"] == nil || r.Params["contribution"].(float64) <= 0 {
				t.Errorf("reason %+v lacks its value or a positive contribution", r)
			}
		}
	}
	if last := a.Reasons[len(a.Reasons)-1]; last.Code != schemas.CodeLifecycle || last.Params["lifecycle"] != a.Segment || a.Segment == "" {
		t.Errorf("lifecycle reason %+v, segment %q", last, a.Segment)
	}
	// With the segment known, the alert names it; the lifecycle stays a
	// reason.
	named := *angry
	named.LastScore, named.LastAlertAt = 0, 0
	if b := p.Evaluate(&named, "angry", Signals{AbandonedAt: sig.AbandonedAt, NegativeAt: sig.NegativeAt, ContactAt: sig.ContactAt, Segment: "churned"}, later, "timer"); b == nil || b.Segment != "churned" || !b.HasReason(schemas.CodeLifecycle) {
		t.Errorf("with a segment: %+v", b)
	}
	if angry.LastScore <= loyalScore {
		t.Errorf("angry %.3f not above loyal %.3f", angry.LastScore, loyalScore)
	}
	// No second alert while the score stays above the threshold.
	if again := p.Evaluate(angry, "angry", sig, later+dayMs, "timer2"); again != nil {
		t.Errorf("alerted twice: %+v", again)
	}
	v, _ := schemas.NewValidator(0)
	a.DetectedAt = later
	if err := v.ValidateAlert(*a); err != nil {
		t.Error(err)
	}
}

func TestActivityDropAndInactivity(t *testing.T) {
	st := &State{}
	for d := int64(0); d < 28; d++ {
		for i := 0; i < 5; i++ {
			Observe(st, ev("page_view", t0+d*dayMs+int64(i), 0))
		}
	}
	f := Features(st, Signals{}, t0+35*dayMs)
	if f[FeatActivityDrop] != 1 {
		t.Errorf("activity drop %v, want 1 (no events in the last week)", f[FeatActivityDrop])
	}
	if f[FeatDaysInactive] < 7 || f[FeatDaysInactive] > 8 {
		t.Errorf("days inactive %v", f[FeatDaysInactive])
	}
	f = Features(st, Signals{}, t0+27*dayMs+1)
	if f[FeatActivityDrop] != 0 {
		t.Errorf("steady user has a drop of %v", f[FeatActivityDrop])
	}
}

func TestConfigValidation(t *testing.T) {
	c := DefaultConfig()
	c.Weights["shoe_size"] = 1
	if _, err := New(c); err == nil {
		t.Fatal("unknown feature accepted")
	}
}

func TestLifecycleAndSilentPersonas(t *testing.T) {
	p, _ := New(DefaultConfig())
	// Silent after checkout: active for two weeks, abandons checkout,
	// then nothing; only the inactivity checks see it.
	silent := &State{}
	for d := int64(0); d < 14; d++ {
		Observe(silent, ev("page_view", t0+d*dayMs, 0))
	}
	Observe(silent, ev("checkout_start", t0+14*dayMs, 0))
	sig := Signals{AbandonedAt: []int64{t0 + 15*dayMs}}
	var alert *schemas.Alert
	checks := 0
	for due := p.NextCheck(silent); due > 0 && alert == nil; due = p.NextCheck(silent) {
		alert = p.CheckInactive(silent, "silent", sig, due)
		checks++
	}
	if alert == nil {
		t.Fatalf("the silent user never alerted (last score %.3f after %d checks)", silent.LastScore, checks)
	}
	if !strings.Contains(strings.Join(alert.ReasonTexts(), ";"), "inactive for") || !alert.HasReason(FeatDaysInactive) {
		t.Errorf("reasons %v", alert.Reasons)
	}
	if alert.AlertID != schemas.AlertID(schemas.AlertChurnRisk, "silent", fmt.Sprintf("inactive:%d", alert.EventTime)) {
		t.Errorf("a timer alert's id must derive from its deadline: %s", alert.AlertID)
	}
	if again := p.CheckInactive(silent, "silent", sig, alert.EventTime); again != nil {
		t.Errorf("the same check alerted twice")
	}

	// Resurrected: active, dormant 40 days, back.
	r := &State{}
	Observe(r, ev("page_view", t0, 0))
	if got := Lifecycle(r, t0+dayMs); got != LifecycleNew {
		t.Errorf("lifecycle %q, want new", got)
	}
	if got := Lifecycle(r, t0+31*dayMs); got != LifecycleDormant {
		t.Errorf("lifecycle %q, want dormant", got)
	}
	Observe(r, ev("page_view", t0+40*dayMs, 0))
	if got := Lifecycle(r, t0+41*dayMs); got != LifecycleResurrected {
		t.Errorf("lifecycle %q, want resurrected", got)
	}
	if got := Lifecycle(r, t0+60*dayMs); got != LifecycleCurrent {
		t.Errorf("lifecycle %q, want current", got)
	}
	if f := Features(r, Signals{}, t0+41*dayMs); f[FeatResurrected] != 1 {
		t.Errorf("resurrected feature %v", f[FeatResurrected])
	}
}

func TestReasonsCountInTheSingular(t *testing.T) {
	for in, want := range map[string]string{
		"1 purchases":                             "1 purchase",
		"1 support contacts in 14 days":           "1 support contact in 14 days",
		"1 negative chat messages in 14 days":     "1 negative chat message in 14 days",
		"3 purchases":                             "3 purchases",
		"1 days since the last purchase":          "1 day since the last purchase",
		"inactive for 1 days":                     "inactive for 1 day",
		"activity down 40% vs the 4 weeks before": "activity down 40% vs the 4 weeks before",
	} {
		if got := singular(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}
