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
