package schemas

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readExample(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A v1 alert reads as v2: score goes to the field of its meaning, reasons
// keep their text under code v1_text.
func TestDecodeAlertUpgradesV1(t *testing.T) {
	v := newValidator(t)
	neg, err := v.DecodeAlert(readExample(t, "valid/alert.v1.negative_chat.json"))
	if err != nil {
		t.Fatal(err)
	}
	if neg.Schema != AlertV2 || neg.Sentiment == nil || *neg.Sentiment != -0.82 || neg.ChurnProbability != nil ||
		neg.RollingSentiment == nil || *neg.RollingSentiment != -0.61 || neg.Source == nil || neg.Source.Offset != 1201 {
		t.Errorf("negative chat %+v", neg)
	}
	if neg.Reasons[0].Code != CodeV1Text || neg.Reasons[0].Text != "strongly negative message (-0.82)" {
		t.Errorf("reasons %+v", neg.Reasons)
	}
	churn, err := v.DecodeAlert(readExample(t, "valid/alert.v1.churn_risk.json"))
	if err != nil {
		t.Fatal(err)
	}
	if churn.ChurnProbability == nil || *churn.ChurnProbability != 0.74 || churn.Sentiment != nil || len(churn.Reasons) != 2 {
		t.Errorf("churn %+v", churn)
	}
	// The upgrade is itself a valid v2 alert, and the plain JSON reader
	// (json.Unmarshal, as tools use) reads v1 the same way.
	if err := v.ValidateAlert(churn); err != nil {
		t.Errorf("upgraded v1 is not valid v2: %v", err)
	}
	var lax Alert
	if err := json.Unmarshal(readExample(t, "valid/alert.v1.churn_risk.json"), &lax); err != nil || !reflect.DeepEqual(lax, churn) {
		t.Errorf("json.Unmarshal of v1 %+v (%v), DecodeAlert %+v", lax, err, churn)
	}
	// A bad v1 is judged by v1's rules.
	_, err = v.DecodeAlert(readExample(t, "invalid/alert.v1.bad_priority.json"))
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Schema != AlertV1 {
		t.Errorf("bad v1: %v", err)
	}
}

func TestDecodeAlertReadsV2(t *testing.T) {
	v := newValidator(t)
	a, err := v.DecodeAlert(readExample(t, "valid/alert.v2.negative_chat.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := AlertReason{Code: CodeVeryNegativeMessage, Params: map[string]any{"sentiment": -0.82, "threshold": -0.8}, Text: "very negative message (-0.82)"}
	if !reflect.DeepEqual(a.Reasons[0], want) || a.Segment != "high_value" || *a.Sentiment != -0.82 || a.Source.Partition != 3 {
		t.Errorf("decoded %+v", a)
	}
	var lax Alert
	if err := json.Unmarshal(readExample(t, "valid/alert.v2.negative_chat.json"), &lax); err != nil || !reflect.DeepEqual(lax, a) {
		t.Errorf("json.Unmarshal %+v (%v), DecodeAlert %+v", lax, err, a)
	}
}

// v2 is open: unknown fields, types and reason codes are accepted (and
// ignored); a case variant of a known key does not override it.
func TestAlertV2AcceptsAdditions(t *testing.T) {
	v := newValidator(t)
	a, err := v.DecodeAlert(readExample(t, "valid/alert.v2.future_fields.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Type != "refund_request" || a.Reasons[0].Code != "some_new_code" || a.Reasons[0].Params["currency"] != "EUR" {
		t.Errorf("decoded %+v", a)
	}
	raw := strings.Replace(string(readExample(t, "valid/alert.v2.churn_risk.json")), `"type":"churn_risk"`, `"type":"churn_risk","TYPE":"negative_chat","Priority":"URGENT"`, 1)
	a, err = v.DecodeAlert([]byte(raw))
	if err != nil || a.Type != AlertChurnRisk || a.Priority != PriorityNormal {
		t.Errorf("case variants changed the alert: %+v %v", a, err)
	}
}

func TestAlertV2RequiresTheFiguresOfItsType(t *testing.T) {
	v := newValidator(t)
	for name, edit := range map[string][2]string{
		"negative chat without sentiment": {`"sentiment":-0.82,`, ``},
		"sentiment out of range":          {`"sentiment":-0.82`, `"sentiment":-1.5`},
		"reason without code":             {`"code":"very_negative_message",`, ``},
		"reason with a nested param":      {`"threshold":-0.8`, `"threshold":{"x":1}`},
	} {
		raw := strings.Replace(string(readExample(t, "valid/alert.v2.negative_chat.json")), edit[0], edit[1], 1)
		if _, err := v.DecodeAlert([]byte(raw)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
}

// What the processors build renders as a valid v1 for subscribers still
// on v1, with score carrying each type's old meaning.
func TestAlertRendersAsV1(t *testing.T) {
	v := newValidator(t)
	for _, name := range []string{"alert.v2.negative_chat.json", "alert.v2.churn_risk.json"} {
		a, err := v.DecodeAlert(readExample(t, "valid/"+name))
		if err != nil {
			t.Fatal(err)
		}
		old := a.V1()
		raw, _ := json.Marshal(old)
		if err := v.Validate(AlertV1, raw); err != nil {
			t.Errorf("%s as v1: %v\n%s", name, err, raw)
		}
		if old.Score != a.Score() || len(old.Reasons) != len(a.Reasons) || old.Reasons[0] != a.Reasons[0].Text {
			t.Errorf("%s as v1: %+v", name, old)
		}
	}
}

// The decoder never panics, rejects only with an *InvalidError, and what
// it accepts re-encodes as a v2 alert that decodes to the same value.
func FuzzDecodeAlert(f *testing.F) {
	addSeeds(f)
	f.Add([]byte(`{"schema":"alert.v2","alert_id":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","type":"x","user_id":"u","priority":"LOW","reasons":[{"code":"c","text":"t","params":{}}],"event_time":1.5e3,"detected_at":0,"rule_version":"r"}`))
	v := newValidator(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := v.DecodeAlert(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("rejection is not an InvalidError: %v", err)
			}
			return
		}
		again, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := v.DecodeAlert(again)
		if err != nil {
			t.Fatalf("accepted %q but not its re-encoding %q: %v", raw, again, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("re-encoding changed the alert:\n%+v\n%+v", a, b)
		}
	})
}
