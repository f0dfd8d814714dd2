package sentiment

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// The shipped models, trained by `make models` (see models/*.card.md).
//
//go:embed models
var embeddedModels embed.FS

// ErrNoModel: no model file for a language (neither configured nor
// embedded).
var ErrNoModel = errors.New("sentiment: no model")

// unknownConfidence is the confidence of the neutral score given to text in
// a language no model covers: the scorer has no opinion.
const unknownConfidence = 0.1

// DefaultScorer scores each message with the learned model of its
// language (see DetectLanguage) and maps the calibrated probability of
// "negative" onto Value in [-1, 1] so that the model's threshold lands on
// NegativeThreshold: the negative-chat alert thresholds of Config
// (strong_negative, rolling_negative) keep their meaning whatever model is
// loaded. English text that is not negative can score positive by VADER's
// compound; Chinese models tell negative from not negative only.
type DefaultScorer struct {
	models map[Language]*Model

	NegativeThreshold float64
	PositiveThreshold float64
}

var (
	embeddedOnce sync.Once
	embeddedSet  map[Language]*Model
	embeddedErr  error
)

// NewDefaultScorer returns the scorer of the embedded models, decoded once
// per process (read-only afterwards, shared by every scorer).
func NewDefaultScorer() (*DefaultScorer, error) {
	embeddedOnce.Do(func() { embeddedSet, embeddedErr = loadEmbedded() })
	if embeddedErr != nil {
		return nil, embeddedErr
	}
	return &DefaultScorer{models: embeddedSet, NegativeThreshold: DefaultNegativeThreshold, PositiveThreshold: DefaultPositiveThreshold}, nil
}

func loadEmbedded() (map[Language]*Model, error) {
	out := map[Language]*Model{}
	for _, lang := range Languages {
		data, err := embeddedModels.ReadFile("models/" + string(lang) + ".bin")
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w for %s embedded in this build (run make models)", ErrNoModel, lang)
		}
		if err != nil {
			return nil, err
		}
		m, err := ReadModel(data)
		if err != nil {
			return nil, fmt.Errorf("embedded %s model: %w", lang, err)
		}
		out[lang] = m
	}
	return out, nil
}

// NewScorer returns the embedded models with the model files of paths
// (language -> file, as in sentiment.models) in their place.
func NewScorer(paths map[string]string) (*DefaultScorer, error) {
	s, err := NewDefaultScorer()
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return s, nil
	}
	models := make(map[Language]*Model, len(s.models)+len(paths))
	for l, m := range s.models {
		models[l] = m
	}
	for name, path := range paths {
		lang, err := ParseLanguage(name)
		if err != nil {
			return nil, err
		}
		m, err := LoadModelFile(path)
		if err != nil {
			return nil, err
		}
		if m.Lang != lang {
			return nil, fmt.Errorf("sentiment: %s is a %s model, configured for %s", path, m.Lang, lang)
		}
		models[lang] = m
	}
	s.models = models
	return s, nil
}

// LoadModelFile reads a model file written by `cxstream sentiment train`.
func LoadModelFile(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sentiment: %w", err)
	}
	m, err := ReadModel(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Model returns the model used for lang, or nil.
func (s *DefaultScorer) Model(lang Language) *Model { return s.models[lang] }

// Score implements Scorer.
func (s *DefaultScorer) Score(text string) Score {
	lang := DetectLanguage(text)
	m := s.models[lang]
	if m == nil {
		return Score{Label: Neutral, Confidence: unknownConfidence, Language: lang}
	}
	f := m.ext.get()
	m.ext.extract(f, text, false)
	p := m.calibrate(m.raw(&f.features))
	positive := 0.0
	if lang == English {
		positive = float64(f.dense[1]) // VADER's compound, if positive
	}
	m.ext.put(f)
	sc := s.fromProbability(p, m.Threshold, positive)
	sc.Language = lang
	return sc
}

// Explainer is a Scorer that can say why it found a text negative. It is
// asked only when an alert goes out (explaining costs several times a
// score).
type Explainer interface {
	Reasons(text string) []string
}

// Reasons are the (at most three) n-grams and complaint patterns that
// pushed text most towards negative; nil for a language no model covers.
func (s *DefaultScorer) Reasons(text string) []string {
	m := s.models[DetectLanguage(text)]
	if m == nil {
		return nil
	}
	return m.reasons(text, 3)
}

// fromProbability maps p onto Value: [threshold, 1] linearly onto
// [NegativeThreshold, -1]; below the threshold Value rises linearly from
// NegativeThreshold to 0 as p falls to 0, plus the positive evidence
// (VADER's compound) weighted by how far p is below the threshold.
func (s *DefaultScorer) fromProbability(p, threshold, positive float64) Score {
	nt := s.NegativeThreshold
	if p >= threshold {
		v := nt - (1+nt)*(p-threshold)/(1-threshold)
		return Score{Value: clamp(v), Label: Negative, Confidence: p, Probability: p}
	}
	r := p / threshold
	v := clamp(nt*r + positive*(1-r))
	l := Neutral
	if v >= s.PositiveThreshold {
		l = Positive
	}
	return Score{Value: v, Label: l, Confidence: 1 - p, Probability: p}
}
