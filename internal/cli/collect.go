package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/cxstream/cxstream/internal/collect"
	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/ingest"
	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/internal/privacy"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/secure"
	"github.com/cxstream/cxstream/schemas"
)

func newCollectCmd(g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "collect",
		Short: "HTTP collector: Segment's HTTP Tracking API and POST /v1/chat, into the input topics",
		Long: `collect serves Segment's HTTP Tracking API (POST /v1/track, /v1/page, /v1/screen,
/v1/identify, /v1/alias, /v1/group, /v1/batch; the write key as the HTTP Basic-auth user;
gzip bodies; alias links ids, group calls are accepted and not read) and
POST /v1/chat (a chat.v1 message, a support tool's payload read through collect.chat's
mapping, or {"batch": [...]} of them). Calls become clickstream.v2 / chat.v1 records keyed
by user, produced with the idempotent producer; the answer is 200 only once Kafka has them.
400: an invalid call, with the reason (nothing of the request is produced); 401: bad write
key; 413: body over collect.max_body_bytes; 429: too many requests in flight; 503: Kafka (or
Redis, for identity) unavailable, retry. Segment's libraries retry 429 and 503, and the
processor counts a retried message once, by its messageId.
With collect.identity, an identify call (or a login/signup event) carrying an anonymousId
and a userId links them: later events of that anonymous id are keyed by the user id. Events
sent before the link stay under the anonymous id. forget erases the links.
Metrics are served on http.addr (cx_collect_*).`,
		Example: `  cxstream collect --config cxstream.yaml
  curl -u "$WRITE_KEY:" -H 'Content-Type: application/json' localhost:8088/v1/track \
    -d '{"userId":"u-1","event":"Order Completed","properties":{"revenue":30,"currency":"EUR"}}'`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := g.load(cmd, func(c *config.Config) {
				if cmd.Flags().Changed("addr") {
					c.Collect.Addr = addr
				}
			})
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			return runCollector(cmd.Context(), cfg, log, nil)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "listen address (overrides collect.addr)")
	return cmd
}

// runCollector runs the collector until ctx is done; listening, when
// given, receives the bound address.
func runCollector(ctx context.Context, cfg config.Config, log *zap.Logger, listening func(string)) error {
	keys := make([]string, 0, len(cfg.Collect.WriteKeys))
	for _, k := range cfg.Collect.WriteKeys {
		v, err := secure.Secret(k)
		if err != nil {
			return fmt.Errorf("collect.write_keys: %w", err)
		}
		keys = append(keys, v)
	}
	if len(keys) == 0 {
		return errors.New("collect.write_keys: set at least one write key (file:/path keeps it out of the file)")
	}
	for name, in := range map[string]ingest.Input{"clickstream": cfg.Topics.Input.Clickstream, "chat": cfg.Topics.Input.Chat} {
		if in.Format != "" && in.Format != ingest.FormatCxstream {
			return fmt.Errorf("topics.input.%s: the collector writes cxstream messages; the topic's format must be cxstream, not %s", name, in.Format)
		}
	}
	m := metrics.New()
	kopts, err := runner.KafkaOpts(cfg.Kafka, log)
	if err != nil {
		return err
	}
	// franz-go's producer is idempotent by default (acks from all
	// in-sync replicas); a record is failed after the produce timeout so
	// a stopped broker turns into 503 and the client's retry.
	kopts = append(kopts, kgo.ProducerLinger(2*time.Millisecond), kgo.RecordDeliveryTimeout(cfg.Collect.ProduceTimeout),
		kgo.WithHooks(kprom.NewMetrics("cx_kafka", kprom.Registry(m.Registry))))
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	if err := requireTopics(ctx, cl, cfg, cfg.Topics.Clickstream, cfg.Topics.Chat); err != nil {
		return err
	}
	ready := map[string]metrics.Check{"kafka": func(ctx context.Context) error { return cl.Ping(ctx) }}
	var links *collect.Links
	if cfg.Collect.Identity {
		rdb, err := runner.NewRedis(cfg.Redis)
		if err != nil {
			return err
		}
		defer rdb.Close()
		pseudonyms, err := privacy.FromSecret(cfg.Privacy.PseudonymKey)
		if err != nil {
			return err
		}
		links = collect.NewLinks(rdb, cfg.Redis.KeyPrefix, cfg.Redis.StateTTL, pseudonyms)
		ready["redis"] = func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	}
	validator, err := schemas.NewValidator(cfg.Processing.MaxMessageBytes)
	if err != nil {
		return err
	}
	c, err := collect.New(collect.Options{
		ClickTopic: cfg.Topics.Clickstream, ChatTopic: cfg.Topics.Chat, Producer: cl, Validator: validator, Chat: cfg.Collect.Chat,
		WriteKeys: keys, Links: links, Vocabulary: cfg.Events.Vocabulary(), MaxBodyBytes: cfg.Collect.MaxBodyBytes,
		MaxBatch: cfg.Collect.MaxBatch, MaxInFlight: cfg.Collect.MaxInFlight, ProduceTimeout: cfg.Collect.ProduceTimeout,
		Registry: m.Registry, Logger: log.Named("collect"),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Collect.Addr)
	if err != nil {
		return fmt.Errorf("collect.addr: %w", err)
	}
	eg, ctx := errgroup.WithContext(ctx)
	if cfg.HTTP.Addr != "" {
		srv, err := metrics.Listen(cfg.HTTP.Addr, m, ready)
		if err != nil {
			ln.Close()
			return fmt.Errorf("http.addr: %w", err)
		}
		eg.Go(func() error { return srv.Run(ctx) })
	}
	log.Info("collector listening", zap.String("addr", ln.Addr().String()), zap.Strings("brokers", cfg.Kafka.Brokers), zap.Bool("identity", links != nil))
	if listening != nil {
		listening(ln.Addr().String())
	}
	eg.Go(func() error { return c.Serve(ctx, ln, cfg.Processing.ShutdownTimeout) })
	err = eg.Wait()
	log.Info("collector stopped")
	return err
}
