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
	var (
		byHour      int
		by, attrArg string
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "funnel",
		Short: "Conversion report per funnel and step, over all users' state in Redis",
		Long: "funnel scans every user's state (exactly-once by construction, so crashes never skew it) and prints, per configured funnel, how many attempts reached each step, conversion from entry and from the previous step, who is at each step now, and time to convert. --by-hour adds entries, conversions and drop-offs per hour (each user keeps 48 hours).\n\n" +
			"--by segment or --by property.<name> breaks each funnel's attempts down by group: attempts, the share reaching each step, conversions and time to convert (median, p90) per group. --attribution first (default) groups an attempt by its value at entry, last by its value at the last step it reached. A funnel keeps only the breakdowns listed under its funnels[].breakdowns, from the time they are listed.",
		Example: "  cxstream funnel --config cxstream.yaml\n  cxstream funnel --config cxstream.yaml --by property.utm_source --attribution last\n  cxstream funnel --config cxstream.yaml --by segment --json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if byHour < 0 || byHour > funnel.HourHistory {
				return fmt.Errorf("--by-hour must not be negative or above %d, got %d", funnel.HourHistory, byHour)
			}
			attr, err := funnel.ParseAttribution(attrArg)
			if err != nil {
				return fmt.Errorf("--attribution: %w", err)
			}
			if by == "" && cmd.Flags().Changed("attribution") {
				return fmt.Errorf("--attribution needs --by (segment or property.<name>)")
			}
			if by != "" && byHour > 0 {
				return fmt.Errorf("--by and --by-hour are separate reports; give one of them")
			}
			cfg, _, err := g.load(cmd, nil)
			if err != nil {
				return err
			}
			fp, err := funnel.New(cfg.Funnels, cfg.Processing.AllowedLateness, funnel.WithLimits(cfg.Breakdown))
			if err != nil {
				return err
			}
			if by != "" {
				if err := report.CheckBreakdown(fp, by); err != nil {
					return fmt.Errorf("--by: %w", err)
				}
			}
			rdb, err := runner.NewRedis(cfg.Redis)
			if err != nil {
				return err
			}
			defer rdb.Close()
			st := state.New(rdb, state.Options{Prefix: cfg.Redis.KeyPrefix})
			out := cmd.OutOrStdout()
			if by != "" {
				stats, err := report.FunnelBreakdowns(cmd.Context(), st, fp, by, attr)
				if err != nil {
					return fmt.Errorf("redis at %v: %w", cfg.Redis.Addrs, err)
				}
				if asJSON {
					return report.WriteBreakdownsJSON(out, stats)
				}
				report.PrintBreakdowns(out, stats)
				return nil
			}
			stats, err := report.Funnels(cmd.Context(), st, fp)
			if err != nil {
				return fmt.Errorf("redis at %v: %w", cfg.Redis.Addrs, err)
			}
			if asJSON {
				return report.WriteFunnelsJSON(out, stats, byHour)
			}
			report.Print(out, stats)
			if byHour > 0 {
				report.PrintByHour(out, stats, byHour)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&byHour, "by-hour", 0, "also print entries, conversions and drop-offs for the last N hours (at most 48)")
	cmd.Flags().StringVar(&by, "by", "", "break attempts down by segment or property.<name> (a breakdown the funnel keeps: funnels[].breakdowns)")
	cmd.Flags().StringVar(&attrArg, "attribution", string(funnel.FirstTouch), "with --by: first (the value at entry) or last (the value at the last step reached)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}
