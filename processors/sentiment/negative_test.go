package sentiment

import (
	"testing"

	"github.com/cxstream/cxstream/schemas"
)

// Every reason of a negative-chat alert carries its stable code and the
// figures its text shows, so a subscriber can route on them.
func TestNegativeChatReasonsAreCoded(t *testing.T) {
	sc := fixedScorer{"furious": -0.9, "angry": -0.7}
	p, err := NewProcessor(DefaultConfig(), sc)
	if err != nil {
		t.Fatal(err)
	}
	st := &State{}
	cust := Customer{Purchases: 3, Spend: 450, FunnelStage: schemas.ClickCheckoutStart}
	var last *schemas.Alert
	for i, text := range []string{"angry", "angry", "furious"} {
		if out := p.Apply(st, msg(string(rune('1'+i)), "c", "customer", text, int64(i)*1000), cust); out.Alert != nil {
			last = out.Alert
		}
	}
	if last == nil {
		t.Fatal("no alert")
	}
	want := map[string]map[string]any{
		schemas.CodeVeryNegativeMessage: {"sentiment": -0.9, "threshold": -0.8},
		schemas.CodeRollingNegative:     {"messages": 3},
		schemas.CodeRepeatedNegative:    {"negative_messages": 3},
		schemas.CodeEscalated:           nil,
		schemas.CodeHighValue:           {"purchases": 3, "spend": 450.0},
		schemas.CodeOpenCart:            {"funnel_stage": schemas.ClickCheckoutStart},
	}
	got := map[string]schemas.AlertReason{}
	for _, r := range last.Reasons {
		got[r.Code] = r
		if r.Text == "" {
			t.Errorf("reason %s has no text", r.Code)
		}
	}
	for code, params := range want {
		r, ok := got[code]
		if !ok {
			t.Errorf("reason %s missing from %v", code, last.ReasonCodes())
			continue
		}
		for k, v := range params {
			if r.Params[k] != v {
				t.Errorf("%s: param %s = %v, want %v", code, k, r.Params[k], v)
			}
		}
	}
	if last.Sentiment == nil || *last.Sentiment != -0.9 || last.ChurnProbability != nil || last.Segment != "high_value" || last.Schema != schemas.AlertV2 {
		t.Errorf("alert %+v", last)
	}
	last.DetectedAt = 1
	v, _ := schemas.NewValidator(0)
	if err := v.ValidateAlert(*last); err != nil {
		t.Fatal(err)
	}
}

// When the customer's segment is known it decides the priority boost
// (sentiment.segment_priority) and the alert carries it; spend alone no
// longer makes a customer high value.
func TestSegmentRaisesThePriority(t *testing.T) {
	sc := fixedScorer{"angry": -0.7}
	cfg := DefaultConfig()
	cfg.SegmentPriority = map[string]int{"high_value": 1, "churned": 2}
	p, err := NewProcessor(cfg, sc)
	if err != nil {
		t.Fatal(err)
	}
	alertFor := func(c Customer) *schemas.Alert {
		out := p.Apply(&State{}, msg("1", "c", "customer", "angry", 0), c)
		if out.Alert == nil {
			t.Fatalf("no alert for %+v", c)
		}
		return out.Alert
	}
	plain := alertFor(Customer{Segment: "regular", Purchases: 1, Spend: 500})
	vip := alertFor(Customer{Segment: "high_value", Purchases: 5, Spend: 500})
	churned := alertFor(Customer{Segment: "churned", Purchases: 1, Spend: 20})
	unknown := alertFor(Customer{Purchases: 1, Spend: 500})
	if plain.Segment != "regular" || plain.HasReason(schemas.CodeHighValue) {
		t.Errorf("regular customer with a big spend: %+v", plain)
	}
	if vip.Segment != "high_value" || vip.Priority.Rank() != plain.Priority.Rank()+1 || !vip.HasReason(schemas.CodeHighValue) {
		t.Errorf("high value %s %v, regular %s", vip.Priority, vip.ReasonCodes(), plain.Priority)
	}
	if churned.Priority.Rank() != plain.Priority.Rank()+2 || !churned.HasReason(schemas.CodeSegment) {
		t.Errorf("churned %s %v, regular %s", churned.Priority, churned.ReasonCodes(), plain.Priority)
	}
	if unknown.Segment != "high_value" || unknown.Priority != vip.Priority {
		t.Errorf("segment unknown: spend decides as before, got %s %q", unknown.Priority, unknown.Segment)
	}
	v, _ := schemas.NewValidator(0)
	for _, a := range []*schemas.Alert{plain, vip, churned} {
		a.DetectedAt = 1
		if err := v.ValidateAlert(*a); err != nil {
			t.Error(err)
		}
	}
}
