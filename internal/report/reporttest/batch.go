// Package reporttest computes funnel breakdowns in batch, from the events
// themselves, for tests of `cxstream funnel --by`: it shares no code with
// the funnel processor, so a test comparing the two checks the streaming
// state against a second, plain reading of the funnel rules.
package reporttest

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/internal/report"
)

// Funnel is an ordered funnel: Steps[i] lists the event types of step i;
// an attempt opens on step 0 and has Window to reach the last step.
type Funnel struct {
	Steps  [][]string
	Window time.Duration
}

// Event is one click as the batch sees it: Values are its group values by
// breakdown name ("segment", "property.utm_source"); a missing or empty
// value is no value.
type Event struct {
	User, ID string
	At       int64
	Type     string
	Values   map[string]string
}

// Figures are one group's attempts, ended or open.
type Figures struct {
	Attempts, Conversions int
	Reached               []int
	Took                  []int64
}

// Breakdown groups every attempt of every user by the value of the
// breakdown at entry (attribution "first") or at the last step reached
// ("last"). Each user's events are taken in event-time order, a repeated
// event id once.
func Breakdown(f Funnel, events []Event, breakdown, attribution string) map[string]*Figures {
	byUser := map[string][]Event{}
	for _, e := range events {
		byUser[e.User] = append(byUser[e.User], e)
	}
	out := map[string]*Figures{}
	is := func(step int, e Event) bool { return slices.Contains(f.Steps[step], e.Type) }
	for _, evs := range byUser {
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].At < evs[j].At })
		seen := map[string]bool{}
		open := false
		var entered int64
		var reached int // index of the furthest step reached
		var first, last string
		finish := func(converted bool, took int64) {
			v := first
			if attribution == "last" {
				v = last
			}
			if v == "" {
				v = "(none)"
			}
			g := out[v]
			if g == nil {
				g = &Figures{Reached: make([]int, len(f.Steps))}
				out[v] = g
			}
			g.Attempts++
			for i := 0; i <= reached; i++ {
				g.Reached[i]++
			}
			if converted {
				g.Conversions++
				g.Took = append(g.Took, took)
			}
			open = false
		}
		for _, e := range evs {
			if seen[e.ID] {
				continue
			}
			seen[e.ID] = true
			if open && e.At >= entered+f.Window.Milliseconds() {
				finish(false, 0)
			}
			switch {
			case !open && is(0, e):
				open, entered, reached = true, e.At, 0
				first, last = e.Values[breakdown], e.Values[breakdown]
			case open && is(reached+1, e):
				reached++
				last = e.Values[breakdown]
				if reached == len(f.Steps)-1 {
					finish(true, e.At-entered)
				}
			}
		}
		if open {
			finish(false, 0) // still open (or its window ran out with no event): counted as it stands
		}
	}
	return out
}

// Compare fails t unless the report's groups of one funnel are the batch
// figures: attempts, reach per step, conversions, and the mean, median
// and 90th percentile (nearest rank) time to convert.
func Compare(t testing.TB, got report.BreakdownStats, want map[string]*Figures) {
	t.Helper()
	name := fmt.Sprintf("funnel %q by %s, %s touch", got.Funnel, got.By, got.Attribution)
	if got.Attempts != got.Grouped {
		t.Errorf("%s: %d attempts, only %d grouped", name, got.Attempts, got.Grouped)
	}
	gotLines, wantLines := []string{}, []string{}
	for _, g := range got.Groups {
		gotLines = append(gotLines, fmt.Sprintf("%s: attempts %d reached %v conversions %d mean %s median %s p90 %s",
			g.Value, g.Attempts, g.Reached, g.Conversions, g.MeanConvert, g.MedianConvert, g.P90Convert))
	}
	for v, f := range want {
		var mean, med, p90 time.Duration
		if n := len(f.Took); n > 0 {
			took := slices.Clone(f.Took)
			slices.Sort(took)
			var sum int64
			for _, ms := range took {
				sum += ms
			}
			mean = time.Duration(sum/int64(n)) * time.Millisecond
			med = time.Duration(took[n/2]) * time.Millisecond
			if n%2 == 0 {
				med = time.Duration((took[n/2-1]+took[n/2])/2) * time.Millisecond
			}
			rank := 1
			for rank*10 < 9*n { // the smallest rank covering 90%
				rank++
			}
			p90 = time.Duration(took[rank-1]) * time.Millisecond
		}
		wantLines = append(wantLines, fmt.Sprintf("%s: attempts %d reached %v conversions %d mean %s median %s p90 %s",
			v, f.Attempts, f.Reached, f.Conversions, mean, med, p90))
	}
	sort.Strings(gotLines)
	sort.Strings(wantLines)
	if strings.Join(gotLines, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("%s:\n got:\n  %s\n want (batch):\n  %s", name, strings.Join(gotLines, "\n  "), strings.Join(wantLines, "\n  "))
	}
}
