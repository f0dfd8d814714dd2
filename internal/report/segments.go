package report

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/state"
)

// SegmentHours is how far back the changes per hour go.
const SegmentHours = 48

// SegmentStats are the users per segment now and the changes per hour,
// over every user's clickstream document.
type SegmentStats struct {
	// Names are the segments in configuration order, then any other
	// segment found in the state (from an earlier configuration).
	Names []string
	// Users counts users by current segment (as of each user's latest
	// click or timer, in event time).
	Users map[string]int
	// Until is the end of the hourly window (ms): the latest change seen,
	// or the wall clock when asked.
	Until int64
	// ByHour[h][to] counts changes into segment to in hour h (hours
	// since the epoch) of the SegmentHours hours up to Until.
	ByHour map[int64]map[string]int
	// Clipped counts users whose kept changes (segments.history) do not
	// reach back over the whole window: their older changes in it are
	// not counted.
	Clipped int
}

// Segments scans every user's clickstream document. names are the
// configured segments; until is the end of the hourly window in ms, or 0
// for the latest change seen.
func Segments(ctx context.Context, st *state.Store, names []string, history int, until int64) (SegmentStats, error) {
	s := SegmentStats{Names: slices.Clone(names), Users: map[string]int{}, ByHour: map[int64]map[string]int{}}
	type change struct {
		to string
		at int64
	}
	var changes []change
	var oldestKept []int64 // per user whose history is full
	err := st.Scan(ctx, state.Click, func(_ string, data []byte) error {
		doc, err := pipeline.DecodeClick(data)
		if err != nil {
			return fmt.Errorf("decode state: %w", err)
		}
		seg := doc.Segment
		if seg.Segment == "" {
			return nil
		}
		s.Users[seg.Segment]++
		for _, c := range seg.Recent {
			changes = append(changes, change{c.To, c.At})
		}
		if len(seg.Recent) >= history && len(seg.Recent) > 0 {
			oldestKept = append(oldestKept, seg.Recent[0].At)
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	s.Until = until
	if s.Until == 0 {
		for _, c := range changes {
			s.Until = max(s.Until, c.at)
		}
	}
	from := s.Until - SegmentHours*time.Hour.Milliseconds()
	for _, c := range changes {
		if c.at > from && c.at <= s.Until {
			h := c.at / time.Hour.Milliseconds()
			if s.ByHour[h] == nil {
				s.ByHour[h] = map[string]int{}
			}
			s.ByHour[h][c.to]++
		}
	}
	for _, at := range oldestKept {
		if at > from {
			s.Clipped++
		}
	}
	var others []string
	for name := range s.Users {
		if !slices.Contains(s.Names, name) {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	s.Names = append(s.Names, others...)
	return s, nil
}

// PrintSegments writes users per segment and, unless hours is 0, the
// changes into each segment per hour for the last hours hours (at most
// SegmentHours) of the window.
func PrintSegments(w io.Writer, s SegmentStats, hours int) {
	total := 0
	for _, n := range s.Users {
		total += n
	}
	fmt.Fprintf(w, "users per segment (%d users):\n", total)
	for _, name := range s.Names {
		pct := 0.0
		if total > 0 {
			pct = 100 * float64(s.Users[name]) / float64(total)
		}
		fmt.Fprintf(w, "  %-16s %8d  %5.1f%%\n", name, s.Users[name], pct)
	}
	if hours <= 0 || s.Until == 0 {
		return
	}
	hours = min(hours, SegmentHours)
	last := s.Until / time.Hour.Milliseconds()
	fmt.Fprintf(w, "\nchanges into each segment per hour, %d hours up to %s (UTC, event time):\n", hours, time.UnixMilli(s.Until).UTC().Format("2006-01-02 15:04"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "hour\ttotal\t%s\t\n", strings.Join(s.Names, "\t"))
	for h := last - int64(hours) + 1; h <= last; h++ {
		row := s.ByHour[h]
		sum := 0
		cells := make([]string, len(s.Names))
		for i, name := range s.Names {
			sum += row[name]
			cells[i] = fmt.Sprint(row[name])
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", time.UnixMilli(h*time.Hour.Milliseconds()).UTC().Format("01-02 15h"), sum, strings.Join(cells, "\t"))
	}
	_ = tw.Flush()
	if s.Clipped > 0 {
		fmt.Fprintf(w, "note: %d users changed segment more often than segments.history keeps; their older changes in the window are not counted\n", s.Clipped)
	}
}
