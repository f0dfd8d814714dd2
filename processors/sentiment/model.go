package sentiment

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// A model file is "CXSM", a version, a JSON header (language, hashing
// bits, dense feature names, calibration, threshold, model card), the
// weights as little-endian float32, and a CRC-32 of everything before it.
const (
	modelMagic   = "CXSM"
	modelVersion = 1
	maxModelBits = 24
)

// Errors of model files.
var (
	// ErrBadModel: the file is not a model, is truncated or corrupt.
	ErrBadModel = errors.New("sentiment: not a valid model file")
	// ErrFeatureMismatch: the model was trained with other dense features
	// than this build extracts (retrain it with this version).
	ErrFeatureMismatch = errors.New("sentiment: model features do not match this version")
)

// Model is a hashed n-gram logistic regression for one language, with its
// Platt calibration and alert threshold.
type Model struct {
	Lang Language
	// Bits: hashed features fall in 2^Bits buckets.
	Bits int
	// Weights: 2^Bits hashed buckets, then one per dense feature.
	Weights    []float32
	DenseNames []string
	// PlattA, PlattB calibrate: P(negative) = 1/(1+exp(-(A*z+B))), z the
	// model's raw score. Fitted on the validation split re-weighted to the
	// card's negative share.
	PlattA, PlattB float64
	// Threshold on the calibrated probability above which a message is
	// labelled negative.
	Threshold float64
	Card      Card

	ext *extractor
}

type modelHeader struct {
	Lang       Language `json:"lang"`
	Bits       int      `json:"bits"`
	DenseNames []string `json:"dense"`
	PlattA     float64  `json:"platt_a"`
	PlattB     float64  `json:"platt_b"`
	Threshold  float64  `json:"threshold"`
	Card       Card     `json:"card"`
}

// WriteTo writes the model file.
func (m *Model) WriteTo(w io.Writer) (int64, error) {
	head, err := json.Marshal(modelHeader{m.Lang, m.Bits, m.DenseNames, m.PlattA, m.PlattB, m.Threshold, m.Card})
	if err != nil {
		return 0, err
	}
	var buf bytes.Buffer
	buf.WriteString(modelMagic)
	_ = binary.Write(&buf, binary.LittleEndian, uint32(modelVersion))
	_ = binary.Write(&buf, binary.LittleEndian, uint32(len(head)))
	buf.Write(head)
	b := make([]byte, 4*len(m.Weights))
	for i, w := range m.Weights {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(w))
	}
	buf.Write(b)
	_ = binary.Write(&buf, binary.LittleEndian, crc32.ChecksumIEEE(buf.Bytes()))
	n, err := w.Write(buf.Bytes())
	return int64(n), err
}

// WeightsHash is a checksum of the weights and calibration: equal hashes,
// equal models (the reproducibility test compares it).
func (m *Model) WeightsHash() uint32 {
	h := crc32.NewIEEE()
	b := make([]byte, 4)
	for _, w := range m.Weights {
		binary.LittleEndian.PutUint32(b, math.Float32bits(w))
		h.Write(b)
	}
	fmt.Fprintf(h, "%v %v %v", m.PlattA, m.PlattB, m.Threshold)
	return h.Sum32()
}

// ReadModel decodes a model file.
func ReadModel(data []byte) (*Model, error) {
	if len(data) < 16 || string(data[:4]) != modelMagic {
		return nil, fmt.Errorf("%w: no CXSM header", ErrBadModel)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch (truncated or corrupt)", ErrBadModel)
	}
	if v := binary.LittleEndian.Uint32(data[4:]); v != modelVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadModel, v, modelVersion)
	}
	hl := int(binary.LittleEndian.Uint32(data[8:]))
	if hl <= 0 || 12+hl > len(body) {
		return nil, fmt.Errorf("%w: header length %d", ErrBadModel, hl)
	}
	var h modelHeader
	if err := json.Unmarshal(body[12:12+hl], &h); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrBadModel, err)
	}
	if _, err := ParseLanguage(string(h.Lang)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadModel, err)
	}
	if h.Bits < 8 || h.Bits > maxModelBits {
		return nil, fmt.Errorf("%w: %d hashing bits", ErrBadModel, h.Bits)
	}
	raw := body[12+hl:]
	n := 1<<h.Bits + len(h.DenseNames)
	if len(raw) != 4*n {
		return nil, fmt.Errorf("%w: %d weight bytes, want %d", ErrBadModel, len(raw), 4*n)
	}
	m := &Model{Lang: h.Lang, Bits: h.Bits, DenseNames: h.DenseNames, PlattA: h.PlattA, PlattB: h.PlattB, Threshold: h.Threshold, Card: h.Card}
	m.Weights = make([]float32, n)
	for i := range m.Weights {
		m.Weights[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	if !(m.Threshold > 0 && m.Threshold < 1) {
		return nil, fmt.Errorf("%w: threshold %v outside (0, 1)", ErrBadModel, m.Threshold)
	}
	if err := m.bind(); err != nil {
		return nil, err
	}
	return m, nil
}

// bind attaches the language's feature extractor and checks that the
// model was trained on the same dense features.
func (m *Model) bind() error {
	m.ext = newExtractor(m.Lang)
	if !slices.Equal(m.ext.denseNames, m.DenseNames) {
		return fmt.Errorf("%w: model has %d dense features %q, this version %d", ErrFeatureMismatch, len(m.DenseNames), strings.Join(m.DenseNames, ", "), len(m.ext.denseNames))
	}
	return nil
}

// raw is the model's uncalibrated score of extracted features.
func (m *Model) raw(f *features) float64 {
	mask := uint32(1)<<m.Bits - 1
	v := f.hashedValue()
	var z float32
	for _, h := range f.hashed {
		z += m.Weights[h&mask] * v
	}
	base := 1 << m.Bits
	for i, d := range f.dense {
		z += m.Weights[base+i] * d
	}
	return float64(z)
}

func (m *Model) calibrate(z float64) float64 {
	return 1 / (1 + math.Exp(-(m.PlattA*z + m.PlattB)))
}

// Probability is the calibrated probability that text is negative.
func (m *Model) Probability(text string) float64 {
	s := m.ext.get()
	defer m.ext.put(s)
	m.ext.extract(s, text, false)
	return m.calibrate(m.raw(&s.features))
}

// reasons lists the features that pushed text most towards negative.
func (m *Model) reasons(text string, limit int) []string {
	s := m.ext.get()
	defer m.ext.put(s)
	m.ext.extract(s, text, true)
	f := &s.features
	type contrib struct {
		name string
		v    float32
	}
	mask := uint32(1)<<m.Bits - 1
	v := f.hashedValue()
	byName := map[string]float32{}
	for i, h := range f.hashed {
		byName[f.names[i]] += m.Weights[h&mask] * v
	}
	var all []contrib
	for name, c := range byName {
		all = append(all, contrib{name, c})
	}
	base := 1 << m.Bits
	for i, d := range f.dense {
		if i > 0 && d != 0 { // 0 is the bias
			all = append(all, contrib{m.DenseNames[i], m.Weights[base+i] * d})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].v != all[j].v {
			return all[i].v > all[j].v
		}
		return all[i].name < all[j].name
	})
	var out []string
	for _, c := range all {
		if len(out) == limit || c.v <= 0.05 {
			break
		}
		if strings.ContainsAny(c.name, "0123456789") || utf8.RuneCountInString(c.name) < 2 || strings.HasPrefix(c.name, charGramMark) || strings.HasPrefix(c.name, "<s> ") {
			// Digits could be part of an order or card number; one
			// character, or a piece of an English word, explains nothing.
			continue
		}
		out = append(out, c.name)
	}
	return out
}

// extractor turns text into one language's features. Safe for concurrent
// use; scratch space comes from a pool.
type extractor struct {
	lang       Language
	denseNames []string
	lex        *lexicon
	pool       sync.Pool
}

type scratch struct {
	features
	tokens []string
	runes  []rune
}

func newExtractor(lang Language) *extractor {
	e := &extractor{lang: lang}
	e.pool.New = func() any { return &scratch{} }
	switch lang {
	case Chinese:
		e.denseNames = chineseDenseNames()
	case English:
		e.denseNames = englishDenseNames
		e.lex = sharedLexicon()
	}
	return e
}

func (e *extractor) get() *scratch  { return e.pool.Get().(*scratch) }
func (e *extractor) put(s *scratch) { e.pool.Put(s) }

// maxScoredBytes bounds the work per message: a chat message longer than
// this is scored on its first maxScoredBytes bytes.
const maxScoredBytes = 4096

func (e *extractor) extract(s *scratch, text string, explain bool) {
	text = boundText(text)
	f := &s.features
	f.reset(len(e.denseNames), explain)
	switch e.lang {
	case Chinese:
		norm := normalizeChinese(text)
		s.runes = f.chineseNgrams(norm, s.runes)
		f.chinesePatternFeatures(norm)
	case English:
		lower := strings.ToLower(text)
		s.tokens = englishTokens(s.tokens[:0], lower)
		s.runes = f.englishNgrams(s.tokens, s.runes)
		e.lex.denseFeatures(f.dense, text, lower)
	}
}

// boundText cuts text to at most maxScoredBytes on a rune boundary.
func boundText(text string) string {
	if len(text) <= maxScoredBytes {
		return text
	}
	cut := maxScoredBytes
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut]
}

func toLowerBounded(text string) string { return strings.ToLower(boundText(text)) }

// englishDenseNames: VADER's compound split by sign, the lexicon value
// (VADER plus support phrases and complaint patterns) split by sign, the
// complaint patterns alone, and whether the text reads as a plain request.
var englishDenseNames = []string{"bias", "vader positive", "vader negative", "support lexicon positive", "support lexicon negative", "complaint pattern", "plain request"}

func (l *lexicon) denseFeatures(d []float32, text, lower string) {
	value, compound, patterns, request := l.lexical(text, lower)
	d[0] = 1
	d[1] = float32(max(0, compound))
	d[2] = float32(max(0, -compound))
	d[3] = float32(max(0, value))
	d[4] = float32(max(0, -value))
	d[5] = float32(min(2, -patterns/4))
	if request {
		d[6] = 1
	}
}

var (
	lexiconOnce sync.Once
	lexiconVal  lexicon
)

// sharedLexicon loads VADER once per process (~20 ms); it is read-only
// after loading.
func sharedLexicon() *lexicon {
	lexiconOnce.Do(func() { lexiconVal = newLexicon() })
	return &lexiconVal
}
