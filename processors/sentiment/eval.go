package sentiment

import (
	"sort"
)

// Labelled is one evaluation example: Negative says whether a person
// judged the text negative.
type Labelled struct {
	Text     string
	Negative bool
}

// Report is a scorer's quality on a labelled set, for the negative label.
type Report struct {
	N, Negatives int
	// AUC is the ROC AUC of -Value as a negativity score.
	AUC float64
	// Precision and Recall of Label == Negative.
	Precision, Recall float64
	TP, FP, FN        int
}

// Evaluate scores every example and reports ROC AUC and the negative
// label's precision and recall.
func Evaluate(s Scorer, set []Labelled) Report {
	r := Report{N: len(set)}
	type scored struct {
		neg   float64
		label bool
	}
	all := make([]scored, 0, len(set))
	for _, ex := range set {
		sc := s.Score(ex.Text)
		all = append(all, scored{-sc.Value, ex.Negative})
		predicted := sc.Label == Negative
		switch {
		case predicted && ex.Negative:
			r.TP++
		case predicted && !ex.Negative:
			r.FP++
		case !predicted && ex.Negative:
			r.FN++
		}
		if ex.Negative {
			r.Negatives++
		}
	}
	if r.TP+r.FP > 0 {
		r.Precision = float64(r.TP) / float64(r.TP+r.FP)
	}
	if r.TP+r.FN > 0 {
		r.Recall = float64(r.TP) / float64(r.TP+r.FN)
	}
	// AUC by the rank-sum (Mann-Whitney) formula, ties counted half.
	sort.Slice(all, func(i, j int) bool { return all[i].neg < all[j].neg })
	var rankSum float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].neg == all[i].neg {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks are 1-based
		for k := i; k < j; k++ {
			if all[k].label {
				rankSum += avg
			}
		}
		i = j
	}
	pos, neg := float64(r.Negatives), float64(r.N-r.Negatives)
	if pos > 0 && neg > 0 {
		r.AUC = (rankSum - pos*(pos+1)/2) / (pos * neg)
	}
	return r
}
