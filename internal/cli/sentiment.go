package cli

import (
	"bufio"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cxstream/cxstream/processors/sentiment"
)

func newSentimentCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "sentiment",
		Short: "Score messages from stdin, one per line: score, label, confidence, text (tab-separated)",
		Example: `  echo "I was charged twice, I want a refund" | cxstream sentiment
  cxstream sentiment < my-support-messages.txt`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := sentiment.NewDefaultScorer()
			if err != nil {
				return err
			}
			in := bufio.NewScanner(cmd.InOrStdin())
			in.Buffer(make([]byte, 64<<10), 1<<20)
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			for in.Scan() {
				sc := s.Score(in.Text())
				fmt.Fprintf(out, "%.4f\t%s\t%.3f\t%s\n", sc.Value, sc.Label, sc.Confidence, in.Text())
			}
			return in.Err()
		},
	}
}
