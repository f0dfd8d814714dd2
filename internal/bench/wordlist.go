package bench

import (
	_ "embed"
	"strings"

	"github.com/cxstream/cxstream/processors/sentiment"
)

//go:embed wordlist.txt
var wordListFile string

// NegativeWords is the bench's word list (wordlist.txt): the same list
// scores chats in cxstream and in the Kafka Streams peer, so both systems
// do the same sentiment work in the comparison.
func NegativeWords() []string {
	var out []string
	for _, line := range strings.Split(wordListFile, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, strings.ToLower(line))
		}
	}
	return out
}

// WordListScorer is a trivial scorer for the peer comparison only: -1
// (negative, certain) when a message contains a listed word, else 0
// (neutral). It stands in for cxstream's models so that both systems pay
// the same, small price for sentiment.
type WordListScorer struct{ words []string }

// NewWordListScorer returns a scorer over words (lower case).
func NewWordListScorer(words []string) *WordListScorer { return &WordListScorer{words: words} }

// Score implements sentiment.Scorer.
func (s *WordListScorer) Score(text string) sentiment.Score {
	t := strings.ToLower(text)
	for _, w := range s.words {
		if strings.Contains(t, w) {
			return sentiment.Score{Value: -1, Label: sentiment.Negative, Confidence: 1, Probability: 1, Language: sentiment.Unknown}
		}
	}
	return sentiment.Score{Value: 0, Label: sentiment.Neutral, Confidence: 1, Language: sentiment.Unknown}
}
