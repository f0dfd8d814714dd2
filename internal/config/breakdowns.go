package config

import (
	"fmt"
	"slices"

	"github.com/cxstream/cxstream/processors/funnel"
)

// Funnel breakdowns: each funnel lists under breakdowns what its attempts
// are grouped by (`cxstream funnel --by`); funnel_breakdowns bounds the
// groups a user's state keeps.

// DefaultFunnelBreakdowns are the limits with nothing set.
func DefaultFunnelBreakdowns() funnel.Limits { return funnel.DefaultLimits() }

// validateBreakdowns rejects a breakdown that could never be filled (a
// misspelt name, "properties.x" for "property.x"), a repeated one, too
// many, and limits that cannot work.
func (c Config) validateBreakdowns(ps *problems) {
	l := c.Breakdown
	if l.MaxValues < 1 || l.MaxValues > 1000 {
		ps.add("funnel_breakdowns.max_values", "must be 1 to 1000, got %d", l.MaxValues)
	}
	if l.MaxValueLength < 1 || l.MaxValueLength > 1024 {
		ps.add("funnel_breakdowns.max_value_length", "must be 1 to 1024, got %d", l.MaxValueLength)
	}
	for i, d := range c.Funnels {
		key := fmt.Sprintf("funnels[%d].breakdowns", i)
		if d.Name != "" {
			key = "funnels." + d.Name + ".breakdowns"
		}
		if len(d.Breakdowns) > funnel.MaxBreakdowns {
			ps.add(key, "at most %d breakdowns per funnel, got %d", funnel.MaxBreakdowns, len(d.Breakdowns))
		}
		for j, b := range d.Breakdowns {
			if err := funnel.CheckBreakdown(b); err != nil {
				ps.addErr(key, err)
			} else if slices.Contains(d.Breakdowns[:j], b) {
				ps.add(key, "%q is listed twice", b)
			}
		}
	}
}
