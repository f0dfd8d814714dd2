package cli

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cxstream/cxstream/processors/sentiment"
)

func newSentimentEvalCmd() *cobra.Command {
	var (
		lang        string
		models      map[string]string
		calibration bool
		keepNeutral bool
		lexicon     bool
	)
	cmd := &cobra.Command{
		Use:   "sentiment-eval FILE...",
		Short: "Report the shipped scorer's quality per language on labelled files: ROC AUC, precision/recall at its threshold, neutral flagged, calibration",
		Long: `Each FILE is labelled text in any form ` + "`cxstream sentiment train`" + ` reads, e.g. tab-separated
  negative|neutral|positive <TAB> text     (support chats, test/testdata/support_chats*.tsv)
  text <TAB> 0|1                           (review sentences, 0 = negative, as in shared/data/sentiment-dev)
  text,neg,...                             (CSV, ../shared/data/sentiment-train/zh)
plus SST-2, GoEmotions and SemEval files. Lines starting with # are comments; a malformed line is
reported with its number and skipped. Messages are grouped by detected language (--lang keeps one).

Columns: n messages, neg negatives, ROC AUC of P(negative), precision and recall of the negative
label at the shipped threshold (on the file as it is, not re-weighted), neutral%: share of the
messages labelled neutral that are flagged negative, other%: share of all not-negative ones flagged.`,
		Example: "  cxstream sentiment-eval --lang zh test/testdata/support_chats_zh*.tsv\n  cxstream sentiment-eval test/testdata/support_chats.tsv ../shared/data/sentiment-dev/*_labelled.txt",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			want := sentiment.Unknown
			if lang != "" {
				l, err := sentiment.ParseLanguage(lang)
				if err != nil {
					return err
				}
				want = l
			}
			s, err := sentiment.NewScorer(models)
			if err != nil {
				return err
			}
			var scorer sentiment.Scorer = s
			out := cmd.OutOrStdout()
			if lexicon {
				if scorer, err = sentiment.NewLexiconScorer(); err != nil {
					return err
				}
				fmt.Fprintln(out, "lexicon scorer (the previous default, English only): AUC of -score; calibration is of (1-score)/2")
			}
			for _, l := range sentiment.Languages {
				if m := s.Model(l); m != nil && !lexicon && (want == sentiment.Unknown || want == l) {
					fmt.Fprintf(out, "%s model: negative when P(negative) >= %.3f (score <= %.2f)\n", l, m.Threshold, s.NegativeThreshold)
				}
			}
			fmt.Fprintf(out, "%-32s %4s %6s %5s %6s %9s %7s %8s %6s\n", "set", "lang", "n", "neg", "auc", "precision", "recall", "neutral%", "other%")
			for _, path := range args {
				set, bad, err := readLabelledFile(path, readOptions{KeepNeutral: keepNeutral})
				if err != nil {
					return err
				}
				reportBad(cmd.ErrOrStderr(), path, bad)
				evaluateFile(out, scorer, filepath.Base(path), set, want, calibration)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&lang, "lang", "", "report only messages detected as this language (zh or en); default all")
	f.StringToStringVar(&models, "model", nil, "language=model file to evaluate instead of the embedded model")
	f.BoolVar(&calibration, "calibration", true, "print the calibration table of each set")
	f.BoolVar(&keepNeutral, "keep-neutral", true, "keep neutral SemEval tweets and GoEmotions comments (as not negative)")
	f.BoolVar(&lexicon, "lexicon", false, "evaluate the previous lexicon scorer (VADER + patterns + Naive Bayes) instead, as a baseline")
	return cmd
}

func evaluateFile(out io.Writer, s sentiment.Scorer, name string, set []labelledText, want sentiment.Language, calibration bool) {
	type group struct {
		p                  []float64
		y                  []bool
		tp, fp, fn         int
		neutral, neutralFl int
		other              int
	}
	groups := map[sentiment.Language]*group{}
	for _, ex := range set {
		sc := s.Score(ex.Text)
		if _, lexical := s.(*sentiment.LexiconScorer); lexical {
			// No probability: rank by the score, and say what the text is.
			sc.Probability, sc.Language = (1-sc.Value)/2, sentiment.DetectLanguage(ex.Text)
		}
		if want != sentiment.Unknown && sc.Language != want {
			continue
		}
		g := groups[sc.Language]
		if g == nil {
			g = &group{}
			groups[sc.Language] = g
		}
		g.p, g.y = append(g.p, sc.Probability), append(g.y, ex.Negative)
		flagged := sc.Label == sentiment.Negative
		switch {
		case flagged && ex.Negative:
			g.tp++
		case flagged:
			g.fp++
		case ex.Negative:
			g.fn++
		}
		if !ex.Negative {
			g.other++
		}
		if ex.Neutral {
			g.neutral++
			if flagged {
				g.neutralFl++
			}
		}
	}
	for _, l := range append(sentiment.Languages, sentiment.Unknown) {
		g := groups[l]
		if g == nil {
			continue
		}
		f := sentiment.Figures(g.p, g.y, nil, 0.5)
		ratio := func(a, b int) string {
			if b == 0 {
				return "-"
			}
			return fmt.Sprintf("%.3f", float64(a)/float64(b))
		}
		aucText := "-"
		if f.Negatives > 0 && f.Negatives < f.N && l != sentiment.Unknown {
			aucText = fmt.Sprintf("%.3f", f.AUC)
		}
		ln := string(l)
		if l == sentiment.Unknown {
			ln = "?"
		}
		fmt.Fprintf(out, "%-32s %4s %6d %5d %6s %9s %7s %8s %6s\n", name, ln, f.N, f.Negatives, aucText,
			ratio(g.tp, g.tp+g.fp), ratio(g.tp, g.tp+g.fn), ratio(g.neutralFl, g.neutral), ratio(g.fp, g.other))
		if calibration && l != sentiment.Unknown {
			fmt.Fprintf(out, "  calibration (%s, %s): P(negative) bin: n, mean predicted, observed negative share\n", name, l)
			for _, b := range f.Calibration {
				if b.N > 0 {
					fmt.Fprintf(out, "    %.2f-%.2f %6d %6.3f %6.3f\n", b.Lo, b.Hi, b.N, b.Predicted, b.Observed)
				}
			}
		}
	}
}
