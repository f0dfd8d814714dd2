package cli

import (
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/version"
)

func newRunCmd(g *globals) *cobra.Command {
	var group, httpAddr string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the processor against the Kafka and Redis in the config",
		Example: `  cxstream run --config cxstream.yaml
  CXSTREAM_KAFKA_BROKERS=kafka:9092 CXSTREAM_REDIS_ADDRS=redis:6379 cxstream run`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd, func(c *config.Config) {
				if group != "" {
					c.Kafka.Group = group
				}
				if cmd.Flags().Changed("http-addr") {
					c.HTTP.Addr = httpAddr
				}
			})
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			tuneGC()
			// Check everything before joining the group: an instance
			// that cannot work must not take partitions from one that can.
			report := runner.Check(cmd.Context(), cfg, log)
			for _, c := range report {
				if c.Err == nil {
					log.Info("check passed", zap.String("check", c.Name), zap.String("found", c.Detail))
				}
			}
			if err := report.Err(); err != nil {
				return err
			}
			p, err := runner.New(cfg, log, runner.Options{})
			if err != nil {
				return err
			}
			log.Info("cxstream running", zap.Strings("brokers", cfg.Kafka.Brokers), zap.String("group", cfg.Kafka.Group),
				zap.Strings("redis", cfg.Redis.Addrs), zap.String("http", p.HTTPAddr()), zap.String("instance_id", cfg.Kafka.InstanceID), zap.String("version", version.String()))
			err = p.Run(cmd.Context())
			log.Info("cxstream stopped")
			return err
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "consumer group (overrides kafka.group)")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "", "metrics and probes address, \"\" to disable (overrides http.addr)")
	return cmd
}

// tuneGC trades memory for CPU: the processor's live heap is small (state
// lives in Redis), so collecting at 4x instead of 2x of it saves a few
// percent of CPU. An operator's GOGC wins.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}
