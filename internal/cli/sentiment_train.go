package cli

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cxstream/cxstream/processors/sentiment"
)

func newSentimentTrainCmd() *cobra.Command {
	var (
		lang, out   string
		valFiles    []string
		keepNeutral bool
		opts        = sentiment.DefaultTrainOptions(sentiment.English)
	)
	cmd := &cobra.Command{
		Use:   "train --lang zh|en DATA... -o model.bin",
		Short: "Train a sentiment model on labelled files and write it with its model card",
		Long: `Trains a hashed n-gram logistic regression (pure Go, deterministic for a given seed and input) on
labelled files in any form sentiment-eval reads (TSV support chats, sentiment-dev, SST-2, GoEmotions,
SemEval, and the text,neg CSV of ../shared/data/sentiment-train/zh). A file name may end in @N to
weigh its examples N times (your own support messages, say).

Validation: the --val files if given, else a hash-chosen share of every file (--val-share). The
probability is calibrated (Platt scaling) and the threshold chosen on the validation split
re-weighted to --negative-share negatives. Writes the model and, beside it, its model card
(model.card.md: sources, licences, sizes, validation figures). Load it with sentiment.models.`,
		Example: `  cxstream sentiment train --lang zh ../shared/data/sentiment-train/zh/*.csv my-chats.tsv@5 -o zh.bin
  cxstream sentiment train --lang en --val semeval-2017-test.txt tweets.tsv -o en.bin`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := sentiment.ParseLanguage(lang)
			if err != nil {
				return err
			}
			opts.Lang = l
			if out == "" {
				return fmt.Errorf("-o model file is required")
			}
			ro := readOptions{KeepNeutral: keepNeutral}
			log := cmd.ErrOrStderr()
			train, err := loadExamples(args, ro, l, log)
			if err != nil {
				return err
			}
			if len(valFiles) > 0 {
				// Validation keeps neutral texts (as not negative): support
				// traffic is mostly neutral.
				if opts.Validation, err = loadExamples(valFiles, readOptions{KeepNeutral: true}, l, log); err != nil {
					return err
				}
			}
			fmt.Fprintf(log, "training %s on %d texts\n", l, len(train))
			m, err := sentiment.Train(train, opts)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if _, err := m.WriteTo(&buf); err != nil {
				return err
			}
			if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
				return err
			}
			var card bytes.Buffer
			m.Card.WriteMarkdown(&card, baseName(out), buf.Len())
			cardPath := strings.TrimSuffix(out, ".bin") + ".card.md"
			if err := os.WriteFile(cardPath, card.Bytes(), 0o644); err != nil {
				return err
			}
			v := m.Card.Validation
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes, weights %08x) and %s: validation n=%d auc=%.3f threshold=%.3f precision=%.3f recall=%.3f at %.0f%% negatives\n",
				out, buf.Len(), m.WeightsHash(), cardPath, v.N, v.AUC, m.Threshold, v.Precision, v.Recall, opts.NegativeShare*100)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&lang, "lang", "", "language of the model: zh or en (required)")
	f.StringVarP(&out, "output", "o", "", "model file to write (its card goes beside it as .card.md)")
	f.StringArrayVar(&valFiles, "val", nil, "validation file (repeatable; neutral texts kept as not negative); default: a hash-chosen share of every input")
	f.BoolVar(&keepNeutral, "keep-neutral", false, "count neutral tweets and GoEmotions comments as not negative (default: leave them out)")
	f.IntVar(&opts.Bits, "bits", opts.Bits, "hash 2^bits buckets (model size 4*2^bits bytes)")
	f.IntVar(&opts.Epochs, "epochs", opts.Epochs, "passes over the training data")
	f.Float64Var(&opts.LearningRate, "learning-rate", opts.LearningRate, "AdaGrad learning rate")
	f.Float64Var(&opts.L2, "l2", opts.L2, "L2 regularisation")
	f.Uint64Var(&opts.Seed, "seed", opts.Seed, "shuffling seed (same seed and input, same model)")
	f.Float64Var(&opts.ValidationShare, "val-share", opts.ValidationShare, "share of each input held out for validation when no --val is given")
	f.Float64Var(&opts.NegativeShare, "negative-share", opts.NegativeShare, "share of negatives expected in support traffic: validation is re-weighted to it")
	f.Float64Var(&opts.MinPrecision, "min-precision", opts.MinPrecision, "the threshold has the best F1 among those with at least this precision (re-weighted)")
	_ = cmd.MarkFlagRequired("lang")
	return cmd
}

// loadExamples reads labelled files (path[@weight]); texts of another
// language than lang are left out (an English line in a Chinese set).
func loadExamples(paths []string, o readOptions, lang sentiment.Language, log interface{ Write([]byte) (int, error) }) ([]sentiment.Example, error) {
	var out []sentiment.Example
	for _, arg := range paths {
		path, weight := arg, float32(1)
		if i := strings.LastIndexByte(arg, '@'); i > 0 {
			w, err := strconv.ParseFloat(arg[i+1:], 32)
			if err != nil || w <= 0 {
				return nil, fmt.Errorf("%s: weight after @ must be a positive number", arg)
			}
			path, weight = arg[:i], float32(w)
		}
		set, bad, err := readLabelledFile(path, o)
		if err != nil {
			return nil, err
		}
		other := 0
		src := sentiment.SourceName(path)
		for _, lt := range set {
			if sentiment.DetectLanguage(lt.Text) != lang {
				other++
				continue
			}
			out = append(out, sentiment.Example{Text: lt.Text, Negative: lt.Negative, Source: src, Weight: weight})
		}
		reportBad(log, path, bad)
		if other > 0 {
			fmt.Fprintf(log, "%s: %d texts not in %s left out\n", path, other, lang)
		}
	}
	return out, nil
}

func reportBad(log interface{ Write([]byte) (int, error) }, path string, bad []badLine) {
	for i, b := range bad {
		if i == 5 {
			fmt.Fprintf(log, "%s: ... %d malformed lines skipped in all\n", path, len(bad))
			break
		}
		fmt.Fprintf(log, "%s:%d: skipped: %s\n", path, b.Line, b.Reason)
	}
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}
