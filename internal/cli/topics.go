package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/preflight"
	"github.com/cxstream/cxstream/internal/runner"
)

const day = 24 * time.Hour

// topicSpec is a topic cxstream needs and the settings it is created with.
type topicSpec struct {
	name    string
	purpose string
	configs map[string]*string
}

// topicSpecs are the processor's topics with their retention: inputs at
// the broker's default; alerts compacted (so an erasure tombstone removes
// a user's alerts) and deleted after 7 days; dead letters kept 30 days,
// with room for the largest dead letter the processor writes.
func topicSpecs(cfg config.Config) []topicSpec {
	ms := func(d time.Duration) *string { return kadm.StringPtr(strconv.FormatInt(d.Milliseconds(), 10)) }
	specs := []topicSpec{
		{name: cfg.Topics.Clickstream, purpose: "input"},
		{name: cfg.Topics.Chat, purpose: "input"},
		{name: cfg.Topics.Alerts, purpose: "alerts", configs: map[string]*string{"cleanup.policy": kadm.StringPtr("compact,delete"), "retention.ms": ms(7 * day)}},
		{name: cfg.Topics.DeadLetter, purpose: "dead letters", configs: map[string]*string{
			"retention.ms":      ms(30 * day),
			"max.message.bytes": kadm.StringPtr(strconv.Itoa(max(1048588, cfg.Processing.MaxDeadLetterBytes+64<<10))),
		}},
	}
	if cfg.Topics.Transitions != "" {
		specs = append(specs, topicSpec{name: cfg.Topics.Transitions, purpose: "funnel transitions", configs: map[string]*string{"retention.ms": ms(7 * day)}})
	}
	if cfg.Segments.Enabled && cfg.Topics.Segments != "" {
		specs = append(specs, topicSpec{name: cfg.Topics.Segments, purpose: "segment changes", configs: map[string]*string{"retention.ms": ms(7 * day)}})
	}
	if cfg.Topics.AlertsV1 != "" {
		specs = append(specs, topicSpec{name: cfg.Topics.AlertsV1, purpose: "alerts as alert.v1 (deprecated)", configs: map[string]*string{"cleanup.policy": kadm.StringPtr("compact,delete"), "retention.ms": ms(7 * day)}})
	}
	for _, d := range cfg.Deliver.Destinations {
		specs = append(specs, topicSpec{name: d.WithDefaults().DeadLetterTopic, purpose: "deliver dead letters of " + d.Name, configs: map[string]*string{"retention.ms": ms(30 * day)}})
	}
	return specs
}

func newTopicsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "Manage the Kafka topics cxstream uses",
	}
	var partitions int32
	var replication int16
	create := &cobra.Command{
		Use:   "create",
		Short: "Create the input, alert, dead-letter, segments (and transitions) topics of the configuration",
		Long: `create makes every topic the configuration names, with --partitions partitions and
--replication replicas (-1: the broker's default). Topics that exist are left as they are and
reported. Alerts are compacted (an erasure tombstone removes a user's alerts) and deleted
after 7 days; dead letters are kept 30 days and accept the largest dead letter cxstream
writes; segment changes (topics.segments, while segments are on) are kept 7 days. Both input topics must have the same partition count; create checks it at the end.`,
		Example: "  cxstream topics create --config cxstream.yaml --partitions 12 --replication 3",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if partitions < 1 {
				return fmt.Errorf("--partitions must be at least 1, got %d", partitions)
			}
			if replication == 0 || replication < -1 {
				return fmt.Errorf("--replication must be at least 1, or -1 for the broker's default, got %d", replication)
			}
			cl, cfg, err := g.kafkaClient(cmd)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			adm := kadm.NewClient(cl)
			out := cmd.OutOrStdout()
			for _, s := range topicSpecs(cfg) {
				resp, err := adm.CreateTopic(ctx, partitions, replication, s.configs, s.name)
				switch {
				case errors.Is(err, kerr.TopicAlreadyExists) || errors.Is(resp.Err, kerr.TopicAlreadyExists):
					fmt.Fprintf(out, "exists  %s (%s)\n", s.name, s.purpose)
				case err != nil:
					return fmt.Errorf("create %s: %w", s.name, err)
				case resp.Err != nil:
					return fmt.Errorf("create %s: %w %s", s.name, resp.Err, resp.ErrMessage)
				default:
					fmt.Fprintf(out, "created %s (%s, %d partitions, replication %d)\n", s.name, s.purpose, resp.NumPartitions, resp.ReplicationFactor)
				}
			}
			// A new topic takes a moment to show in every broker's
			// metadata; check until it does.
			for {
				err := preflight.Kafka(ctx, cl, runner.Needs(cfg)).Err()
				if err == nil || ctx.Err() != nil {
					return err
				}
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	}
	create.Flags().Int32Var(&partitions, "partitions", 6, "partitions per topic (the most instances that can share the work)")
	create.Flags().Int16Var(&replication, "replication", -1, "replicas per partition (-1: the broker's default)")
	cmd.AddCommand(create)
	return cmd
}
