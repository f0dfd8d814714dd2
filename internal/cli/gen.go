package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/gen"
)

func newGenCmd(g *globals) *cobra.Command {
	var (
		users    int
		rate     float64
		count    int64
		duration time.Duration
		seed     uint64
		bad      float64
		locale   string
		history  dayDuration
		chat     float64
		until    string
	)
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Produce synthetic clickstream and chat events to Kafka",
		Example: "  cxstream gen --brokers localhost:9092 --rate 5000 --duration 1m\n" +
			"  cxstream gen --history 365d --count 5000 --users 300 --rate 50000   # a year of history, then stop",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := gen.ValidateLocale(locale); err != nil {
				return err
			}
			var end time.Time
			if until != "" {
				if history.Duration == 0 {
					return errors.New("--until needs --history")
				}
				var err error
				if end, err = time.Parse(time.RFC3339, until); err != nil {
					return fmt.Errorf("--until: not an RFC 3339 time: %w", err)
				}
			}
			if chat < 0 || chat > 1 {
				return fmt.Errorf("--chat-share must be within [0, 1], got %v", chat)
			}
			if chat == 0 {
				chat = -1 // the generator's "none"; its 0 means the default
			}
			if history.Duration > 0 && count <= 0 {
				return fmt.Errorf("--history needs --count: %w", gen.ErrHistoryCount)
			}
			cl, cfg, err := g.kafkaClient(cmd, kgo.ProducerLinger(5*time.Millisecond))
			if err != nil {
				return err
			}
			defer cl.Close()
			pingCtx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			if err := cl.Ping(pingCtx); err != nil {
				return fmt.Errorf("kafka at %v unreachable: %w", cfg.Kafka.Brokers, err)
			}
			if err := requireTopics(cmd.Context(), cl, cfg, cfg.Topics.Clickstream, cfg.Topics.Chat); err != nil {
				return err
			}
			ctx := cmd.Context()
			if duration > 0 {
				var stop context.CancelFunc
				ctx, stop = context.WithTimeout(ctx, duration)
				defer stop()
			}
			var stats gen.Stats
			start := time.Now()
			err = gen.New(gen.Options{Users: users, Seed: seed, BadShare: bad, Locale: locale, Properties: true, ChatShare: chat,
				History: time.Duration(history.Duration), Until: end}).
				Produce(ctx, cl, gen.Topics{Clickstream: cfg.Topics.Clickstream, Chat: cfg.Topics.Chat}, rate, count, &stats)
			produced, failed := stats.Produced.Load(), stats.Failed.Load()
			fmt.Fprintf(cmd.OutOrStdout(), "produced %d events (%d failed) in %s\n", produced, failed, time.Since(start).Round(time.Millisecond))
			if err == nil && failed > 0 {
				err = fmt.Errorf("%d of %d events could not be produced", failed, produced+failed)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&users, "users", 5000, "distinct users")
	f.Float64Var(&rate, "rate", 1000, "events per second")
	f.Int64Var(&count, "count", 0, "stop after this many events (0: no limit)")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: no limit)")
	f.Uint64Var(&seed, "seed", 1, "random seed: the same seed gives the same users and events")
	f.Float64Var(&bad, "bad-share", 0, "share of events corrupted on purpose, to exercise the dead-letter topic")
	f.StringVar(&locale, "locale", gen.LocaleMixed, "language of the chats: zh, en or mixed (every other user writes Chinese)")
	f.Float64Var(&chat, "chat-share", 0.15, "share of events that are chat messages (0: clickstream only)")
	f.Var(&history, "history", "write a history instead of live traffic: --count events with event times over this span before --until (e.g. 365d, 12w, 36h), in time order, then stop")
	f.StringVar(&until, "until", "", "end of the --history, RFC 3339 (default: now); with --seed it makes the history reproducible")
	return cmd
}

// dayDuration is a flag value that also takes days, weeks and years
// (Prometheus' duration syntax: 365d, 2w, 1y, 1d12h).
type dayDuration struct{ model.Duration }

func (d *dayDuration) Set(s string) error {
	v, err := model.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

func (d *dayDuration) Type() string { return "duration" }
