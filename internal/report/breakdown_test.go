package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/internal/gen"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/report"
	"github.com/cxstream/cxstream/internal/report/reporttest"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/schemas"
)

// segmenter stands in for the segment processor until it lands: "new"
// before a user's first purchase, "buyer" from it, "loyal" from the
// second. It runs before the funnel, so a purchase counts at once.
type segmenter struct{}

type purchases struct{ N int }

func (segmenter) Name() string              { return "segment" }
func (segmenter) Stream() processors.Stream { return processors.Clicks }
func (segmenter) NewState() any             { return &purchases{} }
func (segmenter) Apply(u *processors.User, ev processors.Event) processors.Effects {
	if ev.Click.Type == schemas.ClickPurchase {
		u.State("segment").(*purchases).N++
	}
	return processors.Effects{}
}
func (segmenter) Describe(u *processors.User, f *processors.Facts) {
	f.Segment = segmentOf(u.State("segment").(*purchases).N)
}

func segmentOf(purchases int) string {
	switch purchases {
	case 0:
		return "new"
	case 1:
		return "buyer"
	}
	return "loyal"
}

// The breakdown by segment and by two properties, under both
// attributions, equals a batch computation over the generated events:
// events applied by the funnel processor (with a segment processor
// filling the Facts), state stored in Redis, the report read from it.
func TestBreakdownEqualsBatchOverGeneratedHistory(t *testing.T) {
	r := testenv.StartRedis(t)
	st := state.New(r.Client, state.Options{})
	defs := funnel.DefaultDefinitions()
	defs[0].Window = time.Hour // some attempts run out
	defs[0].Breakdowns = []string{funnel.BySegment, "property.utm_source", "property.topic"}
	fp, err := funnel.New(defs, 5*time.Minute)
	testenv.Must(t, err, "funnel")
	procs := []processors.Processor{segmenter{}, funnel.NewKeyed(fp, schemas.Vocabulary{})}

	g := gen.New(gen.Options{Users: 300, Seed: 11, Properties: true})
	t0 := time.UnixMilli(1_763_900_000_000)
	users := map[string]*processors.User{}
	var batch []reporttest.Event
	bought := map[string]int{}
	for i := range 12000 {
		ev := g.Next(t0.Add(time.Duration(i) * 3 * time.Second))
		if ev.Kind != gen.Click {
			continue
		}
		var c schemas.ClickEvent
		testenv.Must(t, json.Unmarshal(ev.Value, &c), "event")
		u := users[c.UserID]
		if u == nil {
			u = processors.NewUser(c.UserID, procs, nil)
			users[c.UserID] = u
		}
		for _, p := range procs {
			p.Apply(u, processors.Event{Click: &c})
		}
		// The batch's own reading of the same event.
		if c.Type == schemas.ClickPurchase {
			bought[c.UserID]++
		}
		values := map[string]string{funnel.BySegment: segmentOf(bought[c.UserID])}
		for k, v := range c.Properties {
			values["property."+k] = v.(string)
		}
		batch = append(batch, reporttest.Event{User: c.UserID, ID: c.EventID, At: c.EventTime, Type: c.Type, Values: values})
	}
	var writes []state.Write
	for id, u := range users {
		data, err := json.Marshal(pipeline.ClickDoc{Funnel: *u.State("funnel").(*funnel.State)})
		testenv.Must(t, err, "encode")
		writes = append(writes, state.Write{User: id, Side: state.Click, Data: data})
	}
	testenv.Must(t, st.Save(context.Background(), writes), "save")

	ref := reporttest.Funnel{Window: time.Hour}
	for _, s := range defs[0].Steps {
		ref.Steps = append(ref.Steps, s.Events)
	}
	for _, by := range defs[0].Breakdowns {
		for _, attr := range []funnel.Attribution{funnel.FirstTouch, funnel.LastTouch} {
			stats, err := report.FunnelBreakdowns(context.Background(), st, fp, by, attr)
			testenv.Must(t, err, "breakdown")
			want := reporttest.Breakdown(ref, batch, by, string(attr))
			reporttest.Compare(t, stats[0], want)
			if len(want) < 3 {
				t.Errorf("by %s: only %d groups; the history should have more", by, len(want))
			}
		}
	}
	// The attributions differ on this history (else the test would not
	// tell them apart).
	first, _ := report.FunnelBreakdowns(context.Background(), st, fp, funnel.BySegment, funnel.FirstTouch)
	last, _ := report.FunnelBreakdowns(context.Background(), st, fp, funnel.BySegment, funnel.LastTouch)
	if fmt.Sprint(first[0].Groups) == fmt.Sprint(last[0].Groups) {
		t.Errorf("first and last touch agree: %+v", first[0].Groups)
	}
	var out bytes.Buffer
	report.PrintBreakdowns(&out, last)
	t.Logf("\n%s", out.String())
}

func TestPrintAndJSON(t *testing.T) {
	stats := []report.BreakdownStats{
		{Funnel: "purchase", Steps: []string{"view", "cart"}, By: "property.utm_source", Attribution: funnel.LastTouch, Tracked: true,
			Breakdowns: []string{"segment", "property.utm_source"}, Attempts: 12, Grouped: 10,
			Groups: []report.GroupStats{
				{Value: "google", Attempts: 8, Reached: []int{8, 2}, Conversions: 2, MeanConvert: 90 * time.Second, MedianConvert: time.Minute, P90Convert: 2 * time.Minute, MedianOf: 2},
				{Value: funnel.NoValue, Attempts: 2, Reached: []int{2, 0}, Open: 1},
			}},
		{Funnel: "course", Steps: []string{"view", "buy"}, By: "property.utm_source", Attribution: funnel.LastTouch, Breakdowns: []string{"segment"}},
	}
	var out bytes.Buffer
	report.PrintBreakdowns(&out, stats)
	for _, want := range []string{
		`funnel "purchase" by property.utm_source, last touch: 10 attempts in 2 groups`,
		"(2 more attempts ended before the funnel kept this breakdown and are not grouped)",
		"  group  attempts    view    cart conversions    median       p90\n",
		"  google        8  100.0%   25.0%           2      1m0s      2m0s\n",
		"  (none)        2  100.0%    0.0%           0         -         -\n",
		`funnel "course" is not broken down by property.utm_source (its breakdowns: segment)`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	testenv.Must(t, report.WriteBreakdownsJSON(&out, stats), "json")
	var back []struct {
		Funnel string `json:"funnel"`
		Groups []struct {
			Value    string `json:"value"`
			Reached  []int  `json:"reached"`
			MedianMs *int64 `json:"median_convert_ms"`
			P90Ms    *int64 `json:"p90_convert_ms"`
		} `json:"groups"`
	}
	testenv.Must(t, json.Unmarshal(out.Bytes(), &back), "decode")
	if len(back) != 2 || back[0].Groups[0].Value != "google" || *back[0].Groups[0].MedianMs != 60000 || *back[0].Groups[0].P90Ms != 120000 ||
		back[0].Groups[1].MedianMs != nil || len(back[1].Groups) != 0 {
		t.Errorf("json: %s", out.String())
	}
}

func TestUntrackedBreakdownNamesWhatIsTracked(t *testing.T) {
	defs := []funnel.Definition{funnel.DefaultDefinitions()[0], {Name: "signup", Steps: []funnel.Step{{Name: "a", Events: []string{"page_view"}}, {Name: "b", Events: []string{"signup"}}}, Window: time.Hour}}
	defs[0].Breakdowns = []string{"segment", "property.utm_source"}
	fp, err := funnel.New(defs, 0)
	testenv.Must(t, err, "funnel")
	err = report.CheckBreakdown(fp, "property.category")
	if !errors.Is(err, report.ErrUntracked) || !strings.Contains(err.Error(), `no funnel breaks down by "property.category"; tracked: purchase: segment, property.utm_source; signup: none`) {
		t.Errorf("got %v", err)
	}
	if err := report.CheckBreakdown(fp, "property.utm_source"); err != nil {
		t.Errorf("tracked: %v", err)
	}
	if err := report.CheckBreakdown(fp, "utm_source"); !errors.Is(err, funnel.ErrBreakdown) {
		t.Errorf("malformed: %v", err)
	}
}
