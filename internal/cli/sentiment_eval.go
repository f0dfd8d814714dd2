package cli

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cxstream/cxstream/processors/sentiment"
)

func newSentimentEvalCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sentiment-eval FILE...",
		Short: "Report the shipped scorer's ROC AUC and negative precision/recall on labelled files",
		Long: `Each FILE is tab-separated, one example a line, in either form:
  negative|neutral|positive <TAB> text     (support chats, test/testdata/support_chats.tsv)
  text <TAB> 0|1                           (review sentences, 0 = negative, as in shared/data/sentiment-dev)
Lines starting with # are comments.`,
		Example: "  cxstream sentiment-eval test/testdata/support_chats.tsv ../shared/data/sentiment-dev/*_labelled.txt",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sentiment.NewDefaultScorer()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "shipped threshold: negative at score <= %.2f\n", s.NegativeThreshold)
			fmt.Fprintf(out, "%-28s %6s %6s %7s %10s %7s\n", "set", "n", "neg", "auc", "precision", "recall")
			for _, path := range args {
				set, err := ReadLabelled(path)
				if err != nil {
					return err
				}
				r := sentiment.Evaluate(s, set)
				fmt.Fprintf(out, "%-28s %6d %6d %7.3f %10.3f %7.3f\n", filepath.Base(path), r.N, r.Negatives, r.AUC, r.Precision, r.Recall)
			}
			return nil
		},
	}
}

// ReadLabelled reads a labelled file in either supported form.
func ReadLabelled(path string) ([]sentiment.Labelled, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var set []sentiment.Labelled
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		i, j := strings.IndexByte(text, '\t'), strings.LastIndexByte(text, '\t')
		if i < 0 {
			return nil, fmt.Errorf("%s:%d: no tab", path, line)
		}
		switch head, tail := text[:i], strings.TrimSpace(text[j+1:]); {
		case head == "negative" || head == "neutral" || head == "positive":
			set = append(set, sentiment.Labelled{Text: text[i+1:], Negative: head == "negative"})
		case tail == "0" || tail == "1":
			set = append(set, sentiment.Labelled{Text: text[:j], Negative: tail == "0"})
		default:
			return nil, fmt.Errorf("%s:%d: neither a label first nor 0/1 last", path, line)
		}
	}
	return set, sc.Err()
}
