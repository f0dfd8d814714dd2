package runner

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/preflight"
	"github.com/cxstream/cxstream/internal/state"
)

// Needs are the topics the processor reads and writes.
func Needs(cfg config.Config) preflight.Need {
	need := preflight.Need{Inputs: []string{cfg.Topics.Clickstream, cfg.Topics.Chat}, Others: []string{cfg.Topics.Alerts, cfg.Topics.DeadLetter}}
	if cfg.Topics.Transitions != "" {
		need.Others = append(need.Others, cfg.Topics.Transitions)
	}
	if cfg.Topics.AlertsV1 != "" {
		need.Others = append(need.Others, cfg.Topics.AlertsV1)
	}
	if cfg.Segments.Enabled && cfg.Topics.Segments != "" {
		need.Others = append(need.Others, cfg.Topics.Segments)
	}
	return need
}

// Check connects to Kafka and Redis with cfg, without joining any group,
// and checks everything the processor needs: brokers, topics and their
// partition counts, Redis, its mode, the state script and the rights.
// `run` calls it before it joins the group, `cxstream check` prints it.
func Check(ctx context.Context, cfg config.Config, log *zap.Logger) preflight.Report {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var report preflight.Report
	kopts, err := KafkaOpts(cfg.Kafka, log)
	if err == nil {
		var cl *kgo.Client
		if cl, err = kgo.NewClient(kopts...); err == nil {
			report = append(report, preflight.Kafka(ctx, cl, Needs(cfg))...)
			cl.Close()
		}
	}
	if err != nil {
		report = append(report, preflight.Check{Name: "kafka", Err: err})
	}
	rdb, err := NewRedis(cfg.Redis)
	if err != nil {
		return append(report, preflight.Check{Name: "redis", Err: err})
	}
	defer rdb.Close()
	store := state.New(rdb, state.Options{Prefix: cfg.Redis.KeyPrefix, TTL: cfg.Redis.StateTTL})
	return append(report, preflight.Redis(ctx, rdb, store)...)
}
