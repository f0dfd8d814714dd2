package sentiment

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// Example is one labelled training or validation text.
type Example struct {
	Text     string
	Negative bool
	// Source names the file it came from (model card, per-source figures).
	Source string
	// Weight multiplies the example's share of the loss (0 means 1).
	Weight float32
}

// TrainOptions configure Train. Zero fields take the defaults of
// DefaultTrainOptions.
type TrainOptions struct {
	Lang Language
	// Bits: 2^Bits hashed buckets (model size 4 bytes * 2^Bits).
	Bits   int
	Epochs int
	// LearningRate of AdaGrad; L2 regularisation per update.
	LearningRate float64
	L2           float64
	Seed         uint64
	// ValidationShare of each source is held out (by a hash of the text)
	// when no Validation set is given.
	ValidationShare float64
	// Validation, if set, is the validation set (Train does not split).
	Validation []Example
	// NegativeShare re-weights the validation set to this share of
	// negatives for calibration and the threshold: the share expected in
	// support traffic, not the share of the training data.
	NegativeShare float64
	// MinPrecision: the threshold is the one with the best F1 among those
	// whose (re-weighted) precision is at least this.
	MinPrecision float64
}

// DefaultTrainOptions are what `make models` uses.
func DefaultTrainOptions(lang Language) TrainOptions {
	return TrainOptions{Lang: lang, Bits: 19, Epochs: 4, LearningRate: 0.2, L2: 1e-7, Seed: 1,
		ValidationShare: 0.1, NegativeShare: 0.1, MinPrecision: 0}
}

// ErrNoData: too few examples of a class to train or validate.
var ErrNoData = errors.New("sentiment: not enough labelled examples")

func (o TrainOptions) validate() error {
	switch {
	case o.Lang != English && o.Lang != Chinese:
		return &UnknownLanguageError{Name: string(o.Lang)}
	case o.Bits < 10 || o.Bits > maxModelBits:
		return fmt.Errorf("sentiment: bits must be in [10, %d], got %d", maxModelBits, o.Bits)
	case o.Epochs < 1 || o.LearningRate <= 0 || o.L2 < 0:
		return fmt.Errorf("sentiment: epochs >= 1, learning rate > 0 and l2 >= 0 needed")
	case o.NegativeShare <= 0 || o.NegativeShare >= 1:
		return fmt.Errorf("sentiment: negative share must be in (0, 1), got %v", o.NegativeShare)
	case o.ValidationShare <= 0 || o.ValidationShare >= 1:
		return fmt.Errorf("sentiment: validation share must be in (0, 1), got %v", o.ValidationShare)
	case o.MinPrecision < 0 || o.MinPrecision >= 1:
		return fmt.Errorf("sentiment: min precision must be in [0, 1)")
	}
	return nil
}

// inValidation puts a stable tenth (ValidationShare) of texts in the
// validation split, by a hash of the text: the same text is always on the
// same side, whatever file or order it comes in.
func inValidation(text string, share float64) bool {
	return float64(hashString(fnvOffset, text)%10000) < share*10000
}

// SplitValidation splits examples into training and validation by a hash
// of the text.
func SplitValidation(all []Example, share float64) (train, val []Example) {
	for _, ex := range all {
		if inValidation(ex.Text, share) {
			val = append(val, ex)
		} else {
			train = append(train, ex)
		}
	}
	return train, val
}

// Train fits a model on examples, deterministically for given options and
// input order: AdaGrad logistic regression over hashed features with the
// classes weighted equally, then Platt scaling and the threshold on the
// validation split re-weighted to NegativeShare.
func Train(examples []Example, opts TrainOptions) (*Model, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	train, val := examples, opts.Validation
	if len(val) == 0 {
		train, val = SplitValidation(examples, opts.ValidationShare)
	}
	var trainNeg int
	for _, ex := range train {
		if ex.Negative {
			trainNeg++
		}
	}
	if trainNeg == 0 || trainNeg == len(train) {
		return nil, fmt.Errorf("%w: training data needs negative and other texts (%d of %d negative)", ErrNoData, trainNeg, len(train))
	}
	m := &Model{Lang: opts.Lang, Bits: opts.Bits, ext: newExtractor(opts.Lang)}
	m.DenseNames = m.ext.denseNames
	base := 1 << opts.Bits
	m.Weights = make([]float32, base+len(m.DenseNames))
	sumSq := make([]float32, len(m.Weights))
	// Each class carries half the total weight.
	classW := [2]float64{float64(len(train)) / 2 / float64(len(train)-trainNeg), float64(len(train)) / 2 / float64(trainNeg)}

	// Dense features (VADER costs most) are computed once per example.
	denseCache := make([]float32, len(train)*len(m.DenseNames))
	s := m.ext.get()
	for i, ex := range train {
		m.ext.extract(s, ex.Text, false)
		copy(denseCache[i*len(m.DenseNames):], s.dense)
	}
	order := make([]int, len(train))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5851f42d4c957f2d))
	lr, l2 := float32(opts.LearningRate), float32(opts.L2)
	mask := uint32(base - 1)
	for range opts.Epochs {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			ex := train[i]
			s.features.reset(len(m.DenseNames), false)
			m.ext.extractHashed(s, ex.Text)
			copy(s.dense, denseCache[i*len(m.DenseNames):(i+1)*len(m.DenseNames)])
			p := 1 / (1 + math.Exp(-m.raw(&s.features)))
			y := 0.0
			if ex.Negative {
				y = 1
			}
			w := classW[int(y)]
			if ex.Weight > 0 {
				w *= float64(ex.Weight)
			}
			g := float32((p - y) * w)
			v := s.features.hashedValue()
			step := func(j int, x float32) {
				gj := g*x + l2*m.Weights[j]
				sumSq[j] += gj * gj
				m.Weights[j] -= lr * gj / float32(math.Sqrt(float64(sumSq[j])+1e-8))
			}
			for _, h := range s.hashed {
				step(int(h&mask), v)
			}
			for d, x := range s.dense {
				if x != 0 {
					step(base+d, x)
				}
			}
		}
	}
	m.ext.put(s)

	scores, labels, sources := make([]float64, len(val)), make([]bool, len(val)), make([]string, len(val))
	valNeg := 0
	for i, ex := range val {
		s := m.ext.get()
		m.ext.extract(s, ex.Text, false)
		scores[i] = m.raw(&s.features)
		m.ext.put(s)
		labels[i], sources[i] = ex.Negative, ex.Source
		if ex.Negative {
			valNeg++
		}
	}
	if valNeg == 0 || valNeg == len(val) {
		return nil, fmt.Errorf("%w: validation split needs negative and other texts (%d of %d negative)", ErrNoData, valNeg, len(val))
	}
	weights := shareWeights(labels, opts.NegativeShare)
	m.PlattA, m.PlattB = plattFit(scores, labels, weights)
	probs := make([]float64, len(scores))
	for i, z := range scores {
		probs[i] = m.calibrate(z)
	}
	m.Threshold = chooseThreshold(probs, labels, weights, opts.MinPrecision)

	m.Card = Card{
		Language: opts.Lang, Bits: opts.Bits, Epochs: opts.Epochs, LearningRate: opts.LearningRate, L2: opts.L2, Seed: opts.Seed,
		NegativeShare: opts.NegativeShare, MinPrecision: opts.MinPrecision, Threshold: m.Threshold,
		Calibration: fmt.Sprintf("Platt scaling on the validation split re-weighted to %.0f%% negatives: P = 1/(1+exp(-(%.4f*z%+.4f)))", opts.NegativeShare*100, m.PlattA, m.PlattB),
		Validation:  Figures(probs, labels, weights, m.Threshold),
		Sources:     sourceStats(train, val),
	}
	for _, src := range m.Card.Sources {
		var p []float64
		var l []bool
		for i := range val {
			if sources[i] == src.Name {
				p, l = append(p, probs[i]), append(l, labels[i])
			}
		}
		f := Figures(p, l, shareWeights(l, opts.NegativeShare), m.Threshold)
		m.Card.PerSource = append(m.Card.PerSource, SourceFigures{Name: src.Name, Figures: f})
	}
	return m, nil
}

// extractHashed extracts only the hashed features (training keeps the
// dense ones cached).
func (e *extractor) extractHashed(s *scratch, text string) {
	if e.lang == English {
		// The dense lexicon features are cached; skip VADER here.
		lower := toLowerBounded(text)
		s.tokens = englishTokens(s.tokens[:0], lower)
		s.runes = s.features.englishNgrams(s.tokens, s.runes)
		return
	}
	norm := normalizeChinese(boundText(text))
	s.runes = s.features.chineseNgrams(norm, s.runes)
}

// shareWeights weighs labels so negatives make up share of the total.
func shareWeights(labels []bool, share float64) []float64 {
	neg := 0
	for _, l := range labels {
		if l {
			neg++
		}
	}
	w := make([]float64, len(labels))
	for i, l := range labels {
		switch {
		case l:
			w[i] = share / float64(max(neg, 1))
		default:
			w[i] = (1 - share) / float64(max(len(labels)-neg, 1))
		}
	}
	return w
}

// plattFit fits P = sigmoid(a*z+b) to weighted labels by Newton's method
// with step halving, so every step lowers the weighted log loss.
func plattFit(z []float64, y []bool, w []float64) (a, b float64) {
	loss := func(a, b float64) float64 {
		var l float64
		for i := range z {
			m := a*z[i] + b
			// log(1+exp(-m)) for a negative text, log(1+exp(m)) otherwise,
			// computed without overflow.
			if !y[i] {
				m = -m
			}
			l += w[i] * (math.Max(-m, 0) + math.Log1p(math.Exp(-math.Abs(m))))
		}
		return l
	}
	a, b = 1, 0
	cur := loss(a, b)
	for range 100 {
		var ga, gb, haa, hab, hbb float64
		for i := range z {
			p := 1 / (1 + math.Exp(-(a*z[i] + b)))
			t := 0.0
			if y[i] {
				t = 1
			}
			d := (p - t) * w[i]
			ga += d * z[i]
			gb += d
			h := p * (1 - p) * w[i]
			haa += h * z[i] * z[i]
			hab += h * z[i]
			hbb += h
		}
		haa += 1e-12
		hbb += 1e-12
		det := haa*hbb - hab*hab
		if det <= 0 {
			break
		}
		da := (hbb*ga - hab*gb) / det
		db := (haa*gb - hab*ga) / det
		step, improved := 1.0, false
		for range 30 {
			na, nb := a-step*da, b-step*db
			if l := loss(na, nb); l <= cur {
				a, b, cur, improved = na, nb, l, true
				break
			}
			step /= 2
		}
		if !improved || (math.Abs(step*da) < 1e-10 && math.Abs(step*db) < 1e-10) {
			break
		}
	}
	return a, b
}

// chooseThreshold is the probability threshold with the best weighted F1
// of the negative class among those with weighted precision >= minP (the
// best F1 overall if none reaches minP).
func chooseThreshold(p []float64, y []bool, w []float64, minP float64) float64 {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return p[idx[i]] > p[idx[j]] })
	var totalPos float64
	for i := range y {
		if y[i] {
			totalPos += w[i]
		}
	}
	var tp, fp float64
	best, bestF, bestAny, bestAnyF := 0.5, -1.0, 0.5, -1.0
	for k, i := range idx {
		if y[i] {
			tp += w[i]
		} else {
			fp += w[i]
		}
		if k+1 < len(idx) && p[idx[k+1]] == p[i] {
			continue // thresholds fall between distinct scores
		}
		prec, rec := tp/(tp+fp), tp/totalPos
		f := 2 * prec * rec / (prec + rec + 1e-12)
		if f > bestAnyF {
			bestAny, bestAnyF = p[i], f
		}
		if prec >= minP && f > bestF {
			best, bestF = p[i], f
		}
	}
	t := best
	if bestF < 0 {
		t = bestAny
	}
	return math.Min(math.Max(t, 1e-6), 1-1e-6)
}

// sourceStats counts each source's training and validation examples.
func sourceStats(train, val []Example) []SourceStats {
	by := map[string]*SourceStats{}
	get := func(name string) *SourceStats {
		if by[name] == nil {
			by[name] = &SourceStats{Name: name, Licence: licenceOf(name)}
		}
		return by[name]
	}
	for _, ex := range train {
		s := get(ex.Source)
		s.Train++
		if ex.Negative {
			s.TrainNegative++
		}
	}
	for _, ex := range val {
		s := get(ex.Source)
		s.Validation++
		if ex.Negative {
			s.ValidationNegative++
		}
	}
	out := make([]SourceStats, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b SourceStats) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}
