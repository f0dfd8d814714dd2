package cli

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cxstream/cxstream/processors/sentiment"
)

func newSentimentCmd() *cobra.Command {
	var models map[string]string
	var explain bool
	cmd := &cobra.Command{
		Use:   "sentiment",
		Short: "Score messages from stdin, one per line: score, label, confidence, text (tab-separated)",
		Long: `Scores each line with the learned model of its language (Chinese or English, told apart by
script; other languages score neutral with confidence 0.1). The score is in [-1, 1]; the
confidence is the calibrated probability that the label is right (negative vs not negative).
--explain inserts the language, P(negative) and the reasons before the text.`,
		Example: `  echo "I was charged twice, I want a refund" | cxstream sentiment
  echo "这个课程完全不符合我的期望,我很失望。" | cxstream sentiment --explain
  cxstream sentiment --model zh=my-zh.bin < my-support-messages.txt`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := sentiment.NewScorer(models)
			if err != nil {
				return err
			}
			in := bufio.NewScanner(cmd.InOrStdin())
			in.Buffer(make([]byte, 64<<10), 1<<20)
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			for in.Scan() {
				sc := s.Score(in.Text())
				if explain {
					lang := string(sc.Language)
					if lang == "" {
						lang = "unknown"
					}
					fmt.Fprintf(out, "%.4f\t%s\t%.3f\t%s\t%.3f\t%s\t%s\n", sc.Value, sc.Label, sc.Confidence, lang, sc.Probability, strings.Join(s.Reasons(in.Text()), "; "), in.Text())
					continue
				}
				fmt.Fprintf(out, "%.4f\t%s\t%.3f\t%s\n", sc.Value, sc.Label, sc.Confidence, in.Text())
			}
			return in.Err()
		},
	}
	cmd.Flags().StringToStringVar(&models, "model", nil, "language=model file to use instead of the embedded model (as sentiment.models in the config)")
	cmd.Flags().BoolVar(&explain, "explain", false, "also print language, P(negative) and reasons")
	cmd.AddCommand(newSentimentTrainCmd())
	return cmd
}
