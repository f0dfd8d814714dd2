package gen

import (
	"cmp"
	"errors"
	"slices"
	"time"
)

// ErrHistoryCount: a history needs a number of events to spread over it.
var ErrHistoryCount = errors.New("gen: a history needs a positive event count")

// Session shape of a history: a visit is a few events minutes apart, so
// funnels can convert within their window while visits lie days apart.
const (
	historyMinVisit = 2
	historyMaxVisit = 8
	historyMaxGap   = 10 * time.Minute
)

// History returns count events whose event times lie in (until-span,
// until], in time order. Users come back in visits of a few events minutes
// apart on random days, so funnel windows run out, users fall silent for
// weeks and return, and each user's events keep the generator's per-user
// order (a funnel walked forwards). The same seed, users, count, span and
// until give the same events.
func (g *Generator) History(count int, span time.Duration, until time.Time) []Event {
	if count <= 0 || span <= 0 {
		return nil
	}
	// Which user makes each visit, and how long it is.
	visits := make([][]int, len(g.users))
	for left := count; left > 0; {
		u := g.rng.IntN(len(g.users))
		n := min(left, historyMinVisit+g.rng.IntN(historyMaxVisit-historyMinVisit+1))
		visits[u] = append(visits[u], n)
		left -= n
	}
	// A visit ends by until: it starts no later than its longest length.
	last := until.UnixMilli() - int64(historyMaxVisit)*historyMaxGap.Milliseconds()
	first := until.Add(-span).UnixMilli() + 1
	if last < first {
		last = first
	}
	out := make([]Event, 0, count)
	for i, sizes := range visits {
		starts := make([]int64, len(sizes))
		for k := range starts {
			starts[k] = first + g.rng.Int64N(last-first+1)
		}
		slices.Sort(starts)
		for k, n := range sizes {
			at := starts[k]
			if k > 0 {
				// Visits of one user do not overlap: time order per user.
				at = max(at, out[len(out)-1].Time+1)
			}
			for e := range n {
				if e > 0 {
					at += 1000 + g.rng.Int64N(historyMaxGap.Milliseconds())
				}
				out = append(out, g.nextOf(g.users[i], time.UnixMilli(min(at, until.UnixMilli()))))
			}
		}
	}
	// Stable: events of one user at the same millisecond keep their order.
	slices.SortStableFunc(out, func(a, b Event) int { return cmp.Compare(a.Time, b.Time) })
	return out
}
