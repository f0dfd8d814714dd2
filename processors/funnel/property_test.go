package funnel

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/cxstream/cxstream/schemas"
)

// refEvent is an event as the batch reference sees it.
type refEvent struct {
	id      string
	at      int64
	typ     string
	session string
	// src is the event's property "src" ("": none), a breakdown.
	src string
}

// refGroup is one group's ended attempts in the batch reference.
type refGroup struct {
	attempts, conversions int
	reached               []int
	tookMs                int64
}

// reference is the obviously-correct batch version of the funnel rules
// (README): sort by event time, drop repeated event ids, walk once.
// groups holds the ended attempts by the value of src at entry
// (groups[FirstTouch]) and at the last step reached (groups[LastTouch]).
func reference(d Definition, events []refEvent, end int64) (conversions, abandonments int, reached []int, groups map[Attribution]map[string]*refGroup) {
	evs := slices.Clone(events)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	seen := map[string]bool{}
	reached = make([]int, len(d.Steps))
	window := d.Window.Milliseconds()
	is := func(s Step, e refEvent) bool { return slices.Contains(s.Events, e.typ) }
	excluded := func(e refEvent) bool {
		for _, x := range d.Exclusions {
			if is(x, e) {
				return true
			}
		}
		return false
	}
	open, entered, hold := false, int64(0), ""
	done := map[int]bool{}
	last := 0
	groups = map[Attribution]map[string]*refGroup{FirstTouch: {}, LastTouch: {}}
	firstSrc, lastSrc := "", ""
	ended := func(converted bool, took int64) {
		for attr, v := range map[Attribution]string{FirstTouch: firstSrc, LastTouch: lastSrc} {
			if v == "" {
				v = "(none)"
			}
			g := groups[attr][v]
			if g == nil {
				g = &refGroup{reached: make([]int, len(d.Steps))}
				groups[attr][v] = g
			}
			g.attempts++
			for i := range done {
				g.reached[i]++
			}
			if converted {
				g.conversions++
				g.tookMs += took
			}
		}
	}
	for _, e := range evs {
		if seen[e.id] {
			continue
		}
		seen[e.id] = true
		if open && e.at >= entered+window {
			open = false
			abandonments++
			ended(false, 0)
		}
		if open {
			switch {
			case excluded(e):
				open = false
				abandonments++
				ended(false, 0)
			case d.HoldConstant != "" && e.session != hold:
				continue
			case d.Order == Strict && !is(d.Steps[last+1], e) && !is(d.Steps[last], e):
				open = false
				abandonments++
				ended(false, 0)
			}
		}
		if !open {
			if is(d.Steps[0], e) {
				open, entered, hold, last = true, e.at, e.session, 0
				firstSrc, lastSrc = e.src, e.src
				done = map[int]bool{0: true}
				reached[0]++
			}
			continue
		}
		next := -1
		for i := 1; i < len(d.Steps); i++ {
			if d.Order == Any && !done[i] && is(d.Steps[i], e) {
				next = i
				break
			}
		}
		if d.Order != Any && is(d.Steps[last+1], e) {
			next = last + 1
		}
		if next < 0 {
			continue
		}
		done[next] = true
		lastSrc = e.src
		reached[next]++
		last = next
		if d.Order == Any {
			last = len(done) - 1
		}
		if len(done) == len(d.Steps) {
			conversions++
			open = false
			ended(true, e.at-entered)
		}
	}
	if open && end >= entered+window {
		abandonments++
		ended(false, 0)
	}
	return conversions, abandonments, reached, groups
}

// The streaming processor, fed events out of order (within the allowed
// lateness) and with duplicates, ends where the batch reference does.
func TestStreamingMatchesBatchReference(t *testing.T) {
	const sequences = 3000
	lateness := 5 * time.Minute
	rng := rand.New(rand.NewPCG(42, 7))
	types := []string{"product_view", "add_to_cart", "checkout_start", "purchase", "search", "remove_from_cart"}
	steps := []Step{
		{Name: "view", Events: []string{"product_view"}},
		{Name: "cart", Events: []string{"add_to_cart"}},
		{Name: "checkout", Events: []string{"checkout_start"}},
		{Name: "purchase", Events: []string{"purchase"}},
	}
	events, dups, late, differ := 0, 0, 0, 0
	srcs := []string{"", "ads", "mail", "social"}
	for seq := range sequences {
		d := Definition{Name: "f", Steps: steps[:2+rng.IntN(3)], Window: time.Duration(5+rng.IntN(60)) * time.Minute, Breakdowns: []string{"property.src"}}
		d.Order = []Order{Ordered, Strict, Any}[rng.IntN(3)]
		if rng.IntN(3) == 0 {
			d.Exclusions = []Step{{Name: "removed", Events: []string{"remove_from_cart"}}}
		}
		if rng.IntN(3) == 0 {
			d.HoldConstant = "session_id"
		}
		p, err := New([]Definition{d}, lateness)
		if err != nil {
			t.Fatal(err)
		}
		// Event times: a random walk with gaps from seconds to an hour.
		n := 5 + rng.IntN(40)
		var evs []refEvent
		at := t0
		for i := range n {
			at += int64(rng.IntN(20*60_000)) + 1
			evs = append(evs, refEvent{id: fmt.Sprintf("e%d", i), at: at, typ: types[rng.IntN(len(types))], session: fmt.Sprintf("s%d", rng.IntN(2)), src: srcs[rng.IntN(len(srcs))]})
		}
		// Arrival: each event delayed by up to half the lateness, and
		// some sent twice.
		type arrival struct {
			e     refEvent
			when  int64
			order int
		}
		var arrivals []arrival
		for i, e := range evs {
			arrivals = append(arrivals, arrival{e, e.at + int64(rng.IntN(int(lateness.Milliseconds()/2))), i})
			if rng.IntN(8) == 0 {
				arrivals = append(arrivals, arrival{e, e.at + int64(rng.IntN(int(lateness.Milliseconds()/2))), i})
				dups++
			}
		}
		sort.SliceStable(arrivals, func(i, j int) bool { return arrivals[i].when < arrivals[j].when })
		st := State{}
		var latest int64
		for _, a := range arrivals {
			if a.e.at < latest {
				late++
			}
			latest = max(latest, a.e.at)
			ev := schemas.ClickEvent{EventID: a.e.id, UserID: "u", Type: a.e.typ, SessionID: a.e.session, EventTime: a.e.at}
			if a.e.src != "" {
				ev.Properties = map[string]any{"src": a.e.src}
			}
			p.Apply(st, ev)
			events++
		}
		end := latest + 48*3600*1000
		p.Expire(st, end)
		wantConv, wantAband, wantReached, wantGroups := reference(d, evs, end)
		var got Attempt
		if pr := st["f"]; pr != nil {
			got = p.View(&p.defs[0], pr)
		}
		if got.Reached == nil {
			got.Reached = make([]int, len(d.Steps))
		}
		var byHour HourCounts
		for _, c := range got.ByHour {
			byHour.Entries += c.Entries
			byHour.Conversions += c.Conversions
			byHour.Abandonments += c.Abandonments
		}
		if byHour.Entries != wantReached[0] || byHour.Conversions != wantConv || byHour.Abandonments != wantAband {
			t.Fatalf("sequence %d: hourly counts %+v do not add up to entries %d, conversions %d, drop-offs %d", seq, byHour, wantReached[0], wantConv, wantAband)
		}
		if got.Conversions != wantConv || got.Abandonments != wantAband || !slices.Equal(got.Reached, wantReached) {
			t.Fatalf("sequence %d (%s, order %s, exclusions %d, hold %q): got conversions %d abandonments %d reached %v, want %d %d %v\nevents %+v",
				seq, d.Window, d.Order, len(d.Exclusions), d.HoldConstant, got.Conversions, got.Abandonments, got.Reached, wantConv, wantAband, wantReached, evs)
		}
		// Every attempt has ended (the Expire above): the tallies per
		// group are the reference's, under both attributions.
		for _, attr := range []Attribution{FirstTouch, LastTouch} {
			gotGroups := map[string]*refGroup{}
			if tl := got.Groups["property.src"]; tl != nil {
				counts := tl.First
				if attr == LastTouch {
					counts = tl.Last
				}
				for v, c := range counts {
					gotGroups[v] = &refGroup{attempts: c.Attempts, conversions: c.Conversions, reached: c.Reached, tookMs: c.TotalMs}
				}
			}
			if fmt.Sprint(deref(gotGroups)) != fmt.Sprint(deref(wantGroups[attr])) {
				t.Fatalf("sequence %d (%s, order %s, exclusions %d, hold %q), %s touch: groups %v, want %v\nevents %+v",
					seq, d.Window, d.Order, len(d.Exclusions), d.HoldConstant, attr, deref(gotGroups), deref(wantGroups[attr]), evs)
			}
		}
		if fmt.Sprint(deref(wantGroups[FirstTouch])) != fmt.Sprint(deref(wantGroups[LastTouch])) {
			differ++
		}
	}
	t.Logf("%d sequences, %d events applied (%d duplicates, %d out of order), %d sequences whose first- and last-touch groups differ", sequences, events, dups, late, differ)
}

// deref makes groups printable, sorted by value (fmt sorts map keys).
func deref(groups map[string]*refGroup) map[string]refGroup {
	out := map[string]refGroup{}
	for v, g := range groups {
		out[v] = *g
	}
	return out
}
