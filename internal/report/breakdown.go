package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/redact"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors/funnel"
)

// GroupStats are one group's figures in a funnel breakdown.
type GroupStats struct {
	// Value is the group: a segment, a property value, funnel.NoValue or
	// funnel.OtherValue.
	Value string
	// Attempts that entered the funnel in this group, ended or open;
	// Reached[i] of them reached step i, Open are still open.
	Attempts    int
	Reached     []int
	Open        int
	Conversions int
	// MeanConvert is over every conversion; MedianConvert and P90Convert
	// over the MedianOf most recent ones each user's state keeps.
	MeanConvert, MedianConvert, P90Convert time.Duration
	MedianOf                               int
}

// BreakdownStats are one funnel's attempts by group.
type BreakdownStats struct {
	Funnel string
	Steps  []string
	// By is the breakdown ("segment", "property.utm_source"); Tracked
	// tells whether this funnel keeps it (Breakdowns lists those it does).
	By          string
	Attribution funnel.Attribution
	Tracked     bool
	Breakdowns  []string
	// Groups, most attempts first; at most the configured max_values of
	// them, the rest merged into funnel.OtherValue (last).
	Groups []GroupStats
	// Attempts counts every attempt of the funnel; Attempts - Grouped of
	// them ended before the funnel kept this breakdown.
	Attempts, Grouped int
}

// ErrUntracked: no funnel keeps the breakdown asked for.
var ErrUntracked = errors.New("breakdown not tracked")

// UntrackedError names the breakdown asked for and what each funnel keeps.
type UntrackedError struct {
	By string
	// Tracked is "funnel: breakdown, breakdown" per funnel.
	Tracked []string
}

func (e *UntrackedError) Error() string {
	return fmt.Sprintf("no funnel breaks down by %q; tracked: %s (set funnels[].breakdowns in the configuration; attempts are grouped from then on)", e.By, strings.Join(e.Tracked, "; "))
}

// Unwrap makes errors.Is(err, ErrUntracked) hold.
func (e *UntrackedError) Unwrap() error { return ErrUntracked }

// CheckBreakdown reports a breakdown no funnel of p keeps, naming what
// each one does.
func CheckBreakdown(p *funnel.Processor, by string) error {
	if err := funnel.CheckBreakdown(by); err != nil {
		return err
	}
	e := &UntrackedError{By: by}
	for _, d := range p.Definitions() {
		if d.Tracks(by) {
			return nil
		}
		e.Tracked = append(e.Tracked, fmt.Sprintf("%s: %s", d.Name, keptBreakdowns(d.Breakdowns)))
	}
	return e
}

// groupSum accumulates one group across users.
type groupSum struct {
	GroupStats
	totalMs int64
	took    []int64
}

// add sums o's counts into g.
func (g *groupSum) add(o *groupSum) {
	g.Attempts += o.Attempts
	g.Open += o.Open
	g.Conversions += o.Conversions
	for k, n := range o.Reached {
		if k < len(g.Reached) {
			g.Reached[k] += n
		}
	}
	g.totalMs += o.totalMs
	g.took = append(g.took, o.took...)
}

// keptBreakdowns lists a funnel's breakdowns for a message.
func keptBreakdowns(bs []string) string {
	if len(bs) == 0 {
		return "none"
	}
	return strings.Join(bs, ", ")
}

// FunnelBreakdowns scans every user's clickstream document and groups
// each funnel's attempts by the breakdown under the attribution: ended
// attempts from the users' tallies, open ones by their current values.
// Call CheckBreakdown first to refuse a breakdown no funnel keeps.
func FunnelBreakdowns(ctx context.Context, st *state.Store, p *funnel.Processor, by string, attr funnel.Attribution) ([]BreakdownStats, error) {
	defs := p.Definitions()
	out := make([]BreakdownStats, len(defs))
	sums := make([]map[string]*groupSum, len(defs))
	for i, d := range defs {
		out[i] = BreakdownStats{Funnel: d.Name, By: by, Attribution: attr, Tracked: d.Tracks(by), Breakdowns: d.Breakdowns}
		for _, s := range d.Steps {
			out[i].Steps = append(out[i].Steps, s.Name)
		}
		sums[i] = map[string]*groupSum{}
	}
	group := func(i int, value string) *groupSum {
		g := sums[i][value]
		if g == nil {
			g = &groupSum{GroupStats: GroupStats{Value: value, Reached: make([]int, len(defs[i].Steps))}}
			sums[i][value] = g
		}
		return g
	}
	err := st.Scan(ctx, state.Click, func(_ string, data []byte) error {
		doc, err := pipeline.DecodeClick(data)
		if err != nil {
			return fmt.Errorf("decode state: %w", err)
		}
		for i := range defs {
			pr := doc.Funnel[defs[i].Name]
			if pr == nil || !out[i].Tracked {
				continue
			}
			a := p.View(&defs[i], pr)
			if len(a.Reached) > 0 {
				out[i].Attempts += a.Reached[0]
			}
			if t := a.Groups[by]; t != nil {
				counts := t.First
				if attr == funnel.LastTouch {
					counts = t.Last
				}
				for v, c := range counts {
					group(i, v).add(&groupSum{GroupStats: GroupStats{Attempts: c.Attempts, Reached: c.Reached, Conversions: c.Conversions}, totalMs: c.TotalMs, took: c.Took})
				}
			}
			if a.Step >= 0 {
				g := group(i, a.Touch(by, attr))
				g.Attempts++
				g.Open++
				for k := range g.Reached {
					if a.Done&(1<<k) != 0 {
						g.Reached[k]++
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Groups, out[i].Grouped = finishGroups(sums[i], p.Limits().MaxValues)
	}
	return out, nil
}

// finishGroups orders the groups by attempts (then value), merges those
// beyond maxValues into funnel.OtherValue, and computes the times to
// convert.
func finishGroups(sums map[string]*groupSum, maxValues int) ([]GroupStats, int) {
	all := make([]*groupSum, 0, len(sums))
	var other *groupSum
	grouped := 0
	for v, g := range sums {
		grouped += g.Attempts
		if v == funnel.OtherValue {
			other = g
			continue
		}
		all = append(all, g)
	}
	slices.SortFunc(all, func(a, b *groupSum) int {
		if a.Attempts != b.Attempts {
			return b.Attempts - a.Attempts
		}
		return strings.Compare(a.Value, b.Value)
	})
	if len(all) > maxValues {
		if other == nil {
			other = &groupSum{GroupStats: GroupStats{Value: funnel.OtherValue, Reached: make([]int, len(all[0].Reached))}}
		}
		for _, g := range all[maxValues:] {
			other.add(g)
		}
		all = all[:maxValues]
	}
	if other != nil {
		all = append(all, other)
	}
	out := make([]GroupStats, len(all))
	for i, g := range all {
		s := g.GroupStats
		if s.Conversions > 0 {
			s.MeanConvert = time.Duration(g.totalMs/int64(s.Conversions)) * time.Millisecond
		}
		if n := len(g.took); n > 0 {
			slices.Sort(g.took)
			s.MedianConvert = time.Duration(median(g.took)) * time.Millisecond
			s.P90Convert = time.Duration(percentile(g.took, 90)) * time.Millisecond
			s.MedianOf = n
		}
		out[i] = s
	}
	return out, grouped
}

// percentile of sorted values by the nearest-rank method: the smallest
// value with at least q percent of the values at or below it.
func percentile(sorted []int64, q int) int64 {
	rank := (q*len(sorted) + 99) / 100
	return sorted[max(rank, 1)-1]
}

// PrintBreakdowns writes each funnel's groups as a table: attempts, the
// share of them that reached each step (the last is the conversion rate),
// and the time to convert.
func PrintBreakdowns(w io.Writer, stats []BreakdownStats) {
	for _, s := range stats {
		if !s.Tracked {
			fmt.Fprintf(w, "funnel %q is not broken down by %s (its breakdowns: %s)\n", s.Funnel, s.By, keptBreakdowns(s.Breakdowns))
			continue
		}
		fmt.Fprintf(w, "funnel %q by %s, %s touch: %s in %s\n", s.Funnel, s.By, s.Attribution, plural(s.Grouped, "attempt"), plural(len(s.Groups), "group"))
		if s.Attempts > s.Grouped {
			fmt.Fprintf(w, "  (%s ended before the funnel kept this breakdown and are not grouped)\n", plural(s.Attempts-s.Grouped, "more attempt"))
		}
		if len(s.Groups) == 0 {
			continue
		}
		width := len("group")
		for _, g := range s.Groups {
			width = max(width, min(utf8.RuneCountInString(g.Value), maxGroupWidth))
		}
		steps := make([]int, len(s.Steps))
		fmt.Fprintf(w, "  %-*s %8s", width, "group", "attempts")
		for j, name := range s.Steps {
			steps[j] = max(len(name), 7)
			fmt.Fprintf(w, " %*s", steps[j], name)
		}
		fmt.Fprintf(w, " %11s %9s %9s\n", "conversions", "median", "p90")
		for _, g := range s.Groups {
			fmt.Fprintf(w, "  %-*s %8d", width, redact.Clip(g.Value, maxGroupWidth), g.Attempts)
			for j := range s.Steps {
				fmt.Fprintf(w, " %*s", steps[j], fmt.Sprintf("%.1f%%", pct(g.Reached[j], g.Attempts)))
			}
			med, p90 := "-", "-"
			if g.MedianOf > 0 {
				med, p90 = g.MedianConvert.Round(time.Second).String(), g.P90Convert.Round(time.Second).String()
			}
			fmt.Fprintf(w, " %11d %9s %9s\n", g.Conversions, med, p90)
		}
	}
}

// maxGroupWidth is the widest group name a table shows; --json has the
// whole value.
const maxGroupWidth = 32

// breakdownJSON is a breakdown as `cxstream funnel --by ... --json`
// prints it.
type breakdownJSON struct {
	Funnel      string      `json:"funnel"`
	By          string      `json:"by"`
	Attribution string      `json:"attribution"`
	Tracked     bool        `json:"tracked"`
	Breakdowns  []string    `json:"breakdowns"`
	Steps       []string    `json:"steps"`
	Attempts    int         `json:"attempts"`
	Grouped     int         `json:"grouped"`
	Groups      []groupJSON `json:"groups"`
}

type groupJSON struct {
	Value       string `json:"value"`
	Attempts    int    `json:"attempts"`
	Open        int    `json:"open"`
	Reached     []int  `json:"reached"`
	Conversions int    `json:"conversions"`
	// Times to convert in ms; absent without conversions.
	MeanConvertMs   *int64 `json:"mean_convert_ms,omitempty"`
	MedianConvertMs *int64 `json:"median_convert_ms,omitempty"`
	P90ConvertMs    *int64 `json:"p90_convert_ms,omitempty"`
	MedianOf        int    `json:"median_of"`
}

// WriteBreakdownsJSON writes the breakdowns as one JSON array.
func WriteBreakdownsJSON(w io.Writer, stats []BreakdownStats) error {
	out := make([]breakdownJSON, len(stats))
	for i, s := range stats {
		b := breakdownJSON{Funnel: s.Funnel, By: s.By, Attribution: string(s.Attribution), Tracked: s.Tracked, Breakdowns: s.Breakdowns,
			Steps: s.Steps, Attempts: s.Attempts, Grouped: s.Grouped, Groups: []groupJSON{}}
		if b.Breakdowns == nil {
			b.Breakdowns = []string{}
		}
		for _, g := range s.Groups {
			gj := groupJSON{Value: g.Value, Attempts: g.Attempts, Open: g.Open, Reached: g.Reached, Conversions: g.Conversions, MedianOf: g.MedianOf}
			if g.Conversions > 0 {
				gj.MeanConvertMs = ptr(g.MeanConvert.Milliseconds())
			}
			if g.MedianOf > 0 {
				gj.MedianConvertMs, gj.P90ConvertMs = ptr(g.MedianConvert.Milliseconds()), ptr(g.P90Convert.Milliseconds())
			}
			b.Groups = append(b.Groups, gj)
		}
		out[i] = b
	}
	return writeIndented(w, out)
}

// WriteFunnelsJSON writes the funnel report as `cxstream funnel --json`
// prints it (FunnelsJSON).
func WriteFunnelsJSON(w io.Writer, stats []FunnelStats, hours int) error {
	return writeIndented(w, FunnelsJSON(stats, hours))
}

func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func ptr[T any](v T) *T { return &v }
