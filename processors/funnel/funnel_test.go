package funnel

import (
	"fmt"
	"testing"
	"time"

	"github.com/cxstream/cxstream/schemas"
)

const t0 = int64(1_763_900_000_000)

func click(typ string, at int64) schemas.ClickEvent {
	return schemas.ClickEvent{EventID: typ + "@" + time.UnixMilli(at).String(), UserID: "u", Type: typ, EventTime: at}
}

func kinds(ts []Transition) []string {
	var out []string
	for _, t := range ts {
		out = append(out, string(t.Kind)+":"+t.StepName)
	}
	return out
}

func mustNew(t *testing.T, defs []Definition, lateness time.Duration) *Processor {
	t.Helper()
	p, err := New(defs, lateness)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTransitions(t *testing.T) {
	min := int64(time.Minute / time.Millisecond)
	hour := 60 * min
	cases := []struct {
		name   string
		events []schemas.ClickEvent
		want   []string
		conv   int
		aband  int
		stage  string
	}{
		{"full conversion", []schemas.ClickEvent{click("product_view", t0), click("add_to_cart", t0+min), click("checkout_start", t0+2*min), click("purchase", t0+3*min)},
			[]string{"entered:view", "advanced:cart", "advanced:checkout", "converted:purchase"}, 1, 0, ""},
		{"other events between steps are ignored", []schemas.ClickEvent{click("course_view", t0), click("search", t0+1), click("page_view", t0+2), click("add_to_cart", t0+3)},
			[]string{"entered:view", "advanced:cart"}, 0, 0, "add_to_cart"},
		{"skipping a step does not advance", []schemas.ClickEvent{click("product_view", t0), click("checkout_start", t0+1), click("purchase", t0+2)},
			[]string{"entered:view"}, 0, 0, "product_view"},
		{"repeated first step keeps the window", []schemas.ClickEvent{click("product_view", t0), click("product_view", t0+23*hour), click("add_to_cart", t0+25*hour)},
			[]string{"entered:view", "abandoned:view"}, 0, 1, ""},
		{"window runs out at checkout, then re-entry", []schemas.ClickEvent{click("product_view", t0), click("add_to_cart", t0+min), click("checkout_start", t0+2*min), click("product_view", t0+30*hour)},
			[]string{"entered:view", "advanced:cart", "advanced:checkout", "abandoned:checkout", "entered:view"}, 0, 1, "product_view"},
		{"a second conversion after the first", []schemas.ClickEvent{click("product_view", t0), click("add_to_cart", t0+1), click("checkout_start", t0+2), click("purchase", t0+3), click("product_view", t0+4), click("add_to_cart", t0+5), click("checkout_start", t0+6), click("purchase", t0+7)},
			nil, 2, 0, ""},
	}
	p := mustNew(t, DefaultDefinitions(), 0)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := State{}
			var got []Transition
			for _, ev := range c.events {
				got = append(got, p.Apply(st, ev)...)
			}
			if c.want != nil && !equal(kinds(got), c.want) {
				t.Errorf("transitions %v, want %v", kinds(got), c.want)
			}
			a := p.View(&p.defs[0], st["purchase"])
			if a.Conversions != c.conv || a.Abandonments != c.aband {
				t.Errorf("conversions %d abandonments %d, want %d %d", a.Conversions, a.Abandonments, c.conv, c.aband)
			}
			if p.Stage(st) != c.stage {
				t.Errorf("stage %q, want %q", p.Stage(st), c.stage)
			}
		})
	}
}

func TestOrderModesExclusionsAndHoldConstant(t *testing.T) {
	steps := DefaultDefinitions()[0].Steps
	sess := func(typ string, at int64, session string) schemas.ClickEvent {
		ev := click(typ, at)
		ev.SessionID = session
		return ev
	}
	cases := []struct {
		name   string
		def    Definition
		events []schemas.ClickEvent
		want   []string
	}{
		{"strict: another event between steps drops the attempt",
			Definition{Name: "f", Steps: steps, Window: time.Hour, Order: Strict},
			[]schemas.ClickEvent{click("product_view", t0), click("search", t0+1), click("add_to_cart", t0+2)},
			[]string{"entered:view", "abandoned:view"}},
		{"strict: repeating the current step is allowed",
			Definition{Name: "f", Steps: steps, Window: time.Hour, Order: Strict},
			[]schemas.ClickEvent{click("product_view", t0), click("product_view", t0+1), click("add_to_cart", t0+2)},
			[]string{"entered:view", "advanced:cart"}},
		{"any: later steps in any order",
			Definition{Name: "f", Steps: steps, Window: time.Hour, Order: Any},
			[]schemas.ClickEvent{click("product_view", t0), click("purchase", t0+1), click("add_to_cart", t0+2), click("checkout_start", t0+3)},
			[]string{"entered:view", "advanced:purchase", "advanced:cart", "converted:checkout"}},
		{"exclusion ends the attempt",
			Definition{Name: "f", Steps: steps, Window: time.Hour, Exclusions: []Step{{Name: "removed", Events: []string{"remove_from_cart"}}}},
			[]schemas.ClickEvent{click("product_view", t0), click("add_to_cart", t0+1), click("remove_from_cart", t0+2), click("checkout_start", t0+3)},
			[]string{"entered:view", "advanced:cart", "abandoned:cart"}},
		{"hold constant: steps of another session do not count",
			Definition{Name: "f", Steps: steps, Window: time.Hour, HoldConstant: "session_id"},
			[]schemas.ClickEvent{sess("product_view", t0, "s1"), sess("add_to_cart", t0+1, "s2"), sess("add_to_cart", t0+2, "s1")},
			[]string{"entered:view", "advanced:cart"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustNew(t, []Definition{c.def}, 0)
			st := State{}
			var got []Transition
			for _, ev := range c.events {
				got = append(got, p.Apply(st, ev)...)
			}
			if !equal(kinds(got), c.want) {
				t.Errorf("transitions %v, want %v", kinds(got), c.want)
			}
		})
	}
}

func TestLateEventIsPutInItsPlace(t *testing.T) {
	p := mustNew(t, DefaultDefinitions(), 10*time.Minute)
	st := State{}
	// The cart event arrives after checkout, though it happened before.
	p.Apply(st, click("product_view", t0))
	p.Apply(st, click("checkout_start", t0+3000))
	got := p.Apply(st, click("add_to_cart", t0+1000))
	got = append(got, p.Apply(st, click("purchase", t0+4000))...)
	if !equal(kinds(got), []string{"advanced:cart", "advanced:checkout", "converted:purchase"}) {
		t.Fatalf("got %v", kinds(got))
	}
	// A duplicate changes nothing.
	if dup := p.Apply(st, click("purchase", t0+4000)); len(dup) != 0 {
		t.Fatalf("duplicate produced %v", kinds(dup))
	}
	if a := p.View(&p.defs[0], st["purchase"]); a.Conversions != 1 {
		t.Fatalf("conversions %d", a.Conversions)
	}
}

func TestExpireFiresOnceForASilentUser(t *testing.T) {
	p := mustNew(t, DefaultDefinitions(), time.Minute)
	st := State{}
	p.Apply(st, click("product_view", t0))
	p.Apply(st, click("add_to_cart", t0+1000))
	due := p.NextDeadline(st)
	if due != t0+24*3600*1000 {
		t.Fatalf("deadline %d", due)
	}
	if got := p.Expire(st, due-1); len(got) != 0 {
		t.Fatalf("expired early: %v", got)
	}
	got := p.Expire(st, due)
	if len(got) != 1 || got[0].Kind != Abandoned || got[0].StepName != "cart" || got[0].At != due || got[0].Reason != ReasonWindow {
		t.Fatalf("got %+v", got)
	}
	if again := p.Expire(st, due+5000); len(again) != 0 || p.NextDeadline(st) != 0 {
		t.Fatalf("fired twice: %v", again)
	}
}

func TestPropertyFilters(t *testing.T) {
	p := mustNew(t, []Definition{{Name: "course", Window: time.Hour, Steps: []Step{
		{Name: "view", Events: []string{"course_view"}},
		{Name: "buy", Events: []string{"purchase"}, Where: map[string]string{"properties.category": "course"}},
	}}}, 0)
	st := State{}
	p.Apply(st, click("course_view", t0))
	book := click("purchase", t0+1)
	book.Properties = map[string]any{"category": "book"}
	p.Apply(st, book)
	course := click("purchase", t0+2)
	course.Properties = map[string]any{"category": "course"}
	got := p.Apply(st, course)
	if len(got) != 1 || got[0].Kind != Converted {
		t.Fatalf("got %v", kinds(got))
	}
}

func TestInvalidDefinitionsAreRejected(t *testing.T) {
	steps := DefaultDefinitions()[0].Steps
	for _, d := range []Definition{
		{Name: "", Window: time.Hour, Steps: steps},
		{Name: "one", Window: time.Hour, Steps: steps[:1]},
		{Name: "nowindow", Steps: steps},
		{Name: "order", Window: time.Hour, Steps: steps, Order: "random"},
	} {
		if _, err := New([]Definition{d}, 0); err == nil {
			t.Errorf("accepted %+v", d)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Defect 11: the exclusion marker was the bit of step 32, so a 32-step
// funnel could never convert.
func TestThirtyTwoStepFunnelConverts(t *testing.T) {
	d := Definition{Name: "long", Window: time.Hour, Exclusions: []Step{{Name: "out", Events: []string{"logout"}}}}
	for i := range 32 {
		d.Steps = append(d.Steps, Step{Name: fmt.Sprint("s", i), Events: []string{"page_view"}, Where: map[string]string{"page": fmt.Sprint("/", i)}})
	}
	p := mustNew(t, []Definition{d}, 0)
	st := State{}
	for i := range 32 {
		ev := click("page_view", t0+int64(i))
		ev.Page = fmt.Sprint("/", i)
		p.Apply(st, ev)
	}
	if a := p.View(&p.Definitions()[0], st["long"]); a.Conversions != 1 || a.Reached[31] != 1 {
		t.Fatalf("conversions %d, reached %v", a.Conversions, a.Reached)
	}
	// The exclusion still ends an attempt.
	again := click("page_view", t0+100)
	again.Page = "/0"
	p.Apply(st, again)
	p.Apply(st, click("logout", t0+101))
	if a := p.View(&p.Definitions()[0], st["long"]); a.Abandonments != 1 {
		t.Fatalf("exclusion did not end the attempt: %+v", a)
	}
}
