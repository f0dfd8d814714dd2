package gen

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/cxstream/cxstream/schemas"
)

// A year of history: every event valid and inside the year, in time
// order overall and per user, spread over the whole year, each user's
// funnel walked forwards, and the same seed gives the same bytes.
func TestHistoryIsAYearInTimeOrder(t *testing.T) {
	until := time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)
	span := 365 * 24 * time.Hour
	events := New(Options{Users: 150, Seed: 3}).History(3000, span, until)
	if len(events) != 3000 {
		t.Fatalf("%d events, want 3000", len(events))
	}
	v, err := schemas.NewValidator(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	from := until.Add(-span).UnixMilli()
	lastOf := map[string]int64{}
	stepOf := map[string]int{}
	months := map[time.Month]bool{}
	kinds := map[Kind]int{}
	for i, ev := range events {
		kinds[ev.Kind]++
		var at int64
		if ev.Kind == Click {
			c, err := v.DecodeClick(ev.Value)
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			at = c.EventTime
			// The funnel script restarts only at a page view of "/".
			if k := slices.Index(funnelScript, c.Type); k >= 0 && c.ItemID != "" {
				if k != stepOf[ev.Key] {
					t.Fatalf("%s: %s at step %d of the script", ev.Key, c.Type, stepOf[ev.Key])
				}
				stepOf[ev.Key] = k + 1
			} else if c.Page == "/" {
				stepOf[ev.Key] = 0
			}
		} else {
			m, err := v.DecodeChat(ev.Value)
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
			at = m.EventTime
		}
		if at != ev.Time || at <= from || at > until.UnixMilli() {
			t.Fatalf("event %d at %d (Time %d), outside (%d, %d]", i, at, ev.Time, from, until.UnixMilli())
		}
		if i > 0 && at < events[i-1].Time {
			t.Fatalf("event %d at %d before its predecessor at %d", i, at, events[i-1].Time)
		}
		if at < lastOf[ev.Key] {
			t.Fatalf("%s goes back in time", ev.Key)
		}
		lastOf[ev.Key] = at
		months[time.UnixMilli(at).UTC().Month()] = true
	}
	if len(months) != 12 || len(lastOf) < 140 || kinds[Chat] == 0 || kinds[Click] == 0 {
		t.Errorf("%d months, %d users, kinds %v: not a year of mixed traffic", len(months), len(lastOf), kinds)
	}
	again := New(Options{Users: 150, Seed: 3}).History(3000, span, until)
	for i := range events {
		if !bytes.Equal(events[i].Value, again[i].Value) || events[i].Key != again[i].Key {
			t.Fatalf("seed 3 twice: event %d differs", i)
		}
	}
	for _, ev := range New(Options{Users: 150, Seed: 3, ChatShare: -1}).History(3000, span, until) {
		if ev.Kind != Click {
			t.Fatal("ChatShare -1 gave a chat message")
		}
	}
	other := New(Options{Users: 150, Seed: 4}).History(3000, span, until)
	if bytes.Equal(events[0].Value, other[0].Value) {
		t.Error("seeds 3 and 4 gave the same first event")
	}
}
