// Package demo runs the whole of cxstream on one machine with nothing
// installed: an in-process Kafka cluster (kfake) and an in-process Redis
// (miniredis), the synthetic traffic generator, the real processor over
// real client connections, and a live view of the alerts.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/gen"
	"github.com/cxstream/cxstream/internal/report"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/schemas"
)

// Options of a demo run.
type Options struct {
	Duration time.Duration
	Users    int
	Rate     float64
	Seed     uint64
	// Partitions of each input topic.
	Partitions int
	// HTTPAddr serves /metrics while the demo runs ("" disables).
	HTTPAddr string
	// Quiet prints only the summary, not every alert.
	Quiet bool
	// Locale of the generated chats: zh, en or mixed ("" is mixed).
	Locale string
}

// Run runs the demo until opts.Duration passes or ctx is done, printing
// alerts and then a summary to out.
func Run(ctx context.Context, opts Options, out io.Writer, log *zap.Logger) error {
	cfg := config.Default()
	topics := []string{cfg.Topics.Clickstream, cfg.Topics.Chat, cfg.Topics.Alerts, cfg.Topics.DeadLetter, cfg.Topics.Segments}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(max(1, opts.Partitions)), topics...))
	if err != nil {
		return fmt.Errorf("start in-process kafka: %w", err)
	}
	defer cluster.Close()
	mr, err := miniredis.Run()
	if err != nil {
		return fmt.Errorf("start in-process redis: %w", err)
	}
	defer mr.Close()

	cfg.Kafka.Brokers = cluster.ListenAddrs()
	cfg.Redis.Addrs = []string{mr.Addr()}
	cfg.HTTP.Addr = opts.HTTPAddr
	cfg.Processing.ShutdownTimeout = 5 * time.Second
	// A day-long conversion window shows no abandonment in a short demo:
	// scale it to the run.
	for i := range cfg.Funnels {
		cfg.Funnels[i].Window = max(5*time.Second, opts.Duration/4)
	}
	// The generated clicks carry utm_source: break the funnel down by it
	// as well as by segment.
	cfg.Funnels[0].Breakdowns = append(cfg.Funnels[0].Breakdowns, "property.utm_source")
	// Timers fire by event time once the watermark (latest event time less
	// the allowed lateness) passes them: a short lateness lets the windows
	// above end within the run.
	cfg.Processing.AllowedLateness = 2 * time.Second
	cfg.Processing.IdleAdvance = 2 * time.Second
	proc, err := runner.New(cfg, log, runner.Options{})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cxstream demo: in-process Kafka at %s, Redis at %s, %d users, %.0f events/s for %s\n",
		strings.Join(cfg.Kafka.Brokers, ","), mr.Addr(), opts.Users, opts.Rate, opts.Duration)
	if addr := proc.HTTPAddr(); addr != "" {
		fmt.Fprintf(out, "metrics: http://%s/metrics  readiness: http://%s/readyz\n", addr, addr)
	}
	fmt.Fprintln(out, "alerts as they are produced (priority, type, user, score, reasons, redacted excerpt):")

	procCtx, stopProc := context.WithCancel(context.Background())
	procDone := make(chan error, 1)
	go func() { procDone <- proc.Run(procCtx) }()
	defer func() {
		stopProc()
		<-procDone
	}()

	tailCtx, stopTail := context.WithCancel(context.Background())
	alerts := make(chan schemas.Alert, 1024)
	tailDone := make(chan struct{})
	go func() { defer close(tailDone); tail(tailCtx, cfg, alerts) }()
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for a := range alerts {
			if !opts.Quiet {
				fmt.Fprintln(out, alertsink.OneLine(a))
			}
		}
	}()
	var tailOnce sync.Once
	finishTail := func() {
		tailOnce.Do(func() {
			stopTail()
			<-tailDone
			close(alerts)
			<-printed
		})
	}
	defer finishTail()

	producer, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer producer.Close()
	g := gen.New(gen.Options{Users: opts.Users, Seed: opts.Seed, BadShare: 0.001, Locale: opts.Locale, Properties: true})
	var stats gen.Stats
	genCtx, stopGen := context.WithTimeout(ctx, opts.Duration)
	start := time.Now()
	err = g.Produce(genCtx, producer, gen.Topics{Clickstream: cfg.Topics.Clickstream, Chat: cfg.Topics.Chat}, opts.Rate, 0, &stats)
	stopGen()
	if err != nil {
		return fmt.Errorf("generator: %w", err)
	}
	produced := float64(stats.Produced.Load())
	// Let the processor catch up before the summary (bounded).
	handled := func() float64 {
		m := proc.Metrics
		return m.Sum("cx_events_applied_total", nil) + m.Sum("cx_events_replay_skipped_total", nil) + m.Sum("cx_deadletter_total", nil)
	}
	for deadline := time.Now().Add(15 * time.Second); handled() < produced && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	time.Sleep(300 * time.Millisecond) // the last alerts reach the tail
	finishTail()
	summary(ctx, out, proc, produced, handled(), elapsed, cfg)
	segmentSummary(ctx, out, proc, cfg)
	return nil
}

// breakdowns prints the first funnel by segment and by first-touch
// utm_source, from the users' state as `cxstream funnel --by` does.
func breakdowns(ctx context.Context, out io.Writer, proc *runner.Processor, cfg config.Config) {
	fp, err := funnel.New(cfg.Funnels[:1], cfg.Processing.AllowedLateness, funnel.WithLimits(cfg.Breakdown))
	if err != nil {
		fmt.Fprintf(out, "funnel breakdowns: %v\n", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, by := range []string{funnel.BySegment, "property.utm_source"} {
		stats, err := report.FunnelBreakdowns(ctx, proc.Store, fp, by, funnel.FirstTouch)
		if err != nil {
			fmt.Fprintf(out, "funnel by %s: %v\n", by, err)
			return
		}
		report.PrintBreakdowns(out, stats)
		s := stats[0]
		if by == funnel.BySegment && len(s.Groups) == 1 && s.Groups[0].Value == funnel.NoValue {
			fmt.Fprintf(out, "  (no user has a segment yet, so every attempt is in %s)\n", funnel.NoValue)
		} else if by == funnel.BySegment && slices.ContainsFunc(s.Groups, func(g report.GroupStats) bool { return g.Value == funnel.NoValue }) {
			fmt.Fprintf(out, "  (%s: attempts begun on a user's first click, before they had a segment)\n", funnel.NoValue)
		}
	}
}

// segmentSummary prints users per segment, read from the state as
// `cxstream segments` does.
func segmentSummary(ctx context.Context, out io.Writer, proc *runner.Processor, cfg config.Config) {
	if !cfg.Segments.Enabled {
		return
	}
	stats, err := report.Segments(context.WithoutCancel(ctx), proc.Store, cfg.Segments.Names(), cfg.Segments.History, 0)
	if err != nil {
		fmt.Fprintf(out, "segments: %v\n", err)
		return
	}
	report.PrintSegments(out, stats, 0)
}

func tail(ctx context.Context, cfg config.Config, alerts chan<- schemas.Alert) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...), kgo.ConsumeTopics(cfg.Topics.Alerts))
	if err != nil {
		return
	}
	defer cl.Close()
	for {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil || f.IsClientClosed() {
			return
		}
		f.EachRecord(func(r *kgo.Record) {
			var a schemas.Alert
			if json.Unmarshal(r.Value, &a) == nil {
				alerts <- a
			}
		})
	}
}

func summary(ctx context.Context, out io.Writer, proc *runner.Processor, produced, handled float64, elapsed time.Duration, cfg config.Config) {
	m := proc.Metrics
	fmt.Fprintf(out, "\n=== summary ===\n")
	fmt.Fprintf(out, "events produced %.0f, processed %.0f in %s: %.0f events/s\n", produced, handled, elapsed.Round(time.Millisecond), handled/elapsed.Seconds())
	fmt.Fprintf(out, "dead letters: %.0f\n", m.Sum("cx_deadletter_total", nil))
	for _, f := range cfg.Funnels {
		fmt.Fprintf(out, "funnel %q (window %s):\n", f.Name, f.Window)
		var first float64
		for i, s := range f.Steps {
			reached := m.Sum("cx_funnel_transitions_total", map[string]string{"funnel": f.Name, "step": s.Name}) -
				m.Sum("cx_funnel_transitions_total", map[string]string{"funnel": f.Name, "step": s.Name, "kind": "abandoned"})
			if i == 0 {
				first = reached
			}
			pct := 0.0
			if first > 0 {
				pct = 100 * reached / first
			}
			fmt.Fprintf(out, "  %d. %-10s %7.0f  (%5.1f%% of entries)\n", i+1, s.Name, reached, pct)
		}
		fmt.Fprintf(out, "  abandoned (window ran out): %.0f\n", m.Sum("cx_funnel_transitions_total", map[string]string{"funnel": f.Name, "kind": "abandoned"}))
	}
	breakdowns(ctx, out, proc, cfg)
	fmt.Fprintf(out, "alerts:\n")
	var lines []string
	for _, typ := range []string{schemas.AlertNegativeChat, schemas.AlertChurnRisk} {
		total := m.Sum("cx_alerts_total", map[string]string{"type": typ})
		var parts []string
		for _, p := range []schemas.Priority{schemas.PriorityUrgent, schemas.PriorityHigh, schemas.PriorityNormal, schemas.PriorityLow} {
			if n := m.Sum("cx_alerts_total", map[string]string{"type": typ, "priority": string(p)}); n > 0 {
				parts = append(parts, fmt.Sprintf("%s %.0f", p, n))
			}
		}
		lines = append(lines, fmt.Sprintf("  %-13s %6.0f  %s", typ, total, strings.Join(parts, ", ")))
	}
	sort.Strings(lines)
	fmt.Fprintln(out, strings.Join(lines, "\n"))
}
