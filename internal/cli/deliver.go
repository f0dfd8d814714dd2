package cli

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/deliver"
	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/schemas"
)

func newDeliverCmd(g *globals) *cobra.Command {
	var (
		group, httpAddr string
		fromStart       bool
	)
	cmd := &cobra.Command{
		Use:   "deliver",
		Short: "Deliver alerts to webhooks and Slack (a consumer group on the alert topic)",
		Long: `Deliver reads the alert topic in its own consumer group (deliver.group) and
POSTs each alert to the destinations in deliver.destinations whose filters
accept it: signed alert.v2 JSON to webhooks, a short text to Slack incoming
webhooks. Failed attempts are retried with exponential backoff and jitter;
after max_attempts (or a 4xx) the alert goes to the destination's
dead-letter topic. Offsets are committed once every destination has
delivered or dead-lettered an alert: at-least-once, deduplicate on
alert_id. Run it as a process of its own; metrics on --http-addr.`,
		Example: `  cxstream deliver --config cxstream.yaml --http-addr :9109`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd, func(c *config.Config) {
				if group != "" {
					c.Deliver.Group = group
				}
				if cmd.Flags().Changed("http-addr") {
					c.HTTP.Addr = httpAddr
				}
			})
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			return runDeliver(cmd.Context(), cfg, log, fromStart)
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "consumer group (overrides deliver.group)")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "", "metrics and probes address, \"\" to disable (overrides http.addr; use another port than the processor's on the same host)")
	cmd.Flags().BoolVar(&fromStart, "from-beginning", false, "a new group starts at the oldest alert instead of new ones")
	return cmd
}

// deliverOptions resolves the destinations' secrets (env:NAME, file:/path)
// and maps the config section to the deliverer's options.
func deliverOptions(cfg config.Config) (deliver.Options, error) {
	d := cfg.Deliver
	if len(d.Destinations) == 0 {
		return deliver.Options{}, fmt.Errorf("config: deliver.destinations: none configured")
	}
	o := deliver.Options{
		Topic: cfg.Topics.Alerts, Group: d.Group, Concurrency: d.Concurrency, MaxPending: d.MaxPending,
		InitialBackoff: d.InitialBackoff, MaxBackoff: d.MaxBackoff, CommitInterval: d.CommitInterval, ShutdownTimeout: d.ShutdownTimeout,
	}
	for _, dest := range d.Destinations {
		r, err := dest.Resolve()
		if err != nil {
			return o, err
		}
		o.Destinations = append(o.Destinations, deliver.Destination{
			Name: r.Name, Kind: deliver.Kind(r.Kind), URL: r.URL, Secret: []byte(r.Secret), Types: r.Types,
			MinPriority: schemas.Priority(strings.ToUpper(r.MinPriority)), MaxAttempts: r.MaxAttempts, Timeout: r.Timeout,
			DeadLetterTopic: r.DeadLetterTopic,
		})
	}
	return o, nil
}

func runDeliver(ctx context.Context, cfg config.Config, log *zap.Logger, fromStart bool) error {
	o, err := deliverOptions(cfg)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	kopts, err := runner.KafkaOpts(cfg.Kafka, log)
	if err != nil {
		return err
	}
	o.KafkaOpts = append(kopts, kgo.WithHooks(kprom.NewMetrics("cx_kafka", kprom.Registry(reg))),
		kgo.SessionTimeout(cfg.Kafka.SessionTimeout), kgo.RebalanceTimeout(cfg.Kafka.RebalanceTimeout))
	o.Registry, o.Logger, o.FromBeginning = reg, log.Named("deliver"), fromStart
	d, err := deliver.New(ctx, o)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	if cfg.HTTP.Addr != "" {
		srv, err := metrics.Listen(cfg.HTTP.Addr, &metrics.Metrics{Registry: reg}, map[string]metrics.Check{"kafka": d.Ready})
		if err != nil {
			stopped, stop := context.WithCancel(ctx)
			stop()
			_ = d.Run(stopped) // closes the Kafka client at once
			return fmt.Errorf("http listener %s: %w", cfg.HTTP.Addr, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Run(ctx); err != nil {
				log.Warn("metrics server", zap.Error(err))
			}
		}()
	}
	names := make([]string, 0, len(o.Destinations))
	for _, dest := range o.Destinations {
		names = append(names, dest.Name) // never the URL: it may hold a token
	}
	log.Info("cxstream deliver running", zap.String("topic", o.Topic), zap.String("group", o.Group), zap.Strings("destinations", names))
	err = d.Run(ctx)
	wg.Wait()
	log.Info("cxstream deliver stopped")
	return err
}
