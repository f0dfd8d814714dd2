package sentiment

import (
	"math"
	"time"
)

// Rolling is an exponentially decayed mean of scores by event time:
// each score weighs 2^(-(T-t)/halfLife), T the latest event time seen. The
// update is exact for out-of-order arrivals too, so the mean does not
// depend on the order in which the same messages arrive.
type Rolling struct {
	Mean   float64   `json:"m"`
	Weight float64   `json:"w"`
	At     int64     `json:"t"`
	Count  int       `json:"n"`
	Recent []float64 `json:"r,omitempty"`
}

// Add folds a score at event time at (ms) into the mean, and keeps the
// last keep scores in arrival order.
func (r *Rolling) Add(v float64, at int64, halfLife time.Duration, keep int) {
	w := 1.0
	hl := float64(halfLife.Milliseconds())
	switch {
	case r.Count == 0 || hl <= 0:
		r.At = max(r.At, at)
	case at >= r.At:
		r.Weight *= math.Exp2(-float64(at-r.At) / hl)
		r.At = at
	default:
		w = math.Exp2(-float64(r.At-at) / hl)
	}
	if r.Weight+w > 0 {
		r.Mean = (r.Mean*r.Weight + v*w) / (r.Weight + w)
	}
	r.Weight += w
	r.Count++
	if keep > 0 {
		r.Recent = append(r.Recent, round3(v))
		if len(r.Recent) > keep {
			r.Recent = append(r.Recent[:0], r.Recent[len(r.Recent)-keep:]...)
		}
	}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
