package cli

import (
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/demo"
	"github.com/cxstream/cxstream/internal/gen"
)

func newDemoCmd(g *globals) *cobra.Command {
	opts := demo.Options{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run everything in-process (Kafka, Redis, generator, processor) and watch the alerts",
		Long:  "demo needs nothing installed: it starts an in-process Kafka cluster (kfake) and Redis (miniredis), generates synthetic clickstream and chat traffic, runs the real processor over real client connections, prints alerts live and a summary at the end. Ctrl-C stops it early, still with the summary.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := gen.ValidateLocale(opts.Locale); err != nil {
				return err
			}
			level := g.logLevel
			if level == "" {
				level = "warn"
			}
			log, err := config.NewLogger(config.Log{Level: level, Format: "console"})
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			return demo.Run(cmd.Context(), opts, cmd.OutOrStdout(), log.WithOptions(zap.IncreaseLevel(zap.WarnLevel)))
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.Duration, "duration", 20*time.Second, "how long to generate traffic")
	f.IntVar(&opts.Users, "users", 5000, "distinct synthetic users")
	f.Float64Var(&opts.Rate, "rate", 2000, "events per second")
	f.Uint64Var(&opts.Seed, "seed", 1, "generator seed")
	f.IntVar(&opts.Partitions, "partitions", 4, "partitions of each input topic")
	f.StringVar(&opts.HTTPAddr, "http-addr", "127.0.0.1:0", "metrics address while the demo runs, \"\" to disable")
	f.BoolVar(&opts.Quiet, "quiet", false, "print only the summary")
	f.StringVar(&opts.Locale, "locale", gen.LocaleMixed, "language of the synthetic chats: zh, en or mixed")
	return cmd
}
