// Package report computes reports over all users' stored state: funnel
// conversion per step. Reading the state (exactly-once by construction)
// rather than separate counters means a crash can never skew a report.
package report

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors/funnel"
)

// FunnelStats are one funnel's totals across users.
type FunnelStats struct {
	Name string
	// Steps names the steps; Reached[i] counts attempts that reached step i.
	Steps        []string
	Reached      []int
	Conversions  int
	Abandonments int
	// InProgress counts users with an open attempt, by furthest step.
	InProgress []int
	// ByHour sums entries, conversions and drop-offs per hour (hours since
	// the epoch) over the users' recent history.
	ByHour map[int64]*funnel.HourCounts
	// MeanConvert is over every conversion; MedianConvert over the
	// MedianOf most recent ones per user (all of them unless a user
	// converted more often than a user's state remembers durations).
	MeanConvert, MedianConvert time.Duration
	MedianOf                   int
	// ConvertHistogram counts the users' recent times to convert in
	// ConvertBuckets (the last bucket is open-ended).
	ConvertHistogram []int
	Users            int
}

// ConvertBuckets are the upper bounds of the time-to-convert histogram;
// a last, open bucket holds longer ones.
var ConvertBuckets = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 4 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// Funnels scans every user's clickstream document.
func Funnels(ctx context.Context, st *state.Store, p *funnel.Processor) ([]FunnelStats, error) {
	defs := p.Definitions()
	stats := make([]FunnelStats, len(defs))
	durations := make([][]int64, len(defs))
	totals := make([]int64, len(defs))
	for i, d := range defs {
		stats[i] = FunnelStats{Name: d.Name, Reached: make([]int, len(d.Steps)), InProgress: make([]int, len(d.Steps)), ByHour: map[int64]*funnel.HourCounts{}}
		for _, s := range d.Steps {
			stats[i].Steps = append(stats[i].Steps, s.Name)
		}
	}
	err := st.Scan(ctx, state.Click, func(_ string, data []byte) error {
		doc, err := pipeline.DecodeClick(data)
		if err != nil {
			return fmt.Errorf("decode state: %w", err)
		}
		for i := range defs {
			pr := doc.Funnel[defs[i].Name]
			if pr == nil {
				continue
			}
			a := p.View(&defs[i], pr)
			s := &stats[i]
			s.Users++
			for j, n := range a.Reached {
				if j < len(s.Reached) {
					s.Reached[j] += n
				}
			}
			s.Conversions += a.Conversions
			s.Abandonments += a.Abandonments
			if a.Step >= 0 && a.Step < len(s.InProgress) {
				s.InProgress[a.Step]++
			}
			for h, c := range a.ByHour {
				sum := s.ByHour[h]
				if sum == nil {
					sum = &funnel.HourCounts{}
					s.ByHour[h] = sum
				}
				sum.Entries += c.Entries
				sum.Conversions += c.Conversions
				sum.Abandonments += c.Abandonments
			}
			cs := p.ConvertStats(&defs[i], pr)
			totals[i] += cs.TotalMs
			durations[i] = append(durations[i], cs.Last...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range stats {
		if c := stats[i].Conversions; c > 0 {
			stats[i].MeanConvert = time.Duration(totals[i]/int64(c)) * time.Millisecond
		}
		stats[i].ConvertHistogram = make([]int, len(ConvertBuckets)+1)
		for _, ms := range durations[i] {
			b := sort.Search(len(ConvertBuckets), func(k int) bool { return time.Duration(ms)*time.Millisecond <= ConvertBuckets[k] })
			stats[i].ConvertHistogram[b]++
		}
		if n := len(durations[i]); n > 0 {
			slices.Sort(durations[i])
			stats[i].MedianConvert = time.Duration(median(durations[i])) * time.Millisecond
			stats[i].MedianOf = n
		}
	}
	return stats, nil
}

// median of sorted values: the middle one, or the mean of the two middle
// ones, as a batch computation would give it.
func median(sorted []int64) int64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// convertLine says what the time-to-convert figures rest on.
func convertLine(s FunnelStats) string {
	if s.Conversions == 0 {
		return "time to convert n/a (no conversions)"
	}
	line := fmt.Sprintf("time to convert over %s: mean %s, median %s", plural(s.Conversions, "conversion"), s.MeanConvert.Round(time.Second), s.MedianConvert.Round(time.Second))
	if s.MedianOf < s.Conversions {
		line += fmt.Sprintf(" (median over the latest %d)", s.MedianOf)
	}
	return line
}

// plural writes "1 conversion", "2 conversions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Print writes the report as a table.
func Print(w io.Writer, stats []FunnelStats) {
	for _, s := range stats {
		fmt.Fprintf(w, "funnel %q: %s, %s, %s; %s\n",
			s.Name, plural(s.Users, "user"), plural(s.Conversions, "conversion"), plural(s.Abandonments, "drop-off"), convertLine(s))
		fmt.Fprintf(w, "  %-3s %-14s %9s %9s %9s %9s\n", "#", "step", "reached", "of entry", "of prev", "here now")
		for j, name := range s.Steps {
			ofEntry, ofPrev := pct(s.Reached[j], s.Reached[0]), 100.0
			if j > 0 {
				ofPrev = pct(s.Reached[j], s.Reached[j-1])
			}
			fmt.Fprintf(w, "  %-3d %-14s %9d %8.1f%% %8.1f%% %9d\n", j+1, name, s.Reached[j], ofEntry, ofPrev, s.InProgress[j])
		}
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// PrintByHour writes entries, conversions and drop-offs per hour, the
// latest hours last.
func PrintByHour(w io.Writer, stats []FunnelStats, hours int) {
	for _, s := range stats {
		fmt.Fprintf(w, "funnel %q by hour (UTC):\n  %-17s %8s %11s %9s\n", s.Name, "hour", "entries", "conversions", "drop-offs")
		keys := lastHours(s.ByHour, hours)
		for _, h := range keys {
			c := s.ByHour[h]
			fmt.Fprintf(w, "  %-17s %8d %11d %9d\n", time.UnixMilli(h*int64(time.Hour/time.Millisecond)).UTC().Format("2006-01-02 15:00"), c.Entries, c.Conversions, c.Abandonments)
		}
	}
}

// FunnelJSON is one funnel's report as `cxstream funnel --json` prints it.
type FunnelJSON struct {
	Funnel       string          `json:"funnel"`
	Users        int             `json:"users"`
	Conversions  int             `json:"conversions"`
	Abandonments int             `json:"abandonments"`
	Steps        []StepJSON      `json:"steps"`
	MeanConvert  *int64          `json:"mean_convert_ms,omitempty"`
	MedianOf     int             `json:"median_of"`
	Median       *int64          `json:"median_convert_ms,omitempty"`
	ByHour       []HourCountJSON `json:"by_hour,omitempty"`
}

// StepJSON is one step: attempts that reached it, users there now.
type StepJSON struct {
	Name       string `json:"name"`
	Reached    int    `json:"reached"`
	InProgress int    `json:"in_progress"`
}

// HourCountJSON is one hour (its start, ms since the epoch).
type HourCountJSON struct {
	Hour         int64 `json:"hour"`
	Entries      int   `json:"entries"`
	Conversions  int   `json:"conversions"`
	Abandonments int   `json:"abandonments"`
}

// FunnelsJSON is the report as JSON, with the last hours (0: none) per
// hour.
func FunnelsJSON(stats []FunnelStats, hours int) []FunnelJSON {
	out := make([]FunnelJSON, len(stats))
	for i, s := range stats {
		f := FunnelJSON{Funnel: s.Name, Users: s.Users, Conversions: s.Conversions, Abandonments: s.Abandonments, MedianOf: s.MedianOf}
		for j, name := range s.Steps {
			f.Steps = append(f.Steps, StepJSON{Name: name, Reached: s.Reached[j], InProgress: s.InProgress[j]})
		}
		if s.Conversions > 0 {
			f.MeanConvert = ptr(s.MeanConvert.Milliseconds())
		}
		if s.MedianOf > 0 {
			f.Median = ptr(s.MedianConvert.Milliseconds())
		}
		keys := lastHours(s.ByHour, hours)
		for _, h := range keys {
			c := s.ByHour[h]
			f.ByHour = append(f.ByHour, HourCountJSON{Hour: h * int64(time.Hour/time.Millisecond), Entries: c.Entries, Conversions: c.Conversions, Abandonments: c.Abandonments})
		}
		out[i] = f
	}
	return out
}

// lastHours returns the last n hours of byHour that have counts, oldest
// first.
func lastHours(byHour map[int64]*funnel.HourCounts, n int) []int64 {
	keys := make([]int64, 0, len(byHour))
	for h := range byHour {
		keys = append(keys, h)
	}
	slices.Sort(keys)
	if len(keys) > n {
		keys = keys[len(keys)-n:]
	}
	return keys
}
