package funnel

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/schemas"
)

// segmenter stands in for the segment processor: a user is "new" until a
// purchase and a "buyer" after one. It counts how often it is asked.
type segmenter struct{ asked *int }

type segState struct{ Purchases int }

func (segmenter) Name() string              { return "segment" }
func (segmenter) Stream() processors.Stream { return processors.Clicks }
func (segmenter) NewState() any             { return &segState{} }
func (segmenter) Apply(u *processors.User, ev processors.Event) processors.Effects {
	if ev.Click.Type == schemas.ClickPurchase {
		u.State("segment").(*segState).Purchases++
	}
	return processors.Effects{}
}
func (s segmenter) Describe(u *processors.User, f *processors.Facts) {
	*s.asked++
	f.Segment = "new"
	if u.State("segment").(*segState).Purchases > 0 {
		f.Segment = "buyer"
	}
}

func withProps(ev schemas.ClickEvent, props map[string]any) schemas.ClickEvent {
	ev.Properties = props
	return ev
}

// The segment is read from the Facts on step events only, and an attempt
// is tallied under its segment at entry (first touch) and at its last
// step (last touch); a property likewise.
func TestKeyedBreaksDownBySegmentAndProperty(t *testing.T) {
	defs := DefaultDefinitions()
	defs[0].Breakdowns = []string{BySegment, "property.utm_source"}
	p := mustNew(t, defs, 0)
	asked := 0
	procs := []processors.Processor{segmenter{&asked}, NewKeyed(p, schemas.Vocabulary{})}
	u := processors.NewUser("u", procs, nil)
	min := int64(time.Minute / time.Millisecond)
	events := []schemas.ClickEvent{
		withProps(click("product_view", t0), map[string]any{"utm_source": "ads"}),
		click("search", t0+min), // no step: the Facts are not read
		withProps(click("add_to_cart", t0+2*min), map[string]any{"utm_source": "mail"}),
		click("checkout_start", t0+3*min),
		// The first attempt converts: the user turns "buyer" with it.
		withProps(click("purchase", t0+4*min), map[string]any{"utm_source": "mail"}),
		withProps(click("product_view", t0+5*min), map[string]any{"utm_source": "ads"}),
		click("page_view", t0+6*min),
	}
	for _, ev := range events {
		for _, proc := range procs {
			proc.Apply(u, processors.Event{Click: &ev})
		}
	}
	if steps := 5; asked != steps {
		t.Errorf("the Facts were read %d times, want once per step event (%d)", asked, steps)
	}
	// The second attempt is still open at "view"; the first converted.
	st := *u.State("funnel").(*State)
	a := p.View(&p.defs[0], st["purchase"])
	seg, src := a.Groups[BySegment], a.Groups["property.utm_source"]
	if seg == nil || src == nil {
		t.Fatalf("no tallies: %+v", a.Groups)
	}
	check := func(name string, counts map[string]*GroupCounts, want string) {
		t.Helper()
		if len(counts) != 1 || counts[want] == nil || counts[want].Attempts != 1 || counts[want].Conversions != 1 ||
			counts[want].TotalMs != 4*min || jsonOf(counts[want].Reached) != "[1,1,1,1]" {
			t.Errorf("%s: %s, want one converted attempt under %q", name, jsonOf(counts), want)
		}
	}
	check("segment, first touch", seg.First, "new")
	check("segment, last touch", seg.Last, "buyer")
	check("utm_source, first touch", src.First, "ads")
	check("utm_source, last touch", src.Last, "mail")
	if a.Step != 0 || a.Touch(BySegment, FirstTouch) != "buyer" || a.Touch("property.utm_source", LastTouch) != "ads" {
		t.Errorf("open attempt: step %d, values %v / %v", a.Step, a.First, a.Last)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A user's state keeps at most max_values groups per breakdown (the rest
// count as "(other)") and cuts values to max_value_length characters;
// an event without the property is "(none)".
func TestBreakdownLimits(t *testing.T) {
	defs := DefaultDefinitions()
	defs[0].Breakdowns = []string{"property.campaign"}
	p, err := New(defs, 0, WithLimits(Limits{MaxValues: 2, MaxValueLength: 5}))
	if err != nil {
		t.Fatal(err)
	}
	st := State{}
	hour := int64(time.Hour / time.Millisecond)
	campaigns := []any{"spring", "summer", "autumn", "winter", nil, "spring sale", "新年快乐好运", "a\nb"}
	for i, c := range campaigns {
		ev := click("product_view", t0+int64(i)*25*hour) // each attempt runs out before the next
		if c != nil {
			ev.Properties = map[string]any{"campaign": c}
		}
		p.Apply(st, ev)
	}
	p.Expire(st, t0+int64(len(campaigns)+1)*25*hour)
	got := map[string]int{}
	for v, c := range p.View(&p.defs[0], st["purchase"]).Groups["property.campaign"].First {
		got[v] = c.Attempts
	}
	// "sprin" and "summe" take the two places; "spring sale", cut to
	// "sprin", counts there; every other value (and no value) is other.
	want := map[string]int{"sprin": 2, "summe": 1, OtherValue: 5}
	if jsonOf(got) != jsonOf(want) {
		t.Errorf("groups %v, want %v", got, want)
	}
	if v := p.clean("新年快乐好运"); v != "新年快乐好" {
		t.Errorf("cut by characters: %q", v)
	}
	if v := p.clean("a\nb"); v != "a b" {
		t.Errorf("control characters: %q", v)
	}
}

// State written before breakdowns existed reads as it did, and a funnel
// without breakdowns writes exactly what it wrote before.
func TestStateWithoutBreakdownsIsUnchanged(t *testing.T) {
	old := `{"purchase":{"b":{"s":-1,"rc":[3,2,1,1],"c":1,"a":1},"r":[{"i":"e1","t":1763900000000,"m":1}],"n":{"s":0,"e":1763900000000,"st":[1763900000000],"l":1763900000000,"rc":[4,2,1,1],"c":1,"a":1},"x":{"tm":60000,"ls":[60000]}}}`
	var st State
	if err := json.Unmarshal([]byte(old), &st); err != nil {
		t.Fatal(err)
	}
	p := mustNew(t, DefaultDefinitions(), 5*time.Minute)
	p.ApplyWith(st, click("add_to_cart", t0+60_000), func() string { return "vip" })
	a := p.View(&p.defs[0], st["purchase"])
	if a.Step != 1 || a.Reached[1] != 3 || a.Touch(BySegment, FirstTouch) != NoValue || a.Touch(BySegment, LastTouch) != "vip" {
		t.Errorf("after an old document: %+v", a)
	}

	defs := DefaultDefinitions()
	defs[0].Breakdowns = nil
	plain := mustNew(t, defs, 5*time.Minute)
	st = State{}
	for i, typ := range []string{"product_view", "add_to_cart", "checkout_start", "purchase", "product_view"} {
		plain.Apply(st, withProps(click(typ, t0+int64(i)*1000), map[string]any{"utm_source": "ads"}))
	}
	plain.Expire(st, t0+48*3600*1000)
	b, _ := json.Marshal(st)
	for _, key := range []string{`"v":`, `"vf":`, `"vl":`, `"g":`} {
		if strings.Contains(string(b), key) {
			t.Errorf("a funnel without breakdowns stores %s: %s", key, b)
		}
	}
}

func TestBreakdownNames(t *testing.T) {
	for _, ok := range []string{"segment", "property.utm_source", "property.category"} {
		if err := CheckBreakdown(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for bad, msg := range map[string]string{
		"utm_source":            `invalid breakdown "utm_source"; accepted: segment or property.<name>`,
		"properties.utm_source": `(did you mean "property.utm_source"?)`,
		"property.":             "a property name follows",
		"Segment":               "accepted: segment",
	} {
		err := CheckBreakdown(bad)
		if !errors.Is(err, ErrBreakdown) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", bad, err, msg)
		}
	}
	defs := DefaultDefinitions()
	defs[0].Breakdowns = []string{"segment", "segment"}
	if _, err := New(defs, 0); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("a repeated breakdown: %v", err)
	}
	if _, err := New(DefaultDefinitions(), 0, WithLimits(Limits{})); err == nil {
		t.Error("zero limits accepted")
	}
	if a, err := ParseAttribution("last"); a != LastTouch || err != nil {
		t.Errorf("last: %v %v", a, err)
	}
	if _, err := ParseAttribution("linear"); !errors.Is(err, ErrAttribution) {
		t.Errorf("linear: %v", err)
	}
}
