package sentiment

import (
	"math"
	"strings"
	"unicode"

	"github.com/cdipaolo/goml/text"
	cdsentiment "github.com/cdipaolo/sentiment"
)

// bayesWeights reads per-word log-odds from the Naive Bayes model, so
// scoring skips the model's per-call text transform and can tell "no known
// word" (no opinion) from "negative" (the model's Predict cannot).
type bayesWeights struct {
	nb   *text.NaiveBayes
	dict float64
}

func newBayesWeights(m cdsentiment.Models) bayesWeights {
	nb := m[cdsentiment.English]
	if nb == nil || len(nb.Count) < 2 {
		return bayesWeights{}
	}
	return bayesWeights{nb: nb, dict: float64(nb.DictCount)}
}

// value is tanh of the summed log-odds of the known words over the square
// root of their number, and how many words were known.
func (b bayesWeights) value(lower string) (float64, int) {
	if b.nb == nil {
		return 0, 0
	}
	sum, known := 0.0, 0
	for _, word := range strings.FieldsFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) }) {
		stats, ok := b.nb.Words.Get(word)
		if !ok || len(stats.Count) < 2 || stats.Seen < 3 {
			continue
		}
		seen := float64(stats.Seen)
		sum += math.Log(float64(stats.Count[1]+1)/(seen+b.dict)) - math.Log(float64(stats.Count[0]+1)/(seen+b.dict))
		known++
	}
	if known == 0 {
		return 0, 0
	}
	return math.Tanh(sum / math.Sqrt(float64(known))), known
}
