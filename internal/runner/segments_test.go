package runner

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/report"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

// personas are the four kinds of customer the default segments tell
// apart, as clicks Day days after t0: a frequent buyer (buys on days 0, 2
// and 4, comes back until day 39), a browser who never buys (days 0 to
// 20), a buyer gone quiet (one purchase on day 1) and a newcomer (day
// 40.5). In event-time order.
func personas(t0 int64) []*kgo.Record {
	type ev struct {
		user, typ string
		day       float64
		amount    float64
	}
	evs := []ev{
		{"buyer", schemas.ClickProductView, 0, 0}, {"buyer", schemas.ClickPurchase, 0.01, 30},
		{"buyer", schemas.ClickPurchase, 2, 25}, {"buyer", schemas.ClickPurchase, 4, 40},
		{"quiet", schemas.ClickProductView, 1, 0}, {"quiet", schemas.ClickPurchase, 1.001, 80},
		{"newcomer", schemas.ClickPageView, 40.5, 0},
	}
	for day := 0; day <= 20; day += 2 {
		evs = append(evs, ev{"browser", schemas.ClickPageView, float64(day) + 0.02, 0})
	}
	for day := 6; day <= 39; day += 3 {
		evs = append(evs, ev{"buyer", schemas.ClickPageView, float64(day), 0})
	}
	slices.SortStableFunc(evs, func(a, b ev) int { return cmp.Compare(a.day, b.day) })
	recs := make([]*kgo.Record, len(evs))
	for i, e := range evs {
		recs[i] = click(e.user, fmt.Sprintf("%s-%d", e.user, i), e.typ, t0+int64(math.Round(e.day*float64(segDay))), e.amount)
	}
	return recs
}

const segDay = int64(24 * time.Hour / time.Millisecond)

// segmentChanges reads a segments topic as "user: from>to@day(trigger)",
// checking every message against segments.v1 and its deterministic id.
func segmentChanges(t *testing.T, brokers []string, topic string, want int, t0 int64) []string {
	t.Helper()
	v, err := schemas.NewValidator(0)
	testenv.Must(t, err, "validator")
	var out []string
	for _, r := range readTopic(t, brokers, topic, want) {
		testenv.Must(t, v.Validate(schemas.SegmentsV1, r.Value), "segments.v1")
		var c schemas.SegmentChange
		testenv.Must(t, json.Unmarshal(r.Value, &c), "decode")
		if string(r.Key) != c.UserID || c.ChangeID != schemas.SegmentChangeID(c.UserID, c.EventTime, c.To) {
			t.Errorf("key %q or id of %+v", r.Key, c)
		}
		out = append(out, fmt.Sprintf("%s: %s>%s@%g(%s)", c.UserID, c.From, c.To, math.Round(float64(c.EventTime-t0)/float64(segDay)*1000)/1000, c.Trigger))
	}
	return out
}

// The personas land in their segments and exactly the expected changes
// are published, the same ones whether the clicks arrive live (one at a
// time, each processed before the next is sent) or as a backfill (all
// of them waiting before the processor starts).
func TestPersonasGetTheirSegmentsLiveAndAsABackfill(t *testing.T) {
	// One partition: every persona's clicks move the same watermark, so
	// the quiet buyer's timer fires as the others go on.
	k := testenv.StartKafka(t, 1, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "segments-live", "segments-backfill")
	e := env{kafka: k, redis: testenv.StartRedis(t)}
	t0 := (time.Now().Add(-45*24*time.Hour).UnixMilli() / segDay) * segDay
	recs := personas(t0)
	want := []string{
		"buyer: >new@0(event)", "buyer: new>regular@0.01(event)", "buyer: regular>high_value@4(event)",
		"browser: >new@0.02(event)", "browser: new>potential@7.02(time)",
		"quiet: >new@1(event)", "quiet: new>regular@1.001(event)", "quiet: regular>churned@31.001(time)",
		"newcomer: >new@40.5(event)",
	}
	slices.Sort(want)
	run := func(name string, live bool) ([]string, map[string]int) {
		cfg := e.config(name, name)
		cfg.Topics.Segments = "segments-" + name
		cfg.Processing.IdleAdvance = 0 // event time only: the wall clock must not matter
		cfg.HTTP.Addr = ""
		if live {
			r := start(t, cfg)
			for i, rec := range recs {
				produce(t, e.kafka.Brokers, rec)
				testenv.Eventually(t, 30*time.Second, fmt.Sprintf("click %d processed", i), func() bool { return r.handled() >= float64(i+1) })
			}
			r.stop(t)
			if n := r.Metrics.Sum("cx_segment_changes_total", nil); n != float64(len(want)) {
				t.Errorf("%s: cx_segment_changes_total %v, want %d", name, n, len(want))
			}
		} else {
			r := start(t, cfg)
			testenv.Eventually(t, 60*time.Second, "backfill processed", func() bool { return r.handled() >= float64(len(recs)) })
			r.stop(t)
		}
		got := segmentChanges(t, e.kafka.Brokers, cfg.Topics.Segments, len(want), t0)
		stats, err := report.Segments(t.Context(), state.New(e.redis.Client, state.Options{Prefix: name}), cfg.Segments.Names(), cfg.Segments.History, 0)
		testenv.Must(t, err, "report")
		return got, stats.Users
	}
	live, liveUsers := run("live", true)
	backfill, backfillUsers := run("backfill", false)
	sorted := slices.Sorted(slices.Values(live))
	if !slices.Equal(sorted, want) {
		t.Errorf("live changes:\n  %s\nwant:\n  %s", strings.Join(sorted, "\n  "), strings.Join(want, "\n  "))
	}
	if !slices.Equal(live, backfill) {
		t.Errorf("backfill changes differ from live ones:\n  %s\nlive:\n  %s", strings.Join(backfill, "\n  "), strings.Join(live, "\n  "))
	}
	wantUsers := map[string]int{"high_value": 1, "potential": 1, "churned": 1, "new": 1}
	if !maps.Equal(liveUsers, wantUsers) || !maps.Equal(backfillUsers, wantUsers) {
		t.Errorf("users per segment: live %v, backfill %v, want %v", liveUsers, backfillUsers, wantUsers)
	}
}
