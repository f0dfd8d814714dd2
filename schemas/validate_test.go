package schemas

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := NewValidator(0)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// schemaOf reads the schema name from an example's file name,
// e.g. "clickstream.v1.purchase.json" -> "clickstream.v1".
func schemaOf(name string) string {
	parts := strings.SplitN(name, ".", 3)
	return parts[0] + "." + parts[1]
}

func TestValidExamplesValidate(t *testing.T) {
	v := newValidator(t)
	files, _ := filepath.Glob("testdata/valid/*.json")
	if len(files) < 5 {
		t.Fatalf("expected the example documents, found %d", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(schemaOf(filepath.Base(f)), raw); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestInvalidExamplesAreRejectedWithTheirReason(t *testing.T) {
	v := newValidator(t)
	files, _ := filepath.Glob("testdata/invalid/*.json")
	if len(files) < 8 {
		t.Fatalf("expected the invalid examples, found %d", len(files))
	}
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		why, err := os.ReadFile(strings.TrimSuffix(f, ".json") + ".why")
		if err != nil {
			t.Fatal(err)
		}
		err = v.Validate(schemaOf(filepath.Base(f)), raw)
		var ie *InvalidError
		if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: want an *InvalidError, got %v", f, err)
			continue
		}
		if string(ie.Reason) != strings.TrimSpace(string(why)) {
			t.Errorf("%s: reason %q, want %q (%v)", f, ie.Reason, strings.TrimSpace(string(why)), err)
		}
	}
}

func TestRejectionNamesTheFieldAndRule(t *testing.T) {
	v := newValidator(t)
	cases := map[string]struct{ raw, want string }{
		"control char":  {`{"event_id":"e","user_id":"u","type":"tele\u0007port","event_time":1763900000000}`, "/type: pattern"},
		"empty name":    {`{"event_id":"e","user_id":"u","type":"","event_time":1763900000000}`, "/type: minLength"},
		"missing user":  {`{"event_id":"e","type":"page_view","event_time":1763900000000}`, "missing property 'user_id'"},
		"wrong type":    {`{"event_id":"e","user_id":"u","type":"page_view","event_time":"soon"}`, "/event_time: got string, want integer"},
		"purchase":      {`{"event_id":"e","user_id":"u","type":"purchase","event_time":1763900000000}`, "missing properties 'amount', 'currency'"},
		"fractional ms": {`{"event_id":"e","user_id":"u","type":"page_view","event_time":1763900000000.5}`, "/event_time"},
	}
	for name, c := range cases {
		_, err := v.DecodeClick([]byte(c.raw))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", name, err, c.want)
		}
	}
}

func TestRejectionNeverQuotesChatText(t *testing.T) {
	v := newValidator(t)
	secret := "MARKER-4711 my card is 4111111111111111"
	long := strings.Repeat("x", 9000)
	for _, raw := range []string{
		`{"event_id":"e","conversation_id":"c","user_id":"u","sender":"customer","text":"` + secret + `","language":"` + secret + `","event_time":1763900000000}`,
		`{"event_id":"e","conversation_id":"c","user_id":"u","sender":"customer","text":"` + secret + long + `","event_time":1763900000000}`,
		`{"event_id":"e","conversation_id":"c","user_id":"u","sender":"customer","text":"` + secret + `", BROKEN`,
	} {
		_, err := v.DecodeChat([]byte(raw))
		if err == nil {
			t.Fatalf("expected a rejection of %.60q", raw)
		}
		if strings.Contains(err.Error(), "MARKER-4711") {
			t.Errorf("rejection quotes the text: %v", err)
		}
	}
}

func TestTooLargeIsRejectedBeforeParsing(t *testing.T) {
	v, err := NewValidator(1024)
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.DecodeClick([]byte(`{"x":"` + strings.Repeat("a", 2000) + `"}`))
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Reason != ReasonTooLarge {
		t.Fatalf("got %v, want too_large", err)
	}
}

// v2 opens the event name; the built-in names keep their rules and v1
// messages (schema "clickstream.v1") are still read.
func TestOpenEventNames(t *testing.T) {
	v := newValidator(t)
	for _, raw := range []string{
		`{"schema":"clickstream.v2","event_id":"e","user_id":"u","type":"Order Completed","event_time":1763900000000,"properties":{"revenue":12.5}}`,
		`{"event_id":"e","user_id":"u","type":"produit consulté ✓","event_time":1763900000000}`,
		`{"schema":"clickstream.v1","event_id":"e","user_id":"u","type":"page_view","event_time":1763900000000}`,
		`{"event_id":"e","user_id":"u","type":"` + strings.Repeat("é", MaxEventNameLength) + `","event_time":1763900000000}`,
	} {
		ev, err := v.DecodeClick([]byte(raw))
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		var probe struct{ Type string }
		_ = json.Unmarshal([]byte(raw), &probe)
		if ev.Type != probe.Type {
			t.Errorf("name %q decoded as %q", probe.Type, ev.Type)
		}
	}
	for _, raw := range []string{
		`{"event_id":"e","user_id":"u","type":"` + strings.Repeat("a", MaxEventNameLength+1) + `","event_time":1763900000000}`,
		`{"event_id":"e","user_id":"u","type":"line\nbreak","event_time":1763900000000}`,
		`{"event_id":"e","user_id":"u","type":"c1\u0085","event_time":1763900000000}`,
		`{"event_id":"e","user_id":"u","type":7,"event_time":1763900000000}`,
		`{"schema":"clickstream.v3","event_id":"e","user_id":"u","type":"page_view","event_time":1763900000000}`,
		`{"event_id":"e","user_id":"u","type":"purchase","event_time":1763900000000,"amount":3}`,
	} {
		if _, err := v.DecodeClick([]byte(raw)); !errors.Is(err, ErrInvalid) {
			t.Errorf("accepted %.80s: %v", raw, err)
		}
	}
}

func TestDecodeClickFillsTheStruct(t *testing.T) {
	v := newValidator(t)
	raw, _ := os.ReadFile("testdata/valid/clickstream.v1.purchase.json")
	ev, err := v.DecodeClick(raw)
	if err != nil {
		t.Fatal(err)
	}
	if ev.UserID != "u-42" || ev.Type != ClickPurchase || ev.Amount != 49.9 || ev.Currency != "EUR" || ev.EventTime != 1763900300000 || ev.Properties["category"] != "course" {
		t.Fatalf("decoded %+v", ev)
	}
}

func TestAlertIDIsDeterministicAndDistinct(t *testing.T) {
	a := AlertID(AlertNegativeChat, "u1", "m-1")
	if a != AlertID(AlertNegativeChat, "u1", "m-1") || len(a) != 32 {
		t.Fatalf("not deterministic or wrong length: %s", a)
	}
	if a == AlertID(AlertChurnRisk, "u1", "m-1") || a == AlertID(AlertNegativeChat, "u1", "m-2") || AlertID("a", "bc", "") == AlertID("ab", "c", "") {
		t.Fatal("distinct causes share an id")
	}
}

// A free purchase (amount 0) is valid and must stay valid when re-encoded.
func TestFreePurchaseSurvivesReencoding(t *testing.T) {
	v := newValidator(t)
	ev, err := v.DecodeClick([]byte(`{"event_id":"e","user_id":"u","type":"purchase","amount":0,"currency":"EUR","event_time":1763900000000}`))
	if err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.DecodeClick(again); err != nil {
		t.Fatalf("re-encoded %s: %v", again, err)
	}
	view, _ := json.Marshal(ClickEvent{EventID: "e", UserID: "u", Type: ClickPageView, EventTime: 1763900000000})
	if strings.Contains(string(view), "amount") {
		t.Fatalf("a page view gained an amount: %s", view)
	}
}

// ClickEvent encodes with goccy/go-json for speed; its bytes must be what
// encoding/json writes for the same fields, HTML escapes, invalid UTF-8,
// sorted property keys and a free purchase's amount included. MarshalJSON
// is called directly, as the generator does: through json.Marshal,
// encoding/json would escape and compact its output again.
func TestClickJSONIsWhatEncodingJSONWrites(t *testing.T) {
	type plain ClickEvent
	events := []ClickEvent{
		{Schema: ClickstreamV1, EventID: "e1", UserID: "u<1>&", SessionID: "s\u2028", Type: ClickPageView, Page: "/a?b=<c>&d", EventTime: 1763900000000},
		{EventID: "e2", UserID: "用户", Type: ClickPurchase, ItemID: "course-1", Amount: 0, Currency: "EUR", EventTime: 1,
			Properties: map[string]any{"z": 1.5, "a": []any{"x", nil, true}, "m": map[string]any{"k": "\xff"}, "big": 1e21, "small": 1e-7}},
		{EventID: "e3", UserID: "u", Type: ClickPurchase, Amount: 198.99, Currency: "EUR", EventTime: 1763900000000},
	}
	for _, ev := range events {
		got, err := ev.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		// encoding/json alone: the same fields, and the amount a purchase always has.
		var want []byte
		if ev.Type == ClickPurchase {
			want, _ = json.Marshal(struct {
				plain
				Amount float64 `json:"amount"`
			}{plain(ev), ev.Amount})
		} else {
			want, _ = json.Marshal(plain(ev))
		}
		if string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}
