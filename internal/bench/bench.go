// Package bench measures cxstream against a real Kafka broker and a real
// Redis, side by side with what those two allow on the machine: the raw
// consume ceiling, the pipelined Redis read-modify-write ceiling, the naive
// one-event-at-a-time design on the same code path, event-to-alert latency
// at a fixed offered load, and how throughput scales.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/gen"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors/sentiment"
	"github.com/cxstream/cxstream/schemas"
)

// Options of a benchmark run.
type Options struct {
	Brokers   []string
	RedisAddr string
	// Events in the main throughput run (default 1,000,000; quick 200,000).
	Events int
	// Users in the main run (default 100,000).
	Users int
	// ChatShare of the main run (default 0.15, as the demo).
	ChatShare float64
	// Partitions of the main run's input topics (default 4).
	Partitions int
	// Quick runs a smaller version (a few minutes) with the same fields.
	Quick bool
	// Runs: how many times the main figures (ceilings, cxstream end to
	// end, latency, the peer comparison) are measured; each is reported as
	// the median with the range (default 3; quick 1). The naive and
	// scaling rows run once.
	Runs int
	// CPUs pins, as "A:B" (taskset core lists), the system under test and
	// its state store (cxstream or the peer's JVM, and a local
	// redis-server) to cores A and the load generator (this process while
	// it produces the datasets) to cores B; test/bench/run.sh starts the
	// broker on B. Empty: nothing is pinned.
	CPUs string
	// Peer names a system to compare with on the same topics: "kstreams"
	// (the Kafka Streams peer in PeerDir, run with at_least_once and with
	// exactly_once_v2). Empty: no comparison.
	Peer string
	// PeerDir is the peer's Maven project (default test/peers/kstreams);
	// its jar is built with mvn when missing.
	PeerDir string
	// Config is what cxstream runs with in every run (nil: the defaults),
	// --config's file for `cxstream bench`; brokers, Redis, topics, group,
	// key prefix and HTTP address are the bench's own.
	Config *config.Config
	// WarmUp is how long live traffic runs through cxstream before
	// anything is measured (default 60 s; negative: none). A broker that
	// has just started spends most of a core compiling its hot paths for
	// its first minute or so of traffic; a broker in production has long
	// done so.
	WarmUp time.Duration
	// LatencyAt, when positive, measures nothing but event -> alert
	// latency at this offered load (events/s), Runs times, each run with
	// the machine's CPU split between this process, redis-server and the
	// rest (the broker): what latency to expect at a known traffic.
	LatencyAt float64
	// Log receives progress lines.
	Log io.Writer
}

// Peers the bench can compare with.
const PeerKStreams = "kstreams"

// ErrUnknownPeer: --peer names no peer the bench knows.
var ErrUnknownPeer = errors.New("unknown peer")

func (o *Options) validate() error {
	if o.Peer != "" && o.Peer != PeerKStreams {
		return fmt.Errorf("%w %q (known: %s)", ErrUnknownPeer, o.Peer, PeerKStreams)
	}
	if o.CPUs != "" {
		if _, err := ParseCPUs(o.CPUs); err != nil {
			return err
		}
	}
	if o.Runs < 0 {
		return fmt.Errorf("runs must be positive, got %d", o.Runs)
	}
	if !(o.LatencyAt >= 0) || math.IsInf(o.LatencyAt, 1) {
		return fmt.Errorf("latency-at must be a positive rate in events/s, got %v", o.LatencyAt)
	}
	if o.LatencyAt > 0 && o.Peer != "" {
		return errors.New("latency-at measures cxstream alone: it takes no peer")
	}
	return nil
}

func (o *Options) defaults() {
	if o.Events <= 0 {
		o.Events = 1_000_000
		if o.Quick {
			o.Events = 200_000
		}
	}
	if o.Users <= 0 {
		o.Users = 100_000
	}
	if o.ChatShare <= 0 {
		o.ChatShare = 0.15
	}
	if o.Partitions <= 0 {
		o.Partitions = 4
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Runs <= 0 {
		o.Runs = 3
		if o.Quick {
			o.Runs = 1
		}
	}
	if o.PeerDir == "" {
		o.PeerDir = "test/peers/kstreams"
	}
	if o.WarmUp == 0 {
		o.WarmUp = time.Minute
	}
}

// Result holds the figures; the JSON names are the contract of --json.
// The single-number fields are the medians over Runs; Stats holds every
// repeated figure's median, range and values by the same JSON name.
type Result struct {
	Events  int     `json:"events"`
	Runs    int     `json:"runs"`
	WarmUpS float64 `json:"warm_up_s"`
	// LatencyAtPerS is --latency-at's rate: the run measured latency alone
	// (Latency's one row), and the throughput fields are not measured.
	LatencyAtPerS      float64 `json:"latency_at_events_per_s,omitempty"`
	CPUs               string  `json:"cpus,omitempty"`
	CeilingEventsPerS  float64 `json:"ceiling_events_per_s"`
	ConsumeEventsPerS  float64 `json:"consume_events_per_s"`
	RedisRMWEventsPerS float64 `json:"redis_rmw_events_per_s"`
	EventsPerS         float64 `json:"events_per_s"`
	NaiveEventsPerS    float64 `json:"naive_events_per_s"`
	NaiveEvents        int     `json:"naive_events"`
	// The latency fields are those of the lowest load of Latency.
	LatencyOfferedPerS float64 `json:"latency_offered_events_per_s"`
	LatencyAlerts      int     `json:"latency_alerts"`
	LatencyP50Ms       float64 `json:"latency_p50_ms"`
	LatencyP95Ms       float64 `json:"latency_p95_ms"`
	LatencyP99Ms       float64 `json:"latency_p99_ms"`
	LatencyMaxMs       float64 `json:"latency_max_ms"`
	// CPUSecondsPerMillion counts this process and, when it runs on this
	// machine, redis-server; the two parts follow.
	CPUSecondsPerMillion        float64 `json:"cpu_s_per_million"`
	ProcessCPUSecondsPerMillion float64 `json:"process_cpu_s_per_million"`
	RedisCPUSecondsPerMillion   float64 `json:"redis_cpu_s_per_million"`
	// RSS of this process when the main run's first event was handled,
	// its peak and at its end; flat means no growth with volume.
	RSSStartMB float64 `json:"rss_start_mb"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	RSSEndMB   float64 `json:"rss_end_mb"`
	// RSSByQuarterMB: RSS after 1/4, 1/2, 3/4 and all of the main run.
	RSSByQuarterMB []float64 `json:"rss_by_quarter_mb"`
	// RedisRSSMB: redis-server's RSS at the end of the main run (0: not local).
	RedisRSSMB float64         `json:"redis_rss_mb"`
	Stats      map[string]Stat `json:"stats"`
	// Latency at 20%, 50% and 80% of the measured maximum.
	Latency    []LatencyRow `json:"latency"`
	Comparison *Comparison  `json:"comparison,omitempty"`
	Scaling    []Row        `json:"scaling"`
	Machine    string       `json:"machine"`
}

// LatencyRow is event -> alert latency at one offered load, over the runs.
type LatencyRow struct {
	LoadShare   float64 `json:"load_share"`
	OfferedPerS Stat    `json:"offered_events_per_s"`
	Alerts      Stat    `json:"alerts"`
	P50Ms       Stat    `json:"p50_ms"`
	P95Ms       Stat    `json:"p95_ms"`
	P99Ms       Stat    `json:"p99_ms"`
	P999Ms      Stat    `json:"p999_ms"`
	MaxMs       Stat    `json:"max_ms"`
}

// Comparison is the side-by-side run of cxstream and a peer on the main
// dataset, with the word-list scorer and the comparison funnel.
type Comparison struct {
	Peer   string `json:"peer"`
	Events int    `json:"events"`
	// Funnel is what both ran: window and allowed lateness in ms.
	FunnelWindowMs int64 `json:"funnel_window_ms"`
	LatenessMs     int64 `json:"allowed_lateness_ms"`
	// Funnels are cxstream's figures (of the last run); every system's
	// agreed with them, or the bench failed.
	Funnels []FunnelFigures `json:"funnels"`
	Systems []SystemRow     `json:"systems"`
}

// SystemRow is one system's figures in the comparison, over the runs.
type SystemRow struct {
	System string `json:"system"`
	// Guarantee is the peer's processing.guarantee ("" for cxstream, whose
	// state is fenced and exactly once, its alerts at least once with
	// stable ids).
	Guarantee string `json:"guarantee"`
	// Work is what cxstream ran: "all processors" (churn, segments and
	// funnel breakdowns too) or "the peer's work" (funnel and sentiment
	// alone); "" for the peer.
	Work string `json:"work,omitempty"`
	// CPU counts every process of the system: cxstream and redis-server,
	// or the peer's JVM (RocksDB included).
	EventsPerS           Stat `json:"events_per_s"`
	EventsPerCPUSecond   Stat `json:"events_per_cpu_s"`
	CPUSecondsPerMillion Stat `json:"cpu_s_per_million"`
	PeakRSSMB            Stat `json:"peak_rss_mb"`
}

// Row is one scaling run.
type Row struct {
	Name       string  `json:"name"`
	Partitions int     `json:"partitions"`
	Users      int     `json:"users"`
	ChatShare  float64 `json:"chat_share"`
	Events     int     `json:"events"`
	EventsPerS float64 `json:"events_per_s"`
}

// latencyShares are the offered loads of the latency runs, as shares of
// the throughput measured in the same run.
var latencyShares = []float64{0.2, 0.5, 0.8}

// Run runs every measurement in turn.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	b := &bencher{o: o, run: strconv.FormatInt(time.Now().UnixNano()%1e9, 36)}
	var err error
	if o.CPUs != "" {
		b.cpus, _ = ParseCPUs(o.CPUs)
		if b.cpusAtStart, err = affinity(os.Getpid()); err != nil {
			return nil, err
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.Brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	b.adm = kadm.NewClient(cl)
	b.rdb = redis.NewClient(&redis.Options{Addr: o.RedisAddr, PoolSize: 32})
	defer b.rdb.Close()
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis at %s: %w", o.RedisAddr, err)
	}
	if b.scorer, err = sentiment.NewDefaultScorer(); err != nil {
		return nil, err
	}
	b.redisPID = localRedisPID(ctx, b.rdb)
	if b.redisPID == 0 {
		b.logf("redis-server is not on this machine: its CPU is not counted")
	}
	if o.Peer != "" {
		if err := b.buildPeer(ctx); err != nil {
			return nil, err
		}
	}
	if err := b.pinRedis(); err != nil {
		return nil, err
	}
	res := &Result{Events: o.Events, Runs: o.Runs, CPUs: o.CPUs, Machine: machine(), Stats: map[string]Stat{}}
	defer b.pinOff()
	if err := b.warmUp(ctx, res); err != nil {
		return nil, err
	}

	if o.LatencyAt > 0 {
		return b.latencyOnly(ctx, res)
	}
	if err := b.pinLoad(); err != nil {
		return nil, err
	}
	b.phase(ctx, "dataset")
	main, err := b.dataset(ctx, "main", o.Events, o.Users, o.ChatShare, o.Partitions)
	if err != nil {
		return nil, err
	}
	series := map[string][]float64{}
	add := func(name string, v float64) { series[name] = append(series[name], v) }
	latency := make([]map[string][]float64, len(latencyShares))
	for i := range latency {
		latency[i] = map[string][]float64{}
	}
	var cmp *comparison
	for run := 1; run <= o.Runs; run++ {
		if o.Runs > 1 {
			b.logf("run %d of %d", run, o.Runs)
		}
		if err := b.pinSUT(); err != nil {
			return nil, err
		}
		b.phase(ctx, "ceiling")
		consume, err := b.consumeCeiling(ctx, main)
		if err != nil {
			return nil, err
		}
		b.logf("ceiling: raw consume %.0f events/s", consume)
		rmw, err := b.redisCeiling(ctx, o.Users, min(o.Events, 500_000))
		if err != nil {
			return nil, err
		}
		b.logf("ceiling: pipelined Redis read-modify-write %.0f events/s", rmw)
		add("consume_events_per_s", consume)
		add("redis_rmw_events_per_s", rmw)
		add("ceiling_events_per_s", min(consume, rmw))

		b.phase(ctx, "cxstream")
		m, err := b.process(ctx, main, b.config(main), runner.Options{Scorer: b.scorer}, nil)
		if err != nil {
			return nil, err
		}
		add("events_per_s", m.perS)
		add("cpu_s_per_million", m.cpuPerMillion)
		add("process_cpu_s_per_million", m.processCPUPerMillion)
		add("redis_cpu_s_per_million", m.redisCPUPerMillion)
		add("rss_start_mb", m.rssStartMB)
		add("peak_rss_mb", m.peakRSSMB)
		add("rss_end_mb", m.rssEndMB)
		add("redis_rss_mb", m.redisRSSMB)
		res.RSSByQuarterMB = m.rssByQuarter[:]
		b.logf("cxstream: %.0f events/s, %.1f CPU s per million events (%.1f cxstream, %.1f redis-server), RSS start %.0f, peak %.0f, end %.0f MB (1/4, 1/2, 3/4: %.0f %.0f %.0f MB)",
			m.perS, m.cpuPerMillion, m.processCPUPerMillion, m.redisCPUPerMillion, m.rssStartMB, m.peakRSSMB, m.rssEndMB, m.rssByQuarter[0], m.rssByQuarter[1], m.rssByQuarter[2])
		b.logf("cxstream: Redis per event: %s", m.redisCommands)

		b.phase(ctx, "latency")
		for i, share := range latencyShares {
			l, err := b.latency(ctx, share*m.perS, latencyRamp, b.latencyRun())
			if err != nil {
				return nil, err
			}
			l.addTo(latency[i])
			b.logf("latency at %.0f%% (%.0f events/s): p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms over %d alerts", 100*share, l.offered, l.p50, l.p99, l.p999, l.max, l.alerts)
		}
		if o.Peer != "" {
			if cmp, err = b.compare(ctx, main, cmp); err != nil {
				return nil, err
			}
		}
	}
	for name, values := range series {
		res.Stats[name] = Summarize(values)
	}
	med := func(name string) float64 { return res.Stats[name].Median }
	res.ConsumeEventsPerS, res.RedisRMWEventsPerS, res.CeilingEventsPerS = med("consume_events_per_s"), med("redis_rmw_events_per_s"), med("ceiling_events_per_s")
	res.EventsPerS, res.CPUSecondsPerMillion = med("events_per_s"), med("cpu_s_per_million")
	res.ProcessCPUSecondsPerMillion, res.RedisCPUSecondsPerMillion = med("process_cpu_s_per_million"), med("redis_cpu_s_per_million")
	res.RSSStartMB, res.PeakRSSMB, res.RSSEndMB, res.RedisRSSMB = med("rss_start_mb"), med("peak_rss_mb"), med("rss_end_mb"), med("redis_rss_mb")
	rows := make([]LatencyRow, len(latencyShares))
	for i, share := range latencyShares {
		rows[i] = latencyRow(share, latency[i])
	}
	res.setLatency(rows)
	if cmp != nil {
		res.Comparison = cmp.result()
	}

	naiveN := min(o.Events, 50_000)
	if o.Quick {
		naiveN = min(o.Events, 20_000)
	}
	if err := b.pinLoad(); err != nil {
		return nil, err
	}
	b.phase(ctx, "dataset")
	naive, err := b.dataset(ctx, "naive", naiveN, o.Users, o.ChatShare, o.Partitions)
	if err != nil {
		return nil, err
	}
	if err := b.pinSUT(); err != nil {
		return nil, err
	}
	b.phase(ctx, "naive")
	nm, err := b.process(ctx, naive, b.config(naive), runner.Options{Scorer: b.scorer, Naive: true}, nil)
	if err != nil {
		return nil, err
	}
	res.NaiveEventsPerS, res.NaiveEvents = nm.perS, naiveN
	b.logf("naive (round trips per event): %.0f events/s", nm.perS)

	scaleN := 300_000
	if o.Quick {
		scaleN = 60_000
	}
	type variant struct {
		name       string
		partitions int
		users      int
		chat       float64
	}
	variants := []variant{
		{"1 partition", 1, o.Users, o.ChatShare}, {"2 partitions", 2, o.Users, o.ChatShare}, {"4 partitions", 4, o.Users, o.ChatShare},
		{"10k users", o.Partitions, 10_000, o.ChatShare}, {"100k users", o.Partitions, 100_000, o.ChatShare}, {"1M users", o.Partitions, 1_000_000, o.ChatShare},
		{"10% chat", o.Partitions, o.Users, 0.10}, {"50% chat", o.Partitions, o.Users, 0.50},
	}
	for _, v := range variants {
		if err := b.pinLoad(); err != nil {
			return nil, err
		}
		b.phase(ctx, "dataset")
		ds, err := b.dataset(ctx, "scale", scaleN, v.users, v.chat, v.partitions)
		if err != nil {
			return nil, err
		}
		if err := b.pinSUT(); err != nil {
			return nil, err
		}
		b.phase(ctx, "scaling")
		sm, err := b.process(ctx, ds, b.config(ds), runner.Options{Scorer: b.scorer}, nil)
		if err != nil {
			return nil, err
		}
		res.Scaling = append(res.Scaling, Row{Name: v.name, Partitions: v.partitions, Users: v.users, ChatShare: v.chat, Events: scaleN, EventsPerS: sm.perS})
		b.logf("scaling %-13s %8.0f events/s", v.name, sm.perS)
	}
	return res, nil
}

type bencher struct {
	o        Options
	run      string
	seq      int
	adm      *kadm.Client
	rdb      *redis.Client
	scorer   *sentiment.DefaultScorer
	redisPID int     // 0: redis-server is not local
	cpus     CPUSets // zero: nothing pinned
	// cpusAtStart is this process's core list before any pinning.
	cpusAtStart string
}

// pinSUT moves this process to the system-under-test cores (it is about to
// run cxstream, or measure a ceiling of what cxstream uses).
func (b *bencher) pinSUT() error {
	if b.cpus.SUT == "" {
		return nil
	}
	return pin(os.Getpid(), b.cpus.SUT)
}

// pinLoad moves this process to the load cores (it is about to produce a
// dataset, beside the broker).
func (b *bencher) pinLoad() error {
	if b.cpus.Load == "" {
		return nil
	}
	return pin(os.Getpid(), b.cpus.Load)
}

// pinRedis puts a local redis-server on the system-under-test cores: it is
// cxstream's state store.
func (b *bencher) pinRedis() error {
	if b.cpus.SUT == "" {
		return nil
	}
	if b.redisPID == 0 {
		b.logf("--cpus: redis-server is not local, not pinned")
		return nil
	}
	return pin(b.redisPID, b.cpus.SUT)
}

// pinOff gives this process the cores it started with.
func (b *bencher) pinOff() {
	if b.cpus.SUT != "" && b.cpusAtStart != "" {
		_ = pin(os.Getpid(), b.cpusAtStart)
	}
}

// phase labels what this goroutine, and every goroutine it starts from
// now on (the processor's, its Kafka client's), does in a CPU profile:
// go tool pprof -tagfocus phase=cxstream keeps the main run alone.
func (b *bencher) phase(ctx context.Context, name string) {
	pprof.SetGoroutineLabels(pprof.WithLabels(ctx, pprof.Labels("phase", name)))
}

func (b *bencher) logf(format string, args ...any) {
	fmt.Fprintf(b.o.Log, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// dataset is a set of topics holding generated events.
type dataset struct {
	name                            string
	clickstream, chat, alerts, dead string
	segments                        string
	events                          int
	partitions                      int
}

// dataset creates topics and fills them with n generated events.
func (b *bencher) dataset(ctx context.Context, name string, n, users int, chat float64, partitions int) (*dataset, error) {
	b.seq++
	prefix := fmt.Sprintf("bench-%s-%s-%d-", b.run, name, b.seq)
	d := &dataset{name: name, clickstream: prefix + "clickstream", chat: prefix + "chat", alerts: prefix + "alerts", dead: prefix + "dead", segments: prefix + "segments", events: n, partitions: partitions}
	for _, t := range []string{d.clickstream, d.chat, d.alerts, d.dead, d.segments} {
		// Output topics get as many partitions as the inputs, as in a
		// deployment: with one, every worker's acknowledged produce would
		// queue behind the others'.
		resp, err := b.adm.CreateTopic(ctx, int32(partitions), 1, nil, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return nil, fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.o.Brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(200_000))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	g := gen.New(gen.Options{Users: users, Seed: uint64(b.seq), ChatShare: chat})
	start := time.Now()
	var failed sync.Once
	var produceErr error
	base := time.Now().Add(-30 * time.Minute)
	for i := range n {
		ev := g.Next(base.Add(time.Duration(i) * time.Millisecond))
		topic := d.clickstream
		if ev.Kind == gen.Chat {
			topic = d.chat
		}
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(ev.Key), Value: ev.Value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Do(func() { produceErr = err })
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, err
	}
	if produceErr != nil {
		return nil, fmt.Errorf("produce: %w", produceErr)
	}
	b.logf("dataset %s: %d events, %d users, %.0f%% chat, %d partitions, produced in %s", name, n, users, chat*100, partitions, time.Since(start).Round(time.Millisecond))
	return d, nil
}

// consumeCeiling reads the dataset with franz-go and nothing else.
func (b *bencher) consumeCeiling(ctx context.Context, d *dataset) (float64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.o.Brokers...), kgo.ConsumeTopics(d.clickstream, d.chat), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	start := time.Now()
	got := 0
	for got < d.events {
		f := cl.PollRecords(ctx, 10_000)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		got += f.NumRecords()
	}
	return float64(got) / time.Since(start).Seconds(), nil
}

// redisCeiling does the same users' state read-modify-writes, pipelined in
// batches of 500 as the processor does, with documents of realistic size
// and nothing else.
func (b *bencher) redisCeiling(ctx context.Context, users, n int) (float64, error) {
	st := state.New(b.rdb, state.Options{Prefix: "bench-ceiling-" + b.run})
	doc := []byte(`{"fence":{"cx.clickstream.v1/0":123456},"seen":[1,2,3,4,5,6,7,8],"funnel":{"purchase":{"b":{"s":1,"e":1763900000000,"st":[1763900000000,1763900001000],"rc":[3,2,1,1],"c":1},"n":{"s":1,"e":1763900000000,"rc":[3,2,1,1],"c":1},"x":{"tm":42000,"ls":[42000]}}},"churn":{"f":1763800000000,"l":1763900001000,"p":1,"m":49.9,"d":20410,"n":[4,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"s":0.04}}`)
	const batch = 500
	var wg sync.WaitGroup
	workers := 4
	per := n / workers
	start := time.Now()
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i += batch {
				ids := make([]string, 0, batch)
				for j := i; j < min(i+batch, per); j++ {
					// Each worker owns a disjoint range of users, as each
					// partition does.
					share := max(1, users/workers)
					ids = append(ids, "u"+strconv.Itoa(w*share+(j*7919)%share))
				}
				docs, err := st.Load(ctx, ids)
				if err != nil {
					errs <- err
					return
				}
				writes := make([]state.Write, 0, len(ids))
				seen := map[string]bool{}
				for _, id := range ids {
					if !seen[id] {
						seen[id] = true
						writes = append(writes, state.Write{User: id, Side: state.Click, Expect: docs[id].Click.Version, Data: doc})
					}
				}
				if err := st.Save(ctx, writes); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(per*workers) / time.Since(start).Seconds(), nil
}

type measured struct {
	perS, cpuPerMillion float64
	// The CPU split: this process, and a local redis-server.
	processCPUPerMillion, redisCPUPerMillion    float64
	rssStartMB, peakRSSMB, rssEndMB, redisRSSMB float64
	// rssByQuarter is the RSS when a quarter, half, three quarters and all
	// of the events were handled: flat means no growth with volume.
	rssByQuarter [4]float64
	// redisCommands: what Redis did per event over the same span.
	redisCommands string
}

// process runs the real processor over a dataset until its group has
// committed everything, measuring time, CPU (its own and redis-server's)
// and memory; atEnd, when given, runs then, before the processor stops.
func (b *bencher) process(ctx context.Context, d *dataset, cfg config.Config, opts runner.Options, atEnd func(*runner.Processor) error) (measured, error) {
	p, err := runner.New(cfg, zap.NewNop(), opts)
	if err != nil {
		return measured{}, err
	}
	cpu0, redis0 := cpuSeconds(), b.redisCPU()
	start := time.Now()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	peak := rssMB()
	var m measured
	// Sustained throughput: the clock starts at the first event handled,
	// not at the group join before it.
	started := false
	var stats0 commandStats
	for {
		received := p.Metrics.Sum("cx_events_received_total", nil)
		if !started && received > 0 {
			stats0 = readCommandStats(ctx, b.rdb)
			start, cpu0, redis0, started = time.Now(), cpuSeconds(), b.redisCPU(), true
			m.rssStartMB = rssMB()
			peak = m.rssStartMB
		}
		if q := int(4 * received / float64(d.events)); q > 0 && m.rssByQuarter[min(q, 4)-1] == 0 {
			m.rssByQuarter[min(q, 4)-1] = rssMB()
		}
		if lag, err := b.lag(ctx, d, cfg.Kafka.Group); err == nil && lag == 0 {
			break
		}
		select {
		case err := <-done:
			stop()
			return measured{}, fmt.Errorf("processor stopped: %w", err)
		case <-ctx.Done():
			stop()
			<-done
			return measured{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if started {
			peak = max(peak, rssMB())
		}
	}
	elapsed := time.Since(start)
	cpu, redisCPU := cpuSeconds()-cpu0, b.redisCPU()-redis0
	m.rssEndMB = rssMB()
	m.peakRSSMB = max(peak, m.rssEndMB)
	if b.redisPID != 0 {
		m.redisRSSMB = procRSSMB(b.redisPID)
	}
	if stats0 != nil {
		m.redisCommands = readCommandStats(ctx, b.rdb).perEvent(stats0, d.events)
	}
	var endErr error
	if atEnd != nil {
		endErr = atEnd(p)
	}
	stop()
	<-done
	perMillion := 1e6 / float64(d.events)
	m.perS = float64(d.events) / elapsed.Seconds()
	m.processCPUPerMillion, m.redisCPUPerMillion = cpu*perMillion, redisCPU*perMillion
	m.cpuPerMillion = m.processCPUPerMillion + m.redisCPUPerMillion
	return m, endErr
}

// redisCPU is a local redis-server's CPU seconds so far (0: not local).
func (b *bencher) redisCPU() float64 {
	if b.redisPID == 0 {
		return 0
	}
	s, _ := procCPUSeconds(b.redisPID)
	return s
}

func (b *bencher) config(d *dataset) config.Config {
	cfg := config.Default()
	if b.o.Config != nil {
		cfg = *b.o.Config
	}
	cfg.Kafka.Brokers = b.o.Brokers
	b.seq++
	cfg.Kafka.Group = fmt.Sprintf("bench-%s-%d", b.run, b.seq)
	cfg.Redis.Addrs = []string{b.o.RedisAddr}
	cfg.Redis.KeyPrefix = fmt.Sprintf("bench-%s-%d", b.run, b.seq)
	cfg.Topics.Clickstream, cfg.Topics.Chat, cfg.Topics.Alerts, cfg.Topics.DeadLetter = d.clickstream, d.chat, d.alerts, d.dead
	cfg.Topics.Segments = d.segments
	cfg.HTTP.Addr = ""
	cfg.Processing.ShutdownTimeout = 10 * time.Second
	return cfg
}

func (b *bencher) lag(ctx context.Context, d *dataset, group string) (int64, error) {
	ends, err := b.adm.ListEndOffsets(ctx, d.clickstream, d.chat)
	if err != nil {
		return 0, err
	}
	committed, err := b.adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) {
		at := int64(0)
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.At > 0 {
			at = c.At
		}
		lag += o.Offset - at
	})
	return lag, nil
}

// latencyFigures are one latency run's.
type latencyFigures struct {
	offered                  float64
	alerts                   int
	p50, p95, p99, p999, max float64
	// keyPrefix is the run's Redis key prefix.
	keyPrefix string
}

// addTo appends the run's figures to the series of its load.
func (l latencyFigures) addTo(series map[string][]float64) {
	for k, v := range map[string]float64{"offered": l.offered, "alerts": float64(l.alerts), "p50": l.p50, "p95": l.p95, "p99": l.p99, "p999": l.p999, "max": l.max} {
		series[k] = append(series[k], v)
	}
}

// setLatency sets the latency rows, and the single latency fields from the
// first (lowest load).
func (res *Result) setLatency(rows []LatencyRow) {
	res.Latency = rows
	low := rows[0]
	res.LatencyOfferedPerS, res.LatencyAlerts = low.OfferedPerS.Median, int(low.Alerts.Median)
	res.LatencyP50Ms, res.LatencyP95Ms, res.LatencyP99Ms, res.LatencyMaxMs = low.P50Ms.Median, low.P95Ms.Median, low.P99Ms.Median, low.MaxMs.Median
}

func latencyRow(share float64, l map[string][]float64) LatencyRow {
	return LatencyRow{LoadShare: share, OfferedPerS: Summarize(l["offered"]), Alerts: Summarize(l["alerts"]),
		P50Ms: Summarize(l["p50"]), P95Ms: Summarize(l["p95"]), P99Ms: Summarize(l["p99"]), P999Ms: Summarize(l["p999"]), MaxMs: Summarize(l["max"])}
}

// windowEvery: a latency run longer than this logs its CPU split per
// window of this length.
const windowEvery = 15 * time.Second

// latencyRamp is how long each latency run offers its load before it
// counts (see latency).
const latencyRamp = 5 * time.Second

// latencyRun is how long each latency run offers load and counts.
func (b *bencher) latencyRun() time.Duration {
	if b.o.Quick {
		return 6 * time.Second
	}
	return 20 * time.Second
}

// warmUpRate is the load of the warm-up, in events/s: --latency-at's, or
// one most machines the bench runs on take with room to spare.
func (b *bencher) warmUpRate() float64 {
	if b.o.LatencyAt > 0 {
		return b.o.LatencyAt
	}
	return 10_000
}

// warmUp offers live traffic to cxstream (a latency run whose figures are
// logged, not counted) so that the broker, Redis and this process are
// past their start-up costs when the measurements begin.
func (b *bencher) warmUp(ctx context.Context, res *Result) error {
	if b.o.WarmUp <= 0 {
		return nil
	}
	if err := b.pinSUT(); err != nil {
		return err
	}
	b.phase(ctx, "warm-up")
	b.logf("warm-up: %s of live traffic at %.0f events/s, not counted", b.o.WarmUp, b.warmUpRate())
	l, err := b.latency(ctx, b.warmUpRate(), 0, b.o.WarmUp)
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	b.logf("warm-up done (not counted): latency p50 %.1f ms, p99 %.1f ms over %d alerts", l.p50, l.p99, l.alerts)
	res.WarmUpS = b.o.WarmUp.Seconds()
	// Its users' state would otherwise count in redis-server's RSS.
	return b.dropKeys(ctx, l.keyPrefix)
}

// latencyOnly is the --latency-at run: latency at one offered load, Runs
// times, and nothing else.
func (b *bencher) latencyOnly(ctx context.Context, res *Result) (*Result, error) {
	if err := b.pinSUT(); err != nil {
		return nil, err
	}
	b.phase(ctx, "latency")
	series := map[string][]float64{}
	for run := 1; run <= b.o.Runs; run++ {
		l, err := b.latency(ctx, b.o.LatencyAt, latencyRamp, b.latencyRun())
		if err != nil {
			return nil, err
		}
		l.addTo(series)
		b.logf("latency run %d of %d at %.0f events/s: p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms over %d alerts", run, b.o.Runs, l.offered, l.p50, l.p99, l.p999, l.max, l.alerts)
	}
	res.Events, res.LatencyAtPerS = 0, b.o.LatencyAt
	res.setLatency([]LatencyRow{latencyRow(0, series)})
	return res, nil
}

// latencyDrain is how long a latency run goes on, under the same load,
// after its counted part, so the alerts of that part's last events arrive.
const latencyDrain = 5 * time.Second

// latency offers rate events/s for ramp and then dur, and measures, for
// every negative-chat alert of an event of the dur part, the time from its
// triggering chat message's event time (stamped when produced) to the
// alert being read from the alert topic. The generator runs in this
// process, beside the processor.
func (b *bencher) latency(ctx context.Context, rate float64, ramp, dur time.Duration) (latencyFigures, error) {
	d, err := b.dataset(ctx, "latency", 0, b.o.Users, b.o.ChatShare, b.o.Partitions)
	if err != nil {
		return latencyFigures{}, err
	}
	cfg := b.config(d)
	p, err := runner.New(cfg, zap.NewNop(), runner.Options{Scorer: b.scorer})
	if err != nil {
		return latencyFigures{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	defer func() { stop(); <-done }()

	reader, err := kgo.NewClient(kgo.SeedBrokers(b.o.Brokers...), kgo.ConsumeTopics(d.alerts), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		return latencyFigures{}, err
	}
	defer reader.Close()
	// Let the group settle before offering load.
	time.Sleep(3 * time.Second)

	rate = max(1000, rate)
	producer, err := kgo.NewClient(kgo.SeedBrokers(b.o.Brokers...), kgo.ProducerLinger(0))
	if err != nil {
		return latencyFigures{}, err
	}
	defer producer.Close()
	var stats gen.Stats
	// The load goes on while the last counted alerts drain: stopped at the
	// end of the counted part, it would leave the last chats of each
	// partition without a later click to merge against, and they would
	// wait out align_wait, a wait that only the end of a run causes.
	prodCtx, prodStop := context.WithTimeout(ctx, ramp+dur+latencyDrain)
	defer prodStop()
	prodDone := make(chan error, 1)
	go func() {
		prodDone <- gen.New(gen.Options{Users: b.o.Users, Seed: 99, ChatShare: b.o.ChatShare}).
			Produce(prodCtx, producer, gen.Topics{Clickstream: d.clickstream, Chat: d.chat}, rate, 0, &stats)
	}()
	// Alerts of events from the first ramp of the load are not counted,
	// nor is the CPU then: each run's new topics, group and producer, and
	// a broker leaving the bulk reads of the run before, cost the broker
	// most of a core for a few seconds.
	countFrom := time.Now().Add(ramp)
	countUntil := countFrom.Add(dur)
	var (
		cpu0, window          cpuSample
		cmds0                 commandStats
		produced0             int64
		windowAt              time.Time
		cpu                   cpuShares
		cmds                  string
		lat, toDetect, toRead []float64
	)
	deadline := countUntil.Add(latencyDrain)
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return latencyFigures{}, err
		}
		if cpu0.at.IsZero() && !time.Now().Before(countFrom) {
			cpu0, cmds0, produced0 = b.cpuSplit(), readCommandStats(ctx, b.rdb), stats.Produced.Load()
			window, windowAt = cpu0, cpu0.at.Add(windowEvery)
		}
		if cpu.wall == 0 && !cpu0.at.IsZero() && !time.Now().Before(countUntil) {
			cpu = b.cpuSplit().since(cpu0)
			cmds = readCommandStats(ctx, b.rdb).perEvent(cmds0, int(stats.Produced.Load()-produced0))
		}
		if dur >= 2*windowEvery && cpu.wall == 0 && !cpu0.at.IsZero() && time.Now().After(windowAt) {
			// A long run (the warm-up) shows how the CPU settles.
			now := b.cpuSplit()
			w := now.since(window)
			b.logf("warm-up: the last %s, in cores: machine %.2f, this process %.2f, redis-server %.2f, the rest (the broker) %.2f; steal %.2f",
				windowEvery, w.machine, w.process, w.redis, w.machine-w.process-w.redis, w.steal)
			window, windowAt = now, now.at.Add(windowEvery)
		}
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		f := reader.PollFetches(pctx)
		pcancel()
		now := time.Now().UnixMilli()
		f.EachRecord(func(r *kgo.Record) {
			var a alertTimes
			if gojson.Unmarshal(r.Value, &a) == nil && a.Type == schemas.AlertNegativeChat && a.EventTime >= countFrom.UnixMilli() && a.EventTime < countUntil.UnixMilli() {
				lat = append(lat, float64(now-a.EventTime))
				toDetect = append(toDetect, float64(a.DetectedAt-a.EventTime))
				toRead = append(toRead, float64(now-a.DetectedAt))
			}
		})
	}
	if err := <-prodDone; err != nil {
		return latencyFigures{}, err
	}
	if len(lat) == 0 {
		return latencyFigures{}, fmt.Errorf("no alert arrived during the latency run at %.0f events/s", rate)
	}
	b.logf("latency run: processor batch time p50 %.1f ms, p99 %.1f ms over %d batches",
		1000*histQuantile(p.Metrics.Registry, "cx_batch_seconds", 0.5), 1000*histQuantile(p.Metrics.Registry, "cx_batch_seconds", 0.99),
		int(histCount(p.Metrics.Registry, "cx_batch_seconds")))
	reg := p.Metrics.Registry
	split := func(name string, labels ...string) string {
		return fmt.Sprintf("%.1f/%.1f", 1000*histQuantile(reg, name, 0.5, labels...), 1000*histQuantile(reg, name, 0.99, labels...))
	}
	b.logf("latency run: batch steps p50/p99 ms: load (users and due timers) %s, publish %s, support queue %s, save %s; watermark on its own (ticks) %s",
		split("cx_redis_seconds", "op", "load"), split("cx_publish_seconds"), split("cx_redis_seconds", "op", "queue"),
		split("cx_redis_seconds", "op", "save"), split("cx_redis_seconds", "op", "watermark"))
	b.logf("latency run: consumer wait p50/p99 ms before a record's batch: queued behind its partition's batch %s, merge of the two topics %s",
		split("cx_consumer_wait_seconds", "stage", "queued"), split("cx_consumer_wait_seconds", "stage", "merge"))
	if cpu.wall > 0 {
		b.logf("latency run: Redis per event offered: %s", cmds)
	}
	if cpu.wall > 0 && cpu.machine > 0 {
		b.logf("latency run: CPU while offering load, in cores: machine %.2f of %d (this process: cxstream, generator and reader %.2f; redis-server %.2f; the rest, mostly the broker, %.2f); taken by the hypervisor (steal) %.2f",
			cpu.machine, machineCPUs(), cpu.process, cpu.redis, cpu.machine-cpu.process-cpu.redis, cpu.steal)
	}
	if cpu.wall > 0 && cpu.gcCycles > 0 {
		// A collection's mark phase takes a share of this process's cores
		// for tens of milliseconds: where the machine is busy, that is
		// when the slowest alerts cluster.
		b.logf("latency run: Go GC in this process: %d collections, one every %.1f s, %.2f cores (%.0f%% of this process's CPU)",
			cpu.gcCycles, cpu.wall/float64(cpu.gcCycles), cpu.gc, 100*cpu.gc/max(cpu.process, 1e-9))
	}
	slices.Sort(toDetect)
	slices.Sort(toRead)
	b.logf("latency split: event -> detected p50 %.0f p99 %.0f ms; detected -> alert read p50 %.0f p99 %.0f ms",
		toDetect[len(toDetect)/2], toDetect[len(toDetect)*99/100], toRead[len(toRead)/2], toRead[len(toRead)*99/100])
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return latencyFigures{offered: rate, alerts: len(lat), p50: q(0.50), p95: q(0.95), p99: q(0.99), p999: q(0.999), max: lat[len(lat)-1], keyPrefix: cfg.Redis.KeyPrefix}, nil
}

// alertTimes is what the latency reader needs of an alert: decoding the
// whole alert with encoding/json took about 3% of the bench process's CPU
// at 15,000 events/s, on the cores the system under test runs on.
type alertTimes struct {
	Type       string `json:"type"`
	EventTime  int64  `json:"event_time"`
	DetectedAt int64  `json:"detected_at"`
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func machine() string {
	cpus := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpus = strings.Count(string(b), "processor\t:")
	}
	return fmt.Sprintf("%d CPUs; a goroutine's sleep and wake-up costs %.0f us of CPU", cpus, wakeCostUS())
}

// wakeCostUS is what this process spends, in CPU microseconds, for a
// goroutine to sleep 1 ms and wake up with nothing else to run: the
// runtime going idle and back, a timer, a few system calls. A few
// microseconds on bare metal, about a hundred under nested
// virtualisation, where it is much of what a live batch costs beyond
// its events (README, "What a batch costs at half load"), so figures of
// machines that differ here do not compare at half load.
func wakeCostUS() float64 {
	const n = 200
	start := cpuSeconds()
	for range n {
		time.Sleep(time.Millisecond)
	}
	return (cpuSeconds() - start) / n * 1e6
}

// Print writes the result as a table. With several runs each figure is
// the median, followed by the range (min-max) over the runs.
func Print(w io.Writer, r *Result) {
	row := func(name, v, unit, note string) {
		fmt.Fprintf(w, "%-44s %26s %-14s %s\n", name, v, unit, note)
	}
	stat := func(name string, verb string) string {
		if s, ok := r.Stats[name]; ok {
			return s.Format(verb)
		}
		return "-"
	}
	runs := "1 run"
	if r.Runs > 1 {
		runs = fmt.Sprintf("median (range) of %d runs", r.Runs)
	}
	pinned := "nothing pinned"
	if r.CPUs != "" {
		c, _ := ParseCPUs(r.CPUs)
		pinned = fmt.Sprintf("cxstream, peer and redis-server on cores %s; load generator (and broker, via run.sh) on %s", c.SUT, c.Load)
	}
	if r.WarmUpS > 0 {
		pinned += fmt.Sprintf("; after %.0f s of warm-up traffic", r.WarmUpS)
	}
	what := fmt.Sprintf("%d events", r.Events)
	if r.LatencyAtPerS > 0 {
		what = fmt.Sprintf("latency alone at %.0f events/s", r.LatencyAtPerS)
	}
	fmt.Fprintf(w, "\ncxstream bench (%s, %s, %s; %s)\n", r.Machine, what, runs, pinned)
	latency := func(load string, l LatencyRow) {
		row("latency p50 "+load, l.P50Ms.Format("%.1f"), "ms", "produce -> alert readable")
		row("latency p99", l.P99Ms.Format("%.1f"), "ms", "")
		row("latency p99.9", l.P999Ms.Format("%.1f"), "ms", fmt.Sprintf("%s alerts", l.Alerts.Format("%.0f")))
		row("latency max", l.MaxMs.Format("%.1f"), "ms", "")
	}
	if r.LatencyAtPerS > 0 {
		for _, l := range r.Latency {
			latency(fmt.Sprintf("at %s events/s", l.OfferedPerS.Format("%.0f")), l)
		}
		return
	}
	row("ceiling: raw franz-go consume", stat("consume_events_per_s", "%.0f"), "events/s", "")
	row("ceiling: pipelined Redis read-modify-write", stat("redis_rmw_events_per_s", "%.0f"), "events/s", "")
	row("ceiling (the lower)", stat("ceiling_events_per_s", "%.0f"), "events/s", "")
	row("cxstream end to end", stat("events_per_s", "%.0f"), "events/s", fmt.Sprintf("%.0f%% of ceiling", 100*r.EventsPerS/r.CeilingEventsPerS))
	row("naive: Redis round trips per event", fmt.Sprintf("%.0f", r.NaiveEventsPerS), "events/s", fmt.Sprintf("cxstream is %.1fx (%d events)", r.EventsPerS/r.NaiveEventsPerS, r.NaiveEvents))
	row("CPU per million events", stat("cpu_s_per_million", "%.1f"), "CPU s", fmt.Sprintf("cxstream %s + redis-server %s", stat("process_cpu_s_per_million", "%.1f"), stat("redis_cpu_s_per_million", "%.1f")))
	row("RSS at the first event", stat("rss_start_mb", "%.0f"), "MB", "whole benchmark process")
	row("RSS peak", stat("peak_rss_mb", "%.0f"), "MB", "")
	row("RSS at the end", stat("rss_end_mb", "%.0f"), "MB", fmt.Sprintf("after 1/4, 1/2, 3/4, all of the last run: %s MB", joinMB(r.RSSByQuarterMB)))
	if r.RedisRSSMB > 0 {
		row("redis-server RSS at the end", stat("redis_rss_mb", "%.0f"), "MB", "")
	}
	for _, l := range r.Latency {
		latency(fmt.Sprintf("at %.0f%% (%s events/s)", 100*l.LoadShare, l.OfferedPerS.Format("%.0f")), l)
	}
	for _, s := range r.Scaling {
		row("scaling: "+s.Name, fmt.Sprintf("%.0f", s.EventsPerS), "events/s", fmt.Sprintf("%d partitions, %d users, %.0f%% chat, %d events", s.Partitions, s.Users, s.ChatShare*100, s.Events))
	}
	if c := r.Comparison; c != nil {
		fmt.Fprintf(w, "\ncomparison with %s: same %d events, same topics, word-list sentiment, funnel window %s, allowed lateness %s\n",
			c.Peer, c.Events, time.Duration(c.FunnelWindowMs)*time.Millisecond, time.Duration(c.LatenessMs)*time.Millisecond)
		for _, f := range c.Funnels {
			fmt.Fprintf(w, "funnel %q agreed: entries %d, reached %v, conversions %d, abandonments %d\n", f.Name, f.Entries, f.Reached, f.Conversions, f.Abandonments)
		}
		fmt.Fprintf(w, "%-42s %12s %24s %20s %18s\n", "system", "events/s", "events per CPU s", "CPU s per million", "peak RSS MB")
		for _, s := range c.Systems {
			name := s.System
			if s.Guarantee != "" {
				name += " " + s.Guarantee
			}
			if s.Work != "" {
				name += " (" + s.Work + ")"
			}
			fmt.Fprintf(w, "%-42s %12s %24s %20s %18s\n", name, s.EventsPerS.Format("%.0f"), s.EventsPerCPUSecond.Format("%.0f"), s.CPUSecondsPerMillion.Format("%.1f"), s.PeakRSSMB.Format("%.0f"))
		}
	}
}

func joinMB(v []float64) string {
	parts := make([]string, 0, len(v))
	for _, x := range v {
		parts = append(parts, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(parts, ", ")
}

// histQuantile estimates a quantile of a histogram family (all series
// merged, or with labels those whose labels have these name=value pairs)
// by linear interpolation within buckets.
func histQuantile(g prometheus.Gatherer, name string, q float64, labels ...string) float64 {
	mfs, _ := g.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var bounds []float64
		counts := map[float64]uint64{}
		var total uint64
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			h := m.GetHistogram()
			total += h.GetSampleCount()
			for _, b := range h.GetBucket() {
				if _, ok := counts[b.GetUpperBound()]; !ok {
					bounds = append(bounds, b.GetUpperBound())
				}
				counts[b.GetUpperBound()] += b.GetCumulativeCount()
			}
		}
		slices.Sort(bounds)
		rank := q * float64(total)
		prevBound, prevCount := 0.0, 0.0
		for _, ub := range bounds {
			c := float64(counts[ub])
			if c >= rank {
				if c == prevCount {
					return ub
				}
				return prevBound + (ub-prevBound)*(rank-prevCount)/(c-prevCount)
			}
			prevBound, prevCount = ub, c
		}
		return prevBound
	}
	return 0
}

// hasLabels reports whether m has each name=value pair of labels.
func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func histCount(g prometheus.Gatherer, name string) float64 {
	mfs, _ := g.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name {
			var n uint64
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
			return float64(n)
		}
	}
	return 0
}
