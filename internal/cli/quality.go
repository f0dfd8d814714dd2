package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/report"
)

func newQualityCmd(g *globals) *cobra.Command {
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "quality",
		Short: "Invalid, late and dead-letter rates per input topic and reason over a window",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if window <= 0 {
				return fmt.Errorf("--window must be positive, got %s", window)
			}
			cl, cfg, err := g.kafkaClient(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := requireTopics(cmd.Context(), cl, cfg, cfg.Topics.Clickstream, cfg.Topics.Chat, cfg.Topics.DeadLetter); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			newReader := func(opts ...kgo.Opt) (*kgo.Client, error) { return newKafkaClient(cfg, zap.NewNop(), opts...) }
			qs, err := report.Quality(ctx, cl, newReader, cfg.Topics, window)
			if err != nil {
				return fmt.Errorf("kafka at %v: %w", cfg.Kafka.Brokers, err)
			}
			report.PrintQuality(cmd.OutOrStdout(), qs, window)
			return nil
		},
	}
	cmd.Flags().DurationVar(&window, "window", time.Hour, "how far back to look")
	return cmd
}
