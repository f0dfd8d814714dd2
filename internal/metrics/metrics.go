// Package metrics holds cxstream's Prometheus metrics and the HTTP server
// that exposes them with the health and readiness probes.
//
// Every metric lives on a Registry created by New; nothing is registered
// globally, so tests and the demo can run several pipelines side by side.
package metrics

import (
	"time"

	"github.com/cxstream/cxstream/internal/version"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the processor's own metrics (Kafka client metrics come from
// franz-go's kprom plugin on the same registry).
type Metrics struct {
	Registry *prometheus.Registry
	counters map[string]*prometheus.CounterVec // by name, for Counter

	Received         *prometheus.CounterVec   // topic
	Applied          *prometheus.CounterVec   // topic
	ReplaySkipped    *prometheus.CounterVec   // topic
	Duplicates       *prometheus.CounterVec   // topic
	DeadLetters      *prometheus.CounterVec   // topic, reason
	Alerts           *prometheus.CounterVec   // type, priority
	FunnelSteps      *prometheus.CounterVec   // funnel, step, kind
	ProcessorSeconds *prometheus.HistogramVec // processor
	ProcessorErrors  *prometheus.CounterVec   // processor
	BatchSeconds     prometheus.Observer
	RedisSeconds     *prometheus.HistogramVec // op
	PublishSeconds   prometheus.Observer
	StateConflicts   prometheus.Counter
	BatchRetries     prometheus.Counter
	Commits          *prometheus.CounterVec // result
	TimersFired      prometheus.Counter
	TimersPending    *prometheus.GaugeVec // topic, partition
	LagRecords       *prometheus.GaugeVec // topic, partition
	LagSeconds       *prometheus.GaugeVec // topic, partition
	Ready            prometheus.Gauge
	Partitions       prometheus.Gauge
	BuildInfo        *prometheus.GaugeVec // version, revision, go_version
	QueueDepth       *prometheus.GaugeVec // state: waiting, claimed
	QueueOldestAge   prometheus.Gauge

	// The pipeline's cache of decoded user state (processing.state_cache_bytes).
	StateCacheHits, StateCacheMisses, StateCacheEvictions prometheus.Counter
	StateCacheBytes                                       prometheus.Gauge

	// AlignmentForced counts merges of a partition's two input topics that
	// went on without a topic that had lag but delivered nothing for
	// processing.max_align_wait.
	AlignmentForced prometheus.Counter
	// MergeInversions counts records handed to the pipeline after a
	// record of the other input topic that goes after them in event time,
	// for the same partition number.
	MergeInversions prometheus.Counter
	// ConsumerWait is how long input records waited in the consumer
	// before the pipeline took them, by stage: queued, from the poll that
	// fetched them until their worker took them (its batch before was
	// running); merge, from then until handed to the pipeline (waiting
	// for the other input topic, or behind the records ahead of them).
	// Records franz-go buffers while the poll loop waits for a full
	// worker (a backlog) are not yet polled and count nothing:
	// cx_consumer_lag_seconds shows that wait. Records a worker hands
	// over on a rebalance count in the worker that took them first.
	ConsumerWait *prometheus.HistogramVec // stage
}

// New creates the metrics on a fresh registry, with Go and process
// collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := factory{r}
	m := &Metrics{
		Registry:         r,
		Received:         f.counter("cx_events_received_total", "Input records received, by topic.", "topic"),
		Applied:          f.counter("cx_events_applied_total", "Valid events applied to state, by topic.", "topic"),
		ReplaySkipped:    f.counter("cx_events_replay_skipped_total", "Events skipped because the user's state already contains them (replay after a crash or rebalance).", "topic"),
		Duplicates:       f.counter("cx_events_duplicate_total", "Events dropped because the user's recent events already hold their event_id (sent twice upstream).", "topic"),
		DeadLetters:      f.counter("cx_deadletter_total", "Records sent to the dead-letter topic, by source topic and reason.", "topic", "reason"),
		Alerts:           f.counter("cx_alerts_total", "Alerts produced, by type and priority.", "type", "priority"),
		FunnelSteps:      f.counter("cx_funnel_transitions_total", "Funnel transitions, by funnel, step and kind.", "funnel", "step", "kind"),
		ProcessorSeconds: f.histogram("cx_processor_seconds", "Time spent in a processor per event.", []float64{1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 2e-3, 1e-2}, "processor"),
		ProcessorErrors:  f.counter("cx_processor_errors_total", "Processor errors (recovered panics), by processor.", "processor"),
		BatchSeconds:     f.histogram("cx_batch_seconds", "Time to make a batch durable: decode, state, alerts, state write.", prometheus.ExponentialBuckets(0.0005, 2, 14)).WithLabelValues(),
		RedisSeconds:     f.histogram("cx_redis_seconds", "Redis round-trip time, by operation.", prometheus.ExponentialBuckets(0.0001, 2, 16), "op"),
		PublishSeconds:   f.histogram("cx_publish_seconds", "Time from producing a batch's alerts and dead letters to Kafka acknowledging them all.", prometheus.ExponentialBuckets(0.0001, 2, 16)).WithLabelValues(),
		StateConflicts:   f.counter("cx_state_conflicts_total", "State writes refused because another writer changed the document.").WithLabelValues(),
		BatchRetries:     f.counter("cx_batch_retries_total", "Batches retried after an error (Redis or Kafka unavailable, conflicts).").WithLabelValues(),
		TimersFired:      f.counter("cx_timers_fired_total", "Users handled because a timer (funnel window, inactivity check) was due.").WithLabelValues(),
		TimersPending:    f.gaugeVec("cx_timers_pending", "Timers (funnel windows, inactivity checks) waiting in a partition's set.", "topic", "partition"),
		LagRecords:       f.gaugeVec("cx_consumer_lag_records", "Records between the last processed offset and the partition's high watermark.", "topic", "partition"),
		LagSeconds:       f.gaugeVec("cx_consumer_lag_seconds", "Age of the last processed record (its Kafka timestamp) when it was made durable.", "topic", "partition"),
		Commits:          f.counter("cx_offset_commits_total", "Offset commits, by result.", "result"),
		Ready:            f.gauge("cx_ready", "1 when the processor is in its group, Redis answers and no partition is stalled."),
		Partitions:       f.gauge("cx_assigned_partitions", "Input partitions assigned to this instance."),
		BuildInfo:        f.gaugeVec("cx_build_info", "Always 1; the labels tell which build runs.", "version", "revision", "go_version"),
		QueueDepth:       f.gaugeVec("cx_queue_depth", "Support-queue conversations, by state (waiting, claimed); every process that watches the queue reports the same figure, so aggregate with max.", "state"),
		QueueOldestAge:   f.gauge("cx_queue_oldest_age_seconds", "How long the oldest waiting support-queue conversation has waited (wall clock)."),
	}
	m.StateCacheHits = f.counter("cx_state_cache_hits_total", "User documents of an owned partition found in the state cache (no Redis read).").WithLabelValues()
	m.StateCacheMisses = f.counter("cx_state_cache_misses_total", "User documents of an owned partition not in the state cache, read from Redis.").WithLabelValues()
	m.StateCacheEvictions = f.counter("cx_state_cache_evictions_total", "User documents evicted from the state cache to stay within processing.state_cache_bytes.").WithLabelValues()
	m.StateCacheBytes = f.gauge("cx_state_cache_bytes", "Estimated bytes of decoded user state held in the state cache.")
	m.AlignmentForced = f.counter("cx_stream_alignment_forced_total", "Times a partition's clicks or chats were processed ahead of the other input topic, which had lag but delivered nothing within processing.max_align_wait: cross-stream facts may then be read out of event-time order.").WithLabelValues()
	m.ConsumerWait = f.histogram("cx_consumer_wait_seconds", "Time input records waited in the consumer before their batch started, by stage: queued (polled, while the partition's batch before ran) and merge (taken, waiting for the other input topic or behind earlier records). Records not yet polled during a backlog count nothing: see cx_consumer_lag_seconds.", prometheus.ExponentialBuckets(0.0005, 2, 14), "stage")
	m.MergeInversions = f.counter("cx_stream_merge_inversions_total", "Records of a partition's clicks or chats processed after a record of the other input topic that goes after them in event time (later, or as late and clicks first), so cross-stream facts were read out of event-time order: the record came more than processing.align_wait after the other topic's, or the other topic went on after max_align_wait (cx_stream_alignment_forced_total), or a topic is not in event-time order.").WithLabelValues()
	m.counters = map[string]*prometheus.CounterVec{"cx_funnel_transitions_total": m.FunnelSteps}
	m.BuildInfo.WithLabelValues(version.Parts()).Set(1)
	m.Commits.WithLabelValues("ok")
	m.Commits.WithLabelValues("error")
	for _, s := range []string{"waiting", "claimed"} {
		m.QueueDepth.WithLabelValues(s)
	}
	return m
}

// Counter returns the counter of that name, registering it the first time
// (processors declare the counters of their records this way; see
// processors.Counted).
func (m *Metrics) Counter(name, help string, labels ...string) *prometheus.CounterVec {
	if c, ok := m.counters[name]; ok {
		return c
	}
	c := factory{m.Registry}.counter(name, help, labels...)
	m.counters[name] = c
	return c
}

// Preset creates every series of vec for the cartesian product of dims
// (one list of label values per label) at 0, so dashboards, alert rules
// and `rate()` see a series from start instead of after its first event.
func Preset(vec *prometheus.CounterVec, dims ...[]string) {
	values := make([]string, len(dims))
	var walk func(i int)
	walk = func(i int) {
		if i == len(dims) {
			vec.WithLabelValues(values...)
			return
		}
		for _, v := range dims[i] {
			values[i] = v
			walk(i + 1)
		}
	}
	walk(0)
}

// ProcessorObserver records one processor's calls; the pipeline records
// once, around every processor, with an observer bound at start so the
// hot path does no label lookup.
type ProcessorObserver struct{ o prometheus.Observer }

// Processor binds an observer for the named processor.
func (m *Metrics) Processor(name string) ProcessorObserver {
	return ProcessorObserver{m.ProcessorSeconds.WithLabelValues(name)}
}

// Since records a call that started at start.
func (p ProcessorObserver) Since(start time.Time) { p.o.Observe(time.Since(start).Seconds()) }

type factory struct{ r *prometheus.Registry }

func (f factory) counter(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.r.MustRegister(c)
	return c
}

func (f factory) histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.r.MustRegister(h)
	return h
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	f.r.MustRegister(g)
	return g
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.r.MustRegister(g)
	return g
}

// Sum adds up the current values of every series of a counter or gauge
// family whose labels include match (nil matches all). The demo's summary
// and the tests read metrics through it.
func (m *Metrics) Sum(family string, match map[string]string) float64 {
	mfs, err := m.Registry.Gather()
	if err != nil {
		return 0
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range match {
				if labels[k] != v {
					continue series
				}
			}
			switch {
			case s.Counter != nil:
				total += s.Counter.GetValue()
			case s.Gauge != nil:
				total += s.Gauge.GetValue()
			}
		}
	}
	return total
}
