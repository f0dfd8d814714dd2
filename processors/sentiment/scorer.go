// Package sentiment scores customer-service chat messages, keeps a rolling
// sentiment per user and per conversation, and decides when a conversation
// must go to a human (the negative-chat alert).
package sentiment

import (
	"math"
	"slices"
	"strings"
	"sync"

	cdsentiment "github.com/cdipaolo/sentiment"
	"github.com/jonreiter/govader"
)

// Label is the class of a scored message.
type Label string

// Labels of a scored message.
const (
	Negative Label = "negative"
	Neutral  Label = "neutral"
	Positive Label = "positive"
)

// Score is the sentiment of one message.
type Score struct {
	// Value is in [-1, 1]: -1 furious, 0 neutral or unknown, 1 delighted.
	Value float64
	Label Label
	// Confidence is in [0, 1]: for the learned scorer the calibrated
	// probability that the label is right as far as negative versus not
	// negative goes (Probability for Negative, 1-Probability otherwise);
	// low for a language no model covers.
	Confidence float64
	// Probability is the calibrated probability that the message is
	// negative (learned scorer only).
	Probability float64
	// Language the message was scored in; Unknown if no model covers it.
	Language Language
}

// Scorer scores one message. Implementations are safe for concurrent use.
type Scorer interface {
	Score(text string) Score
}

// Thresholds on Value that separate the labels. The learned scorer maps
// each model's chosen probability threshold onto DefaultNegativeThreshold,
// so the alert thresholds of Config keep their meaning. For the lexicon
// scorer the negative threshold was chosen on
// test/testdata/support_chats.tsv alone.
const (
	DefaultNegativeThreshold = -0.25
	DefaultPositiveThreshold = 0.35
)

// customerServiceWords adds support-chat vocabulary to the VADER lexicon
// (same -4..4 scale) so negation and intensifiers apply to it: "slow",
// "refund" or "outage" are neutral in reviews and bad news in a support chat.
var customerServiceWords = map[string]float64{
	"refund": -1.6, "refunds": -1.4, "cancel": -1.4, "cancelling": -1.4, "canceling": -1.4,
	"cancellation": -1.2, "outage": -2.2, "outages": -2.2, "overcharged": -2.6, "chargeback": -2.4,
	"ripoff": -2.8, "unresponsive": -2.0, "crash": -1.6, "crashes": -1.8, "crashed": -1.8,
	"crashing": -1.8, "error": -1.3, "errors": -1.3, "bug": -1.2, "buggy": -2.0, "glitch": -1.4,
	"stuck": -1.6, "slow": -1.3, "unusable": -2.6, "waiting": -0.9, "waited": -1.3,
	"escalate": -1.4, "complaint": -1.8, "lawyer": -1.8, "declined": -1.2, "delayed": -1.2,
	"missing": -1.2, "unsubscribe": -1.2, "broken": -2.0, "worst": -3.1, "nobody": -0.6,
	"useless": -2.2, "ridiculous": -2.2, "unacceptable": -2.6, "incompetent": -2.6,
	"locked": -0.9, "freezes": -1.6, "frozen": -1.2, "fails": -1.8, "failing": -1.8,
	"charged": -0.6, "twice": -0.3, "again": -0.3,
}

// customerServicePhrases are multi-word complaints VADER cannot see word by
// word ("not working": "working" has no valence, so negating it yields 0).
var customerServicePhrases = sortedPhrases(map[string]float64{
	"not working": -2.2, "isn't working": -2.2, "is not working": -2.2, "stopped working": -2.4,
	"doesn't work": -2.2, "does not work": -2.2, "didn't work": -1.8, "won't load": -2.0,
	"can't log in": -2.0, "cannot log in": -2.0, "can't login": -2.0, "can't access": -2.0,
	"still can't": -2.2, "still cannot": -2.2, "still not": -1.6, "still waiting": -2.2,
	"hung up": -2.2, "on hold": -1.4, "charged twice": -2.6, "double charged": -2.6,
	"money back": -2.2, "waste of time": -2.6, "waste of money": -2.8, "third time": -1.8,
	"no one": -0.8, "no response": -2.0, "never received": -2.2, "never arrived": -2.2,
	"been waiting": -1.8, "for hours": -1.0, "for days": -1.2, "for weeks": -1.4,
	"nobody answers": -2.0, "keeps crashing": -2.4, "keeps failing": -2.4, "fed up": -2.6,
	"give up": -1.6, "close my account": -2.0, "delete my account": -2.0, "speak to a manager": -2.0,
	"talk to a human": -1.4, "real person": -1.2, "what a joke": -2.4, "so much for": -1.6,
})

type phrase struct {
	text  string
	value float64
}

// sortedPhrases fixes the order in which phrase valences are summed, so a
// text always gets the same score to the last bit.
func sortedPhrases(m map[string]float64) []phrase {
	out := make([]phrase, 0, len(m))
	for k, v := range m {
		out = append(out, phrase{k, v})
	}
	slices.SortFunc(out, func(a, b phrase) int { return strings.Compare(a.text, b.text) })
	return out
}

// LexiconScorer is the scorer cxstream shipped before the learned models
// (kept as a baseline for sentiment-eval --scorer lexicon). It combines:
//   - VADER (lexicon + rules for negation, "but", intensifiers, capitals,
//     exclamation marks, emoticons and emoji), extended with customer-service
//     words and phrases: the main signal on short informal text;
//   - cdipaolo/sentiment's Naive Bayes model: a weak second opinion, counted
//     only when the text has words it knows.
//
// Text with no known word scores 0 (neutral), never negative.
type LexiconScorer struct {
	lexicon
	bayes cdsentiment.Models
	nb    bayesWeights

	NegativeThreshold float64
	PositiveThreshold float64
}

// lexicon is VADER extended with support-chat words, phrases and
// complaint patterns: the English learned model's dense features, and the
// lexicon scorer's main signal.
type lexicon struct {
	vader *govader.SentimentIntensityAnalyzer
}

var (
	loadOnce   sync.Once
	loadedNB   cdsentiment.Models
	loadNBErr  error
	vaderMutex sync.Mutex
)

func newLexicon() lexicon {
	vaderMutex.Lock()
	v := govader.NewSentimentIntensityAnalyzer()
	vaderMutex.Unlock()
	for w, val := range customerServiceWords {
		v.Lexicon[w] = val
	}
	return lexicon{vader: v}
}

// NewLexiconScorer loads the lexicon scorer (the Naive Bayes model takes
// ~0.4 s; it is loaded once per process and shared).
func NewLexiconScorer() (*LexiconScorer, error) {
	loadOnce.Do(func() { loadedNB, loadNBErr = cdsentiment.Restore() })
	if loadNBErr != nil {
		return nil, loadNBErr
	}
	return &LexiconScorer{
		lexicon:           newLexicon(),
		bayes:             loadedNB,
		nb:                newBayesWeights(loadedNB),
		NegativeThreshold: DefaultNegativeThreshold,
		PositiveThreshold: DefaultPositiveThreshold,
	}, nil
}

// vaderAlpha is VADER's normalisation constant: compound = x/sqrt(x²+alpha).
const vaderAlpha = 15.0

// Score implements Scorer.
func (s *LexiconScorer) Score(text string) Score {
	sc := s.label(s.Value(text))
	sc.Language = English
	return sc
}

// Value is the combined score in [-1, 1].
func (s *LexiconScorer) Value(text string) float64 {
	if strings.TrimSpace(text) == "" {
		return 0
	}
	lower := strings.ToLower(text)
	lexical, _, _, _ := s.lexical(text, lower)
	nbValue, known := s.nb.value(lower)
	if known == 0 {
		return clamp(lexical)
	}
	// The Naive Bayes opinion counts for at most a fifth, less on short
	// texts where it has seen few words.
	w := 0.2 * math.Min(1, float64(known)/6)
	return clamp((1-w)*lexical + w*nbValue)
}

// lexical is VADER's compound with the support phrases and complaint
// patterns added on VADER's raw scale, in [-1, 1]; also VADER's own
// compound, the patterns' valence sum and whether the text reads as a
// plain request.
func (l lexicon) lexical(text, lower string) (value, compound, patterns float64, request bool) {
	if strings.TrimSpace(text) == "" {
		return 0, 0, 0, false
	}
	compound = l.vader.PolarityScores(text).Compound
	// Back to VADER's raw valence sum, add the phrase valences, normalise.
	raw := 0.0
	if math.Abs(compound) < 0.9999 {
		raw = compound * math.Sqrt(vaderAlpha) / math.Sqrt(1-compound*compound)
	} else {
		raw = math.Copysign(100, compound)
	}
	for _, ph := range customerServicePhrases {
		if strings.Contains(lower, ph.text) {
			raw += ph.value
		}
	}
	patterns, request = patternValence(lower)
	raw += patterns
	if request && patterns == 0 && raw < 0 {
		// "What is your refund policy?" asks; it does not complain.
		raw *= 0.3
	}
	return clamp(raw / math.Sqrt(raw*raw+vaderAlpha)), compound, patterns, request
}

func (s *LexiconScorer) label(v float64) Score {
	switch {
	case v <= s.NegativeThreshold:
		return Score{Value: v, Label: Negative, Confidence: clamp01((s.NegativeThreshold-v)/(1+s.NegativeThreshold)*0.5 + 0.5)}
	case v >= s.PositiveThreshold:
		return Score{Value: v, Label: Positive, Confidence: clamp01((v-s.PositiveThreshold)/(1-s.PositiveThreshold)*0.5 + 0.5)}
	}
	// Neutral: most confident at 0, 0.5 at either boundary.
	room := -s.NegativeThreshold
	if v > 0 {
		room = s.PositiveThreshold
	}
	return Score{Value: v, Label: Neutral, Confidence: clamp01(1 - math.Abs(v)/room*0.5)}
}

func clamp(v float64) float64   { return math.Max(-1, math.Min(1, v)) }
func clamp01(v float64) float64 { return math.Max(0, math.Min(1, v)) }
