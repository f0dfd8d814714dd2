package funnel

import (
	"testing"
	"time"

	"github.com/cxstream/cxstream/schemas"
)

const t0 = int64(1_763_900_000_000)

func click(typ string, at int64) schemas.ClickEvent {
	return schemas.ClickEvent{EventID: typ, UserID: "u", Type: typ, EventTime: at}
}

func kinds(ts []Transition) []string {
	var out []string
	for _, t := range ts {
		out = append(out, string(t.Kind)+":"+t.StepName)
	}
	return out
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
			nil, 0, 0, "product_view"},
		{"repeated first step keeps the window", []schemas.ClickEvent{click("product_view", t0), click("product_view", t0+23*hour), click("add_to_cart", t0+25*hour)},
			[]string{"entered:view", "abandoned:view"}, 0, 1, ""},
		{"window runs out at checkout, then re-entry", []schemas.ClickEvent{click("product_view", t0), click("add_to_cart", t0+min), click("checkout_start", t0+2*min), click("product_view", t0+30*hour)},
			[]string{"entered:view", "advanced:cart", "advanced:checkout", "abandoned:checkout", "entered:view"}, 0, 1, "product_view"},
		{"a second conversion after the first", []schemas.ClickEvent{click("product_view", t0), click("add_to_cart", t0+1), click("checkout_start", t0+2), click("purchase", t0+3), click("product_view", t0+4), click("add_to_cart", t0+5), click("checkout_start", t0+6), click("purchase", t0+7)},
			nil, 2, 0, ""},
	}
	p, err := New(DefaultDefinitions())
	if err != nil {
		t.Fatal(err)
	}
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
			pr := st["purchase"]
			if pr.Conversions != c.conv || pr.Abandonments != c.aband {
				t.Errorf("conversions %d abandonments %d, want %d %d", pr.Conversions, pr.Abandonments, c.conv, c.aband)
			}
			if p.Stage(st) != c.stage {
				t.Errorf("stage %q, want %q", p.Stage(st), c.stage)
			}
		})
	}
}

func TestExpireFiresOnceForASilentUser(t *testing.T) {
	p, _ := New(DefaultDefinitions())
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
	if len(got) != 1 || got[0].Kind != Abandoned || got[0].StepName != "cart" || got[0].At != due {
		t.Fatalf("got %+v", got)
	}
	if again := p.Expire(st, due+5000); len(again) != 0 || p.NextDeadline(st) != 0 {
		t.Fatalf("fired twice: %v", again)
	}
}

func TestPropertyFilters(t *testing.T) {
	p, err := New([]Definition{{Name: "course", Window: time.Hour, Steps: []Step{
		{Name: "view", Events: []string{"course_view"}},
		{Name: "buy", Events: []string{"purchase"}, Where: map[string]string{"properties.category": "course"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	st := State{}
	p.Apply(st, click("course_view", t0))
	book := click("purchase", t0+1)
	book.Properties = map[string]any{"category": "book"}
	p.Apply(st, book)
	course := click("purchase", t0+2)
	course.Properties = map[string]any{"category": "course"}
	got := p.Apply(st, course)
	if len(got) != 1 || got[0].Kind != Converted || st["course"].Conversions != 1 {
		t.Fatalf("got %v", kinds(got))
	}
}

func TestInvalidDefinitionsAreRejected(t *testing.T) {
	for _, d := range []Definition{
		{Name: "", Window: time.Hour, Steps: DefaultDefinitions()[0].Steps},
		{Name: "one", Window: time.Hour, Steps: DefaultDefinitions()[0].Steps[:1]},
		{Name: "nowindow", Steps: DefaultDefinitions()[0].Steps},
	} {
		if _, err := New([]Definition{d}); err == nil {
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
