package alertsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/schemas"
)

// SLARuleVersion names the SLA rule in the sla_breach alerts.
const SLARuleVersion = "sla_breach/1"

// WatcherOptions configure a Watcher. Queue, Publisher and Topic are
// required.
type WatcherOptions struct {
	Queue     *Queue
	Publisher pipeline.Publisher
	// Topic is the alert topic.
	Topic string
	// Interval between checks (default 5s).
	Interval time.Duration
	// Retry: a breach taken by a process that died before its alert was
	// acknowledged is taken again after this long (default 30s).
	Retry   time.Duration
	Metrics *metrics.Metrics
	Logger  *zap.Logger
}

func (o *WatcherOptions) validate() error {
	if o.Queue == nil || o.Publisher == nil || o.Topic == "" {
		return errors.New("sla watcher: queue, publisher and topic are required")
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return nil
}

// Watcher runs the queue's wall-clock work: it raises an sla_breach alert
// for each conversation that waited past its first-response deadline and
// refreshes the queue gauges. Several watchers (every `run` and `api`
// process has one) may run at once: the queue's Redis flag lets exactly
// one of them take each breach.
type Watcher struct{ o WatcherOptions }

// NewWatcher checks o and returns a watcher.
func NewWatcher(o WatcherOptions) (*Watcher, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Watcher{o: o}, nil
}

// Run checks every interval until ctx is done. Errors (Redis or Kafka
// down) are logged and the next tick tries again; breaches are not lost
// meanwhile, they wait in Redis.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.o.Interval)
	defer t.Stop()
	// One line when checks start failing and one when they work again;
	// the readiness watch already reports the Redis outage itself.
	var failingSince time.Time
	for {
		_, err := w.Tick(ctx)
		switch {
		case err != nil && ctx.Err() == nil && failingSince.IsZero():
			failingSince = time.Now()
			w.o.Logger.Warn("queue sla checks failing; retrying every interval", zap.Error(err))
		case err != nil && ctx.Err() == nil:
			w.o.Logger.Debug("queue sla check failed", zap.Error(err))
		case err == nil && !failingSince.IsZero():
			w.o.Logger.Info("queue sla checks work again", zap.Duration("failed_for", time.Since(failingSince).Round(time.Millisecond)))
			failingSince = time.Time{}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick refreshes the gauges and publishes the alerts of new breaches; it
// returns how many it published.
func (w *Watcher) Tick(ctx context.Context) (int, error) {
	st, err := w.o.Queue.Stats(ctx)
	if err != nil {
		return 0, err
	}
	if m := w.o.Metrics; m != nil {
		m.QueueDepth.WithLabelValues("waiting").Set(float64(st.Waiting))
		m.QueueDepth.WithLabelValues("claimed").Set(float64(st.Claimed))
		m.QueueOldestAge.Set(st.OldestWaiting.Seconds())
	}
	published := 0
	for {
		breaches, err := w.o.Queue.TakeBreaches(ctx, 100, w.o.Retry)
		if err != nil || len(breaches) == 0 {
			return published, err
		}
		recs := make([]*kgo.Record, 0, len(breaches))
		for _, b := range breaches {
			rec, err := alertRecord(w.o.Topic, BreachAlert(b.Item))
			if err != nil {
				return published, err
			}
			recs = append(recs, rec)
		}
		if err := w.o.Publisher.Publish(ctx, recs); err != nil {
			return published, fmt.Errorf("publish sla_breach alerts: %w", err)
		}
		for _, b := range breaches {
			if err := w.o.Queue.AckBreach(ctx, b); err != nil {
				return published, err
			}
			if m := w.o.Metrics; m != nil {
				m.Alerts.WithLabelValues(schemas.AlertSLABreach, string(b.Priority)).Inc()
			}
		}
		published += len(breaches)
		if len(breaches) < 100 {
			return published, nil
		}
	}
}

// BreachAlert is the sla_breach alert of an item that waited past its
// deadline. Its id derives from the conversation and the deadline, so a
// retried publication carries the same id.
func BreachAlert(it Item) schemas.Alert {
	deadline := it.EnqueuedAt
	if it.SLADeadline != nil {
		deadline = *it.SLADeadline
	}
	target := deadline.Sub(it.EnqueuedAt).Round(time.Second)
	src := it.Alert
	reasons := []schemas.AlertReason{{Code: schemas.CodeFirstResponseOverdue,
		Params: map[string]any{"target_seconds": int64(target.Seconds()), "queued_priority": string(src.Priority)},
		Text:   fmt.Sprintf("no agent claimed the conversation within its first-response target of %s for %s", target, src.Priority)}}
	if src.Priority != it.Priority {
		reasons = append(reasons, schemas.AlertReason{Code: schemas.CodePromoted,
			Params: map[string]any{"from": string(src.Priority), "to": string(it.Priority)},
			Text:   fmt.Sprintf("promoted from %s to %s", src.Priority, it.Priority)})
	}
	return schemas.Alert{
		Schema:           schemas.AlertV2,
		AlertID:          schemas.AlertID(schemas.AlertSLABreach, it.UserID, it.ConversationID+"\x00"+strconv.FormatInt(deadline.UnixMilli(), 10)),
		Type:             schemas.AlertSLABreach,
		UserID:           it.UserID,
		OriginalUserID:   src.OriginalUserID,
		ConversationID:   it.ConversationID,
		Segment:          src.Segment,
		Priority:         it.Priority,
		Sentiment:        src.Sentiment,
		Reasons:          reasons,
		Excerpt:          src.Excerpt,
		FunnelStage:      src.FunnelStage,
		RollingSentiment: src.RollingSentiment,
		EventTime:        deadline.UnixMilli(),
		DetectedAt:       time.Now().UnixMilli(),
		// The chat message whose alert put the conversation in the queue.
		Source:      src.Source,
		RuleVersion: SLARuleVersion,
	}
}

func alertRecord(topic string, a schemas.Alert) (*kgo.Record, error) {
	value, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode alert: %w", err)
	}
	return &kgo.Record{
		Topic: topic,
		Key:   []byte(a.UserID),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: pipeline.HeaderAlertType, Value: []byte(a.Type)},
			{Key: pipeline.HeaderAlertID, Value: []byte(a.AlertID)},
			{Key: pipeline.HeaderPriority, Value: []byte(a.Priority)},
		},
	}, nil
}
