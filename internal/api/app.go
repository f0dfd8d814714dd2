package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/collect"
	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/erasure"
	"github.com/cxstream/cxstream/internal/kafka"
	"github.com/cxstream/cxstream/internal/preflight"
	"github.com/cxstream/cxstream/internal/privacy"
	"github.com/cxstream/cxstream/internal/report"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/userview"
	"github.com/cxstream/cxstream/processors/churn"
	"github.com/cxstream/cxstream/processors/funnel"
)

// App is a running `cxstream api`: the server, the alert hub reading the
// alert topic, and the queue's SLA watcher, stopped together.
type App struct {
	Server  *Server
	cfg     config.Config
	log     *zap.Logger
	rdb     redis.UniversalClient
	client  *kgo.Client
	hub     *Hub
	watcher *alertsink.Watcher
	ln      net.Listener
}

// AppOptions are what the config file does not carry.
type AppOptions struct {
	// NoSLA leaves the SLA watcher to other processes (`run` has one).
	NoSLA bool
	// Listener, when set, replaces listening on api.addr (tests).
	Listener net.Listener
	// Now replaces the queue's clock (tests); nil uses Redis's.
	Now func() time.Time
}

// Assemble connects Redis and Kafka and builds the app from cfg. It
// listens at once, so Addr is known before Run.
func Assemble(cfg config.Config, log *zap.Logger, o AppOptions) (*App, error) {
	a := &App{cfg: cfg, log: log}
	fp, err := funnel.New(cfg.Funnels, cfg.Processing.AllowedLateness)
	if err != nil {
		return nil, err
	}
	cp, err := churn.New(cfg.Churn)
	if err != nil {
		return nil, err
	}
	pseudonyms, err := privacy.FromSecret(cfg.Privacy.PseudonymKey)
	if err != nil {
		return nil, err
	}
	if a.rdb, err = runner.NewRedis(cfg.Redis); err != nil {
		return nil, err
	}
	kopts, err := runner.KafkaOpts(cfg.Kafka, log)
	if err != nil {
		_ = a.rdb.Close()
		return nil, err
	}
	// No consumer group: every api process streams every alert, from the
	// topic's end.
	kopts = append(kopts, kgo.ConsumeTopics(cfg.Topics.Alerts), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if a.client, err = kgo.NewClient(kopts...); err != nil {
		_ = a.rdb.Close()
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	store := state.New(a.rdb, state.Options{Prefix: cfg.Redis.KeyPrefix, TTL: cfg.Redis.StateTTL})
	queue := alertsink.New(a.rdb, alertsink.Options{Prefix: cfg.Redis.KeyPrefix, SLA: alertsink.SLA(cfg.Queue.SLA), Now: o.Now})
	publisher := kafka.NewPublisher(a.client)
	if !o.NoSLA {
		a.watcher, err = alertsink.NewWatcher(alertsink.WatcherOptions{Queue: queue, Publisher: publisher, Topic: cfg.Topics.Alerts,
			Interval: cfg.Queue.SLAInterval, Logger: log.Named("queue")})
		if err != nil {
			a.close()
			return nil, err
		}
	}
	a.hub = NewHub(a.client, log.Named("alerts"))
	a.Server, err = New(Options{
		Config: cfg.API,
		Queue:  queue,
		Views:  &userview.Builder{Store: store, Queue: queue, Funnel: fp, Churn: cp, ChurnCfg: cfg.Churn, Currency: cfg.API.Currency, Now: o.Now},
		Funnels: func(ctx context.Context) ([]report.FunnelStats, error) {
			return report.Funnels(ctx, store, fp)
		},
		Alerts: a.hub,
		Erase: (&erasure.Eraser{Store: store, Queue: queue, Links: collect.NewLinks(a.rdb, cfg.Redis.KeyPrefix, 0, pseudonyms), Pseudonyms: pseudonyms,
			Publisher: publisher, Topics: []string{cfg.Topics.Alerts, cfg.Topics.AlertsV1}}).Erase,
		StoredID:     func(id string) (string, error) { return pseudonyms.ID(id), nil },
		DefaultLease: cfg.Queue.DefaultLease,
		Logger:       log,
		Audit:        log.Named("audit"),
	})
	if err != nil {
		a.close()
		return nil, err
	}
	a.ln = o.Listener
	if a.ln == nil {
		if a.ln, err = net.Listen("tcp", cfg.API.Addr); err != nil {
			a.close()
			return nil, fmt.Errorf("api.addr %s: %w", cfg.API.Addr, err)
		}
	}
	return a, nil
}

// Addr is the address the API listens on.
func (a *App) Addr() string { return a.ln.Addr().String() }

// CheckConnections fails with one clear line when Redis or Kafka cannot
// be reached.
func (a *App) CheckConnections(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %v unreachable: %w", a.cfg.Redis.Addrs, err)
	}
	if err := a.client.Ping(ctx); err != nil {
		return fmt.Errorf("kafka at %v unreachable: %w", a.cfg.Kafka.Brokers, err)
	}
	// The alert stream reads the alert topic: a missing one is named now,
	// not found by an agent whose stream stays empty.
	if _, err := preflight.Topics(ctx, a.client, a.cfg.Topics.Alerts); err != nil {
		return err
	}
	return nil
}

// Run serves until ctx is done, then stops within the shutdown timeout:
// open alert streams end with the context, other requests finish.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	srv := a.Server.HTTPServer("")
	srv.BaseContext = func(net.Listener) context.Context { return ctx }
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), a.cfg.Processing.ShutdownTimeout)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return a.hub.Run(gctx) })
	if a.watcher != nil {
		g.Go(func() error { return a.watcher.Run(gctx) })
	}
	a.log.Info("api listening", zap.String("addr", a.Addr()))
	return g.Wait()
}

// Close releases the clients of an app that will not Run (Run closes
// them itself).
func (a *App) Close() {
	_ = a.ln.Close()
	a.close()
}

func (a *App) close() {
	a.client.Close()
	_ = a.rdb.Close()
}
