package segment

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/processors/churn"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/schemas"
)

// t0 is a Monday, 00:00 UTC.
var t0 = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC).UnixMilli()

func at(days float64) int64 { return t0 + int64(days*float64(dayMs)) }

// driver runs funnel, churn and segment on one user as the pipeline does:
// timers due before an event fire before it, in deadline order.
type driver struct {
	t       *testing.T
	procs   []processors.Processor
	users   map[string]*processors.User
	changes []schemas.SegmentChange
	n       int
}

func newDriver(t *testing.T, cfg Config) *driver {
	t.Helper()
	fp, err := funnel.New(funnel.DefaultDefinitions(), 0)
	must(t, err)
	cp, err := churn.New(churn.DefaultConfig())
	must(t, err)
	sp, err := New(cfg)
	must(t, err)
	return &driver{t: t, procs: []processors.Processor{funnel.NewKeyed(fp, schemas.Vocabulary{}), churn.NewKeyed(cp), NewKeyed(sp)}, users: map[string]*processors.User{}}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (d *driver) user(id string) *processors.User {
	if d.users[id] == nil {
		d.users[id] = processors.NewUser(id, d.procs, nil)
	}
	return d.users[id]
}

func (d *driver) nextDue(u *processors.User) int64 {
	var due int64
	for _, p := range d.procs {
		if t, ok := p.(processors.Timed); ok {
			due = earliest(due, t.NextDue(u))
		}
	}
	return due
}

func (d *driver) collect(eff processors.Effects) {
	for _, r := range eff.Records {
		if r.Output == Output {
			d.changes = append(d.changes, *r.Value.(*schemas.SegmentChange))
		}
	}
}

// advance fires every timer of every user due up to limit.
func (d *driver) advance(limit int64) {
	for {
		var who *processors.User
		var due int64
		for _, id := range slices.Sorted(mapsKeys(d.users)) {
			u := d.users[id]
			if t := d.nextDue(u); t > 0 && t <= limit && (who == nil || t < due) {
				who, due = u, t
			}
		}
		if who == nil {
			return
		}
		var all processors.Effects
		for _, p := range d.procs {
			if t, ok := p.(processors.Timed); ok {
				all.Add(t.Fire(who, due, all))
			}
		}
		d.collect(all)
	}
}

func mapsKeys(m map[string]*processors.User) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (d *driver) click(user, typ string, when int64, amount float64, props map[string]any) {
	d.advance(when)
	d.n++
	ev := schemas.ClickEvent{EventID: fmt.Sprintf("e%d", d.n), UserID: user, Type: typ, EventTime: when, Amount: amount, Properties: props}
	if amount > 0 {
		ev.Currency = "EUR"
	}
	u := d.user(user)
	var all processors.Effects
	for _, p := range d.procs {
		all.Add(p.Apply(u, processors.Event{Click: &ev, Role: schemas.Vocabulary{}.RoleOf(typ)}))
	}
	d.collect(all)
}

func (d *driver) segment(user string) string { return d.user(user).Facts().Segment }

// path is a user's changes as "from>to@day(trigger)".
func (d *driver) path(user string) []string {
	var out []string
	for _, c := range d.changes {
		if c.UserID == user {
			day := math.Round(float64(c.EventTime-t0)/float64(dayMs)*1000) / 1000
			out = append(out, fmt.Sprintf("%s>%s@%s(%s)", c.From, c.To, strconv.FormatFloat(day, 'f', -1, 64), c.Trigger))
		}
	}
	return out
}

// PersonaEvent is one click of a persona, Day days after a Monday.
type PersonaEvent struct {
	User, Type string
	Day        float64
	Amount     float64
}

// Personas are the four kinds of customer of the default segments, in
// event-time order: a frequent buyer (buys on days 0, 2 and 4 and keeps
// coming until day 39), a browser who never buys (days 0 to 20), a buyer
// gone quiet (one purchase on day 1) and a newcomer (day 40.5).
func Personas() []PersonaEvent {
	evs := []PersonaEvent{
		{"buyer", schemas.ClickProductView, 0, 0}, {"buyer", schemas.ClickPurchase, 0.01, 30},
		{"buyer", schemas.ClickPurchase, 2, 25}, {"buyer", schemas.ClickPurchase, 4, 40},
		{"quiet", schemas.ClickProductView, 1, 0}, {"quiet", schemas.ClickPurchase, 1.001, 80},
		{"newcomer", schemas.ClickPageView, 40.5, 0},
	}
	for day := 0; day <= 20; day += 2 {
		evs = append(evs, PersonaEvent{"browser", schemas.ClickPageView, float64(day) + 0.02, 0})
	}
	for day := 6; day <= 39; day += 3 {
		evs = append(evs, PersonaEvent{"buyer", schemas.ClickPageView, float64(day), 0})
	}
	slices.SortStableFunc(evs, func(a, b PersonaEvent) int { return cmp.Compare(a.Day, b.Day) })
	return evs
}

// The four personas land in their segments with exactly the expected
// changes, those caused by time alone at the moment the rule flips.
func TestPersonas(t *testing.T) {
	d := newDriver(t, DefaultConfig())
	for _, e := range Personas() {
		d.click(e.User, e.Type, at(e.Day), e.Amount, nil)
	}
	d.advance(at(41))

	want := map[string][]string{
		"buyer":    {">new@0(event)", "new>regular@0.01(event)", "regular>high_value@4(event)"},
		"browser":  {">new@0.02(event)", "new>potential@7.02(time)"},
		"quiet":    {">new@1(event)", "new>regular@1.001(event)", "regular>churned@31.001(time)"},
		"newcomer": {">new@40.5(event)"},
	}
	for user, w := range want {
		if got := d.path(user); !slices.Equal(got, w) {
			t.Errorf("%s: changes %v, want %v", user, got, w)
		}
		if got, last := d.segment(user), w[len(w)-1]; !strings.Contains(last, ">"+got+"@") {
			t.Errorf("%s: in %q, want the last change's segment (%s)", user, got, last)
		}
	}
	if len(d.changes) != 9 {
		t.Errorf("%d changes, want 9", len(d.changes))
	}
	// The messages are valid segments.v1 with the matching rule's
	// conditions as reasons.
	v, err := schemas.NewValidator(0)
	must(t, err)
	for _, c := range d.changes {
		raw, _ := jsonMarshal(c)
		if err := v.Validate(schemas.SegmentsV1, raw); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
		if c.ChangeID != schemas.SegmentChangeID(c.UserID, c.EventTime, c.To) {
			t.Errorf("change id of %+v is not deterministic", c)
		}
	}
	churned := d.changes[slices.IndexFunc(d.changes, func(c schemas.SegmentChange) bool { return c.To == Churned })]
	if len(churned.Reasons) != 2 || churned.Reasons[1].Text != "days_since_last_event 30 >= 30" {
		t.Errorf("churned reasons %+v", churned.Reasons)
	}
}

// The high-value buyer who goes quiet becomes churned exactly 30 days
// after the last click, by a timer the segment processor itself asked for.
func TestTimeAloneMovesAUser(t *testing.T) {
	d := newDriver(t, DefaultConfig())
	for i, day := range []float64{0, 1, 2} {
		d.click("vip", schemas.ClickPurchase, at(day), float64(10+i), nil)
	}
	u := d.user("vip")
	st := u.State("segment").(*State)
	if st.Segment != HighValue || st.Due != at(2)+30*dayMs {
		t.Fatalf("segment %q due %d, want high_value due at day 32", st.Segment, (st.Due-t0)/dayMs)
	}
	d.advance(at(32) - 1)
	if st.Segment != HighValue {
		t.Fatalf("changed early to %s", st.Segment)
	}
	d.advance(at(32))
	if st.Segment != Churned || st.Since != at(32) {
		t.Fatalf("segment %q since %d, want churned at day 32", st.Segment, st.Since)
	}
	// Churned users stay churned until they come back: no timer left
	// but the dormant ones of the high-value rule (purchases within 90
	// days), which change nothing.
	d.advance(at(400))
	if got := d.path("vip"); len(got) != 3 {
		t.Errorf("changes %v", got)
	}
	d.click("vip", schemas.ClickPageView, at(401), 0, nil)
	if st.Segment != Regular {
		t.Errorf("back after a year: %s, want regular", st.Segment)
	}
}

// Rules over properties, abandonments, lifecycle and trend, and a late
// event that does not override a newer property value.
func TestRulesOverOtherFeatures(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rules = []Rule{
		{Segment: "pro_plan", When: []string{"properties.plan = pro"}},
		{Segment: "cart_abandoner", When: []string{"recent_abandonments >= 1"}},
		{Segment: "slowing", When: []string{"activity_trend < 0.5", "events_28d >= 8"}},
		{Segment: "dormant", When: []string{"lifecycle = dormant"}},
	}
	cfg.Fallback = "other"
	d := newDriver(t, cfg)
	d.click("p", schemas.ClickPageView, at(0), 0, map[string]any{"plan": "pro"})
	d.click("p", schemas.ClickPageView, at(0.5), 0, map[string]any{"plan": "free"})
	d.click("p", schemas.ClickPageView, at(0.2), 0, map[string]any{"plan": "pro"}) // late: older than "free"
	if got := d.segment("p"); got != "other" {
		t.Errorf("after plan free (and a late pro): %s, want other", got)
	}
	// An abandoned cart (the default funnel's 30 min window) makes a
	// cart abandoner for recent_window, then the user is other again.
	d.click("a", schemas.ClickProductView, at(0), 0, nil)
	d.click("a", schemas.ClickAddToCart, at(0.001), 0, nil)
	d.advance(at(1))
	if got := d.segment("a"); got != "cart_abandoner" {
		t.Fatalf("after an abandonment: %s, want cart_abandoner (%v)", got, d.path("a"))
	}
	d.advance(at(20))
	if got := d.path("a"); len(got) != 3 || !strings.HasPrefix(got[2], "cart_abandoner>other@15(") {
		t.Errorf("abandoner path %v, want back to other 14 days after the abandonment", got)
	}
	// Busy for two weeks, then one click a week: slowing; then dormant
	// after 30 silent days.
	for day := 100; day < 114; day++ {
		d.click("s", schemas.ClickPageView, at(float64(day)), 0, nil)
	}
	d.click("s", schemas.ClickPageView, at(121), 0, nil)
	d.advance(at(200))
	got := d.path("s")
	wantTail := []string{"other>slowing@", "slowing>other@", "other>dormant@151(time)"}
	if len(got) < 3 {
		t.Fatalf("slowing path %v", got)
	}
	for i, w := range wantTail {
		if g := got[len(got)-3+i]; !strings.HasPrefix(g, w) {
			t.Errorf("slowing path %v, want it to end %v", got, wantTail)
			break
		}
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"purchases >= 3":              "purchases >= 3",
		" spend>100.5 ":               "spend > 100.5",
		"lifecycle == dormant":        `lifecycle = "dormant"`,
		"property.utm_source = 'ads'": `properties.utm_source = "ads"`,
		"properties.tier > 2":         "properties.tier > 2",
	} {
		c, err := Parse(in)
		if err != nil || c.String() != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, c, err, want)
		}
	}
	for in, want := range map[string]error{
		"purchases":                 ErrSyntax,
		"purchases >= lots":         ErrValue,
		"lifecycle > new":           ErrValue,
		"lifecycle = asleep":        ErrValue,
		"properties.plan > pro":     ErrValue,
		"properties. = x":           ErrSyntax,
		"purchases >=":              ErrSyntax,
		"days_since_last_event ~ 3": ErrSyntax,
	} {
		if _, err := Parse(in); !errors.Is(err, want) {
			t.Errorf("Parse(%q): %v, want %v", in, err, want)
		}
	}
	var uf *UnknownFeatureError
	if _, err := Parse("purchaes >= 1"); !errors.As(err, &uf) || uf.Name != "purchaes" {
		t.Errorf("unknown feature: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Rules = append(cfg.Rules, Rule{Segment: "Big Spenders", When: []string{"spend >= x"}})
	cfg.History = 0
	err := cfg.Validate()
	for _, want := range []string{`rules[4].segment: "Big Spenders"`, `rules[4] (Big Spenders).when[0]`, "history: must be between 1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

// The state stays bounded: history and property values are capped.
func TestStateIsBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.History = 3
	cfg.Rules = []Rule{{Segment: "odd", When: []string{"properties.n = 1"}}}
	d := newDriver(t, cfg)
	for i := range 20 {
		d.click("u", schemas.ClickPageView, at(float64(i)), 0, map[string]any{"n": float64(i % 2), "other": "x", "big": strings.Repeat("y", 10000)})
	}
	st := d.user("u").State("segment").(*State)
	if len(st.Recent) != 3 || len(st.Props) != 1 || len(d.changes) != 20 {
		t.Errorf("recent %d, props %v, changes %d", len(st.Recent), st.Props, len(d.changes))
	}
	if v, ok := propertyText(strings.Repeat("é", 100)); !ok || len(v) > maxPropBytes || !utf8.ValidString(v) {
		t.Errorf("a long value is kept as %d bytes (valid UTF-8: %v)", len(v), utf8.ValidString(v))
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// A click that arrives after a time-driven change but before the
// watermark fired its timer publishes the change at its own time first:
// the result does not depend on how far the watermark lags.
func TestClickBeforeTheTimerCatchesUp(t *testing.T) {
	d := newDriver(t, DefaultConfig())
	d.click("q", schemas.ClickPurchase, at(0), 20, nil)
	// No timer fires: the click on day 35 comes first.
	u := d.user("q")
	ev := schemas.ClickEvent{EventID: "late", UserID: "q", Type: schemas.ClickPageView, EventTime: at(35)}
	var all processors.Effects
	for _, p := range d.procs {
		all.Add(p.Apply(u, processors.Event{Click: &ev}))
	}
	d.collect(all)
	want := []string{">regular@0(event)", "regular>churned@30(time)", "churned>regular@35(event)"}
	if got := d.path("q"); !slices.Equal(got, want) {
		t.Errorf("changes %v, want %v", got, want)
	}
}

func TestReasonTextIsWhatFmtPrints(t *testing.T) {
	values := []any{nil, "", "design", "学生", 0.0, -0.0, 1.0, 12.5, 0.07, 1e-5, 1e-4, 123456.0, 1e6, 123456789.0, 1e20, 1e21, -3.25,
		math.Inf(1), math.Inf(-1), math.NaN(), 3, int64(7), true}
	for _, val := range values {
		for _, threshold := range []any{3.0, "checkout_start", 0.5, 1e21} {
			want := fmt.Sprintf("%s %v %s %v", "spend_30d", val, ">=", threshold)
			if got := reasonText("spend_30d", val, ">=", threshold); got != want {
				t.Errorf("reasonText(%#v, %#v) = %q, want %q", val, threshold, got, want)
			}
		}
	}
}
