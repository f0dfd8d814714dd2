// Package runner assembles a running cxstream processor from a Config:
// Kafka and Redis clients, the processors, the pipeline, the group
// consumer and the metrics server, all stopped together.
package runner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/errgroup"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/ingest"
	"github.com/cxstream/cxstream/internal/kafka"
	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/privacy"
	"github.com/cxstream/cxstream/internal/secure"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors/sentiment"
	"github.com/cxstream/cxstream/schemas"
)

// Processor is an assembled, not yet running, cxstream instance.
type Processor struct {
	cfg      config.Config
	log      *zap.Logger
	Metrics  *metrics.Metrics
	Store    *state.Store
	Pipeline *pipeline.Pipeline
	rdb      redis.UniversalClient
	client   *kgo.Client
	consumer *kafka.Consumer
	server   *metrics.Server
	watcher  *alertsink.Watcher
}

// Options that the config file does not carry.
type Options struct {
	// Scorer replaces the default sentiment scorer (shared by the demo's
	// instances so the model loads once).
	Scorer sentiment.Scorer
	// ExtraKafkaOpts are appended to the client options.
	ExtraKafkaOpts []kgo.Opt
	// Naive processes every event with its own Redis round trips (the
	// benchmark's baseline).
	Naive bool
	// DuePage overrides how many due timers a batch loads at once (tests
	// use a tiny page to exercise paging).
	DuePage int
	// Only, when set, runs just the named processors of those cfg
	// configures (the benchmark's comparison with a peer that does less).
	Only []string
}

// New builds a processor from cfg. It connects nothing yet but the HTTP
// listener; Run starts everything.
func New(cfg config.Config, log *zap.Logger, opts Options) (_ *Processor, err error) {
	p := &Processor{cfg: cfg, log: log, Metrics: metrics.New()}
	// On any error, close what was opened: a client that joined the group
	// leaves it, so its partitions move at once.
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	state.RouteClientLogs(log.Named("redis"))
	validator, err := schemas.NewValidator(cfg.Processing.MaxMessageBytes)
	if err != nil {
		return nil, err
	}
	procs, err := Processors(cfg, opts.Scorer)
	if err == nil && len(opts.Only) > 0 {
		procs, err = only(procs, opts.Only)
	}
	if err != nil {
		return nil, err
	}
	pseudonymizer, err := privacy.FromSecret(cfg.Privacy.PseudonymKey)
	if err != nil {
		return nil, err
	}
	if p.rdb, err = NewRedis(cfg.Redis); err != nil {
		return nil, err
	}
	p.Store = state.New(p.rdb, state.Options{Prefix: cfg.Redis.KeyPrefix, TTL: cfg.Redis.StateTTL})

	p.consumer = kafka.NewConsumer(nil, kafka.ConsumerOptions{
		MaxPollRecords:  cfg.Processing.MaxPollRecords,
		QueuedBatches:   cfg.Processing.QueuedBatches,
		ShutdownTimeout: cfg.Processing.ShutdownTimeout,
		TimerInterval:   cfg.Processing.TimerInterval,
		CommitInterval:  cfg.Processing.CommitInterval,
		Topics:          []string{cfg.Topics.Clickstream, cfg.Topics.Chat},
		AlignWait:       cfg.Processing.AlignWait,
		MaxAlignWait:    cfg.Processing.MaxAlignWait,
	}, log.Named("consumer"), p.Metrics)
	kopts, err := KafkaOpts(cfg.Kafka, log)
	if err != nil {
		return nil, err
	}
	kopts = append(kopts, p.consumer.GroupOpts()...)
	if cfg.Kafka.InstanceID != "" {
		kopts = append(kopts, kgo.InstanceID(cfg.Kafka.InstanceID))
	}
	kopts = append(kopts,
		kgo.ConsumerGroup(cfg.Kafka.Group),
		kgo.ConsumeTopics(cfg.Topics.Clickstream, cfg.Topics.Chat),
		kgo.SessionTimeout(cfg.Kafka.SessionTimeout),
		kgo.RebalanceTimeout(cfg.Kafka.RebalanceTimeout),
		kgo.WithHooks(kprom.NewMetrics("cx_kafka", kprom.Registry(p.Metrics.Registry))),
	)
	// Room for a dead letter of the configured size plus its headers.
	kopts = append(kopts, kgo.ProducerBatchMaxBytes(int32(max(1<<20, cfg.Processing.MaxDeadLetterBytes+64<<10))))
	kopts = append(kopts, opts.ExtraKafkaOpts...)
	if p.client, err = kgo.NewClient(kopts...); err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	clickIn, err := ingest.NewDecoder(ingest.Click, cfg.Topics.Input.Clickstream, validator)
	if err != nil {
		return nil, err
	}
	chatIn, err := ingest.NewDecoder(ingest.Chat, cfg.Topics.Input.Chat, validator)
	if err != nil {
		return nil, err
	}
	queue := alertsink.New(p.rdb, alertsink.Options{Prefix: cfg.Redis.KeyPrefix, SLA: alertsink.SLA(cfg.Queue.SLA)})
	// The queue's wall-clock work (SLA breaches, gauges) runs beside the
	// consumer; any number of processes may run it (see alertsink.Watcher).
	p.watcher, err = alertsink.NewWatcher(alertsink.WatcherOptions{Queue: queue, Publisher: kafka.NewPublisher(p.client),
		Topic: cfg.Topics.Alerts, Interval: cfg.Queue.SLAInterval, Metrics: p.Metrics, Logger: log.Named("queue")})
	if err != nil {
		return nil, err
	}
	p.Pipeline, err = pipeline.New(pipeline.Options{
		Topics:          cfg.Topics,
		Validator:       validator,
		ClickInput:      clickIn,
		ChatInput:       chatIn,
		Vocabulary:      cfg.Events.Vocabulary(),
		Processors:      procs,
		Store:           p.Store,
		Publisher:       kafka.NewPublisher(p.client),
		Queue:           queue,
		Metrics:         p.Metrics,
		Logger:          log.Named("pipeline"),
		MaxClockSkew:    cfg.Processing.MaxClockSkew,
		AllowedLateness: cfg.Processing.AllowedLateness,
		IdleAdvance:     cfg.Processing.IdleAdvance,
		CacheBytes:      cfg.Processing.StateCacheBytes,
		StateEncoding:   pipeline.Encoding(cfg.Processing.StateEncoding),
		DuePage:         opts.DuePage,
		// Dead letters keep the original bytes up to this size.
		MaxDeadLetterBytes: cfg.Processing.MaxDeadLetterBytes,
		Pseudonymizer:      pseudonymizer,
		AlertOriginalID:    cfg.Privacy.AlertOriginalID,
		DedupWindow:        cfg.Privacy.DedupWindow,
		PerEventRoundTrips: opts.Naive,
	})
	if err != nil {
		return nil, err
	}
	combineBelow := cfg.Processing.CombineBelow
	if opts.Naive {
		combineBelow = 0 // a round trip per event: nothing to share
	}
	p.consumer.SetBatchFunc(pipeline.NewCombiner(p.Pipeline, combineBelow).Process)
	p.consumer.SetTimerFunc(func(ctx context.Context, topic string, partition int32, now time.Time, idleFor time.Duration) error {
		_, err := p.Pipeline.FireTimers(ctx, topic, partition, now, idleFor)
		return err
	})
	p.consumer.SetReleaseFunc(p.Pipeline.Release)
	p.consumer.SetTimeFunc(p.Pipeline.EventTime)
	if cfg.HTTP.Addr != "" {
		p.server, err = metrics.Listen(cfg.HTTP.Addr, p.Metrics, map[string]metrics.Check{
			"kafka": p.consumer.Ready,
			"redis": p.Store.Ping,
		})
		if err != nil {
			return nil, fmt.Errorf("http.addr %s: %w", cfg.HTTP.Addr, err)
		}
	}
	return p, nil
}

// close releases the clients of a processor that will not run.
func (p *Processor) close() {
	if p.client != nil {
		p.client.Close()
	}
	if p.rdb != nil {
		_ = p.rdb.Close()
	}
}

// HTTPAddr is the metrics listener's address, "" when disabled.
func (p *Processor) HTTPAddr() string {
	if p.server == nil {
		return ""
	}
	return p.server.Addr()
}

// CheckConnections fails with one clear line when Kafka or Redis cannot
// be reached, so a wrong address is reported at start, not as retries.
func (p *Processor) CheckConnections(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.client.Ping(ctx); err != nil {
		return fmt.Errorf("kafka at %v unreachable: %w", p.cfg.Kafka.Brokers, err)
	}
	if err := p.Store.Ping(ctx); err != nil {
		return fmt.Errorf("redis at %v unreachable: %w", p.cfg.Redis.Addrs, err)
	}
	if err := p.Store.Prepare(ctx); err != nil {
		return fmt.Errorf("redis at %v: %w", p.cfg.Redis.Addrs, err)
	}
	return nil
}

// Run processes until ctx is done, then shuts down within the configured
// bound (plus a few seconds to leave the group and close clients).
func (p *Processor) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	readyCtx, stopReady := context.WithCancel(context.Background())
	g.Go(func() error {
		defer stopReady()
		return p.consumer.Run(gctx, p.client)
	})
	g.Go(func() error { return p.watchReady(readyCtx) })
	g.Go(func() error { return p.watcher.Run(gctx) })
	if p.server != nil {
		g.Go(func() error { return p.server.Run(gctx) })
	}
	err := g.Wait()
	if cerr := p.rdb.Close(); cerr != nil && err == nil && !errors.Is(cerr, redis.ErrClosed) {
		err = cerr
	}
	return err
}

// watchReady keeps cx_ready current and reports a Redis outage with one
// line when it starts and one when it ends, whatever the client retries
// in between.
func (p *Processor) watchReady(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var downSince time.Time
	for {
		ready := 1.0
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		redisErr := p.Store.Ping(cctx)
		if p.consumer.Ready(cctx) != nil || redisErr != nil {
			ready = 0
		}
		cancel()
		switch {
		case redisErr != nil && downSince.IsZero() && ctx.Err() == nil:
			downSince = time.Now()
			p.log.Warn("redis unreachable; processing waits and retries", zap.Strings("redis", p.cfg.Redis.Addrs), zap.Error(redisErr))
		case redisErr == nil && !downSince.IsZero():
			p.log.Info("redis reachable again", zap.Strings("redis", p.cfg.Redis.Addrs), zap.Duration("down_for", time.Since(downSince).Round(time.Millisecond)))
			downSince = time.Time{}
		}
		p.Metrics.Ready.Set(ready)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// NewRedis returns a single-node or cluster client for cfg, with TLS and
// ACL user/password (password may be file:/path).
func NewRedis(cfg config.Redis) (redis.UniversalClient, error) {
	tc, err := cfg.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("redis %w", err)
	}
	pass, err := secure.Secret(cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("redis password: %w", err)
	}
	if cfg.Cluster || len(cfg.Addrs) > 1 {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: cfg.Addrs, Username: cfg.Username, Password: pass, TLSConfig: tc}), nil
	}
	return redis.NewClient(&redis.Options{Addr: cfg.Addrs[0], Username: cfg.Username, Password: pass, DB: cfg.DB, TLSConfig: tc}), nil
}

// KafkaOpts are the connection options every cxstream Kafka client uses,
// TLS and SASL included. franz-go logs through zap one level below what it
// reports, so its info chatter lands at debug.
func KafkaOpts(cfg config.Kafka, log *zap.Logger) ([]kgo.Opt, error) {
	sec, err := secure.KafkaOpts(cfg.TLS, cfg.SASL)
	if err != nil {
		return nil, err
	}
	return append(sec,
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.WithLogger(kzap.New(log.Named("kafka"), kzap.LevelFn(func() kgo.LogLevel {
			switch {
			case log.Core().Enabled(zapcore.DebugLevel):
				return kgo.LogLevelInfo
			case log.Core().Enabled(zapcore.InfoLevel):
				return kgo.LogLevelWarn
			}
			return kgo.LogLevelError
		}))),
		// The pipeline waits for each batch's records to be acknowledged
		// before it writes the state: lingering would only add to every
		// batch's time. Records produced while a request is in flight
		// still go together in the next one.
		kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	), nil
}
