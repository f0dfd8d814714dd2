package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cxstream/cxstream/internal/report"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/state"
)

func newSegmentsCmd(g *globals) *cobra.Command {
	var hours int
	var wallClock bool
	cmd := &cobra.Command{
		Use:   "segments",
		Short: "Users per segment now, and changes of segment per hour over the last 48 hours",
		Long: `segments scans every user's state in Redis and prints how many users are in each
configured segment (segments: in the configuration) and, per hour, how many users entered
each segment.

The hours are of event time, like everything cxstream computes: the 48 hours up to the
latest change of segment found in the state (so a backfill or a replayed history reads as it
happened), or up to the wall clock with --now. A user's segment is as of their latest click
or timer; each user keeps their last segments.history changes, so a user who changed more
often within the window is counted for the kept changes only (the report says how many).`,
		Example: "  cxstream segments --config cxstream.yaml\n  cxstream segments --hours 12 --now",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if hours < 0 || hours > report.SegmentHours {
				return fmt.Errorf("--hours must be between 0 and %d, got %d", report.SegmentHours, hours)
			}
			cfg, _, err := g.load(cmd, nil)
			if err != nil {
				return err
			}
			if !cfg.Segments.Enabled {
				return errors.New("segments are off (segments.enabled: false): no user has a segment")
			}
			rdb, err := runner.NewRedis(cfg.Redis)
			if err != nil {
				return err
			}
			defer rdb.Close()
			var until int64
			if wallClock {
				until = time.Now().UnixMilli()
			}
			stats, err := report.Segments(cmd.Context(), state.New(rdb, state.Options{Prefix: cfg.Redis.KeyPrefix}), cfg.Segments.Names(), cfg.Segments.History, until)
			if err != nil {
				return fmt.Errorf("redis at %v: %w", cfg.Redis.Addrs, err)
			}
			report.PrintSegments(cmd.OutOrStdout(), stats, hours)
			return nil
		},
	}
	cmd.Flags().IntVar(&hours, "hours", report.SegmentHours, fmt.Sprintf("hours of changes to print (0: none; at most %d)", report.SegmentHours))
	cmd.Flags().BoolVar(&wallClock, "now", false, "end the hours at the wall clock instead of the latest change (event time)")
	return cmd
}
