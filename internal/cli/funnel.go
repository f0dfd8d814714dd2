package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cxstream/cxstream/internal/report"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors/funnel"
)

func newFunnelCmd(g *globals) *cobra.Command {
	var byHour int
	cmd := &cobra.Command{
		Use:   "funnel",
		Short: "Conversion report per funnel and step, over all users' state in Redis",
		Long:  "funnel scans every user's state (exactly-once by construction, so crashes never skew it) and prints, per configured funnel, how many attempts reached each step, conversion from entry and from the previous step, who is at each step now, and time to convert. --by-hour adds entries, conversions and drop-offs per hour (each user keeps 48 hours).",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if byHour < 0 || byHour > funnel.HourHistory {
				return fmt.Errorf("--by-hour must not be negative or above %d, got %d", funnel.HourHistory, byHour)
			}
			cfg, _, err := g.load(cmd, nil)
			if err != nil {
				return err
			}
			fp, err := funnel.New(cfg.Funnels, cfg.Processing.AllowedLateness)
			if err != nil {
				return err
			}
			rdb, err := runner.NewRedis(cfg.Redis)
			if err != nil {
				return err
			}
			defer rdb.Close()
			stats, err := report.Funnels(cmd.Context(), state.New(rdb, state.Options{Prefix: cfg.Redis.KeyPrefix}), fp)
			if err != nil {
				return fmt.Errorf("redis at %v: %w", cfg.Redis.Addrs, err)
			}
			report.Print(cmd.OutOrStdout(), stats)
			if byHour > 0 {
				report.PrintByHour(cmd.OutOrStdout(), stats, byHour)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&byHour, "by-hour", 0, "also print entries, conversions and drop-offs for the last N hours (at most 48)")
	return cmd
}
