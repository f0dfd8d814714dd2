package bench

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Stat is one figure over several runs: the median, the range, and every
// run's value in run order.
type Stat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

// Summarize returns the median and range of values (the mean of the two
// middle ones for an even count); the zero Stat for none.
func Summarize(values []float64) Stat {
	if len(values) == 0 {
		return Stat{}
	}
	s := slices.Clone(values)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Stat{Median: med, Min: s[0], Max: s[n-1], Values: slices.Clone(values)}
}

// String writes "median (min-max)", or the value alone for one run.
func (s Stat) String() string { return s.Format("%.1f") }

// Format writes the median and range with verb.
func (s Stat) Format(verb string) string {
	if len(s.Values) <= 1 {
		return fmt.Sprintf(verb, s.Median)
	}
	return fmt.Sprintf(verb+" ("+verb+"-"+verb+")", s.Median, s.Min, s.Max)
}

// FunnelFigures are one funnel's totals over all users, as each system
// reports them: attempts that reached each step (entries are step 0),
// conversions, and abandonments.
type FunnelFigures struct {
	Name         string   `json:"name"`
	Steps        []string `json:"steps"`
	Entries      int64    `json:"entries"`
	Reached      []int64  `json:"reached"`
	Conversions  int64    `json:"conversions"`
	Abandonments int64    `json:"abandonments"`
}

// ErrFunnelMismatch: the two systems' funnel figures differ, so their
// throughput does not measure the same work.
var ErrFunnelMismatch = errors.New("funnel figures differ")

// CompareFunnels returns nil when both systems report the same figures for
// the same funnels, else an error wrapping ErrFunnelMismatch that shows
// both side by side.
func CompareFunnels(aName string, a []FunnelFigures, bName string, b []FunnelFigures) error {
	var diffs []string
	byName := map[string]FunnelFigures{}
	for _, f := range b {
		byName[f.Name] = f
	}
	for _, fa := range a {
		fb, ok := byName[fa.Name]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("funnel %q: %s has it, %s does not", fa.Name, aName, bName))
			continue
		}
		delete(byName, fa.Name)
		if fa.Entries != fb.Entries || !slices.Equal(fa.Reached, fb.Reached) || fa.Conversions != fb.Conversions || fa.Abandonments != fb.Abandonments {
			diffs = append(diffs, fmt.Sprintf("funnel %q:\n  %-10s %s\n  %-10s %s", fa.Name, aName, fa.line(), bName, fb.line()))
		}
	}
	for name := range byName {
		diffs = append(diffs, fmt.Sprintf("funnel %q: %s has it, %s does not", name, bName, aName))
	}
	if len(diffs) == 0 {
		return nil
	}
	slices.Sort(diffs)
	return fmt.Errorf("%w:\n%s", ErrFunnelMismatch, strings.Join(diffs, "\n"))
}

func (f FunnelFigures) line() string {
	return fmt.Sprintf("entries %d, reached %v, conversions %d, abandonments %d", f.Entries, f.Reached, f.Conversions, f.Abandonments)
}
