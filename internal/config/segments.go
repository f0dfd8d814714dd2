package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cxstream/cxstream/processors/segment"
	"github.com/cxstream/cxstream/processors/sentiment"
)

// Segments configures the segment processor (processors/segment): ordered
// rules over the user's features, the first match wins.
type Segments = segment.Config

// DefaultSegments are the four groups the business acts on (high_value,
// potential, churned, new) and regular for the other buyers.
func DefaultSegments() Segments { return segment.DefaultConfig() }

// validateSegments names the rule, condition and feature of every
// problem, suggesting the closest feature name for a misspelt one, and
// checks that sentiment.segment_priority names configured segments.
func (c Config) validateSegments(ps *problems) {
	s := c.Segments
	if !s.Enabled {
		return
	}
	features := append(segment.FeatureNames(), segment.PropertyPrefix+"<name>")
	if len(s.Rules) == 0 {
		ps.add("segments.rules", "no rule is defined; define at least one, or leave the key out to keep the default segments")
	}
	for i, r := range s.Rules {
		key := fmt.Sprintf("segments.rules[%d]", i)
		if r.Segment != "" {
			key += " (" + r.Segment + ")"
		}
		if err := segment.CheckName(r.Segment); err != nil {
			ps.add(key+".segment", "%v", err)
		}
		if len(r.When) == 0 {
			ps.add(key+".when", "at least one condition is required (a rule that always matches is the fallback: segments.fallback)")
		}
		for j, w := range r.When {
			_, err := segment.Parse(w)
			var uf *segment.UnknownFeatureError
			switch {
			case errors.As(err, &uf):
				ps.add(fmt.Sprintf("%s.when[%d]", key, j), "unknown feature %q%s; known: %s", uf.Name, suggest(uf.Name, segment.FeatureNames()), strings.Join(features, ", "))
			case err != nil:
				ps.add(fmt.Sprintf("%s.when[%d]", key, j), "%v", err)
			}
		}
	}
	if err := segment.CheckName(s.Fallback); err != nil {
		ps.add("segments.fallback", "%v", err)
	}
	if s.RecentWindow <= 0 {
		ps.add("segments.recent_window", "must be positive, got %s", s.RecentWindow)
	}
	if s.History < 1 || s.History > segment.MaxHistory {
		ps.add("segments.history", "must be between 1 and %d, got %d", segment.MaxHistory, s.History)
	}
	names := s.Names()
	defaults := sentiment.DefaultConfig().SegmentPriority
	for name, boost := range c.Sentiment.SegmentPriority {
		// The default entry (high_value: 1) stays harmless when the
		// rules define no such segment; any other name must exist.
		if !slices.Contains(names, name) && !(defaults[name] == boost && boost > 0) {
			ps.add("sentiment.segment_priority", "unknown segment %q%s; segments: %s", name, suggest(name, names), strings.Join(names, ", "))
		}
		if boost < 0 || boost > 3 {
			ps.add("sentiment.segment_priority", "%s: priority steps must be between 0 and 3, got %d", name, boost)
		}
	}
}
