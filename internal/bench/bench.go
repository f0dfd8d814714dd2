// Package bench measures cxstream against a real Kafka broker and a real
// Redis, side by side with what those two allow on the machine: the raw
// consume ceiling, the pipelined Redis read-modify-write ceiling, the naive
// one-event-at-a-time design on the same code path, event-to-alert latency
// at a fixed offered load, and how throughput scales.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	// Quick runs a smaller version (under 2 minutes) with the same fields.
	Quick bool
	// Log receives progress lines.
	Log io.Writer
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
}

// Result holds the figures; the JSON names are the contract of --json.
type Result struct {
	Events               int     `json:"events"`
	CeilingEventsPerS    float64 `json:"ceiling_events_per_s"`
	ConsumeEventsPerS    float64 `json:"consume_events_per_s"`
	RedisRMWEventsPerS   float64 `json:"redis_rmw_events_per_s"`
	EventsPerS           float64 `json:"events_per_s"`
	NaiveEventsPerS      float64 `json:"naive_events_per_s"`
	NaiveEvents          int     `json:"naive_events"`
	LatencyOfferedPerS   float64 `json:"latency_offered_events_per_s"`
	LatencyAlerts        int     `json:"latency_alerts"`
	LatencyP50Ms         float64 `json:"latency_p50_ms"`
	LatencyP95Ms         float64 `json:"latency_p95_ms"`
	LatencyP99Ms         float64 `json:"latency_p99_ms"`
	LatencyMaxMs         float64 `json:"latency_max_ms"`
	CPUSecondsPerMillion float64 `json:"cpu_s_per_million"`
	PeakRSSMB            float64 `json:"peak_rss_mb"`
	// RSSByQuarterMB: RSS after 1/4, 1/2, 3/4 and all of the main run.
	RSSByQuarterMB []float64 `json:"rss_by_quarter_mb"`
	Scaling        []Row     `json:"scaling"`
	Machine        string    `json:"machine"`
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

// Run runs every measurement in turn.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	b := &bencher{o: o, run: strconv.FormatInt(time.Now().UnixNano()%1e9, 36)}
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
	res := &Result{Events: o.Events, Machine: machine()}

	main, err := b.dataset(ctx, "main", o.Events, o.Users, o.ChatShare, o.Partitions)
	if err != nil {
		return nil, err
	}
	if res.ConsumeEventsPerS, err = b.consumeCeiling(ctx, main); err != nil {
		return nil, err
	}
	b.logf("ceiling: raw consume %.0f events/s", res.ConsumeEventsPerS)
	if res.RedisRMWEventsPerS, err = b.redisCeiling(ctx, o.Users, min(o.Events, 500_000)); err != nil {
		return nil, err
	}
	b.logf("ceiling: pipelined Redis read-modify-write %.0f events/s", res.RedisRMWEventsPerS)
	res.CeilingEventsPerS = min(res.ConsumeEventsPerS, res.RedisRMWEventsPerS)

	m, err := b.process(ctx, main, false)
	if err != nil {
		return nil, err
	}
	res.EventsPerS, res.CPUSecondsPerMillion, res.PeakRSSMB, res.RSSByQuarterMB = m.perS, m.cpuPerMillion, m.peakRSSMB, m.rssByQuarter[:]
	b.logf("cxstream: %.0f events/s, %.1f CPU s per million events, peak RSS %.0f MB, RSS at 1/4, 1/2, 3/4, all of the run %.0f %.0f %.0f %.0f MB",
		m.perS, m.cpuPerMillion, m.peakRSSMB, m.rssByQuarter[0], m.rssByQuarter[1], m.rssByQuarter[2], m.rssByQuarter[3])

	naiveN := min(o.Events, 50_000)
	if o.Quick {
		naiveN = min(o.Events, 20_000)
	}
	naive, err := b.dataset(ctx, "naive", naiveN, o.Users, o.ChatShare, o.Partitions)
	if err != nil {
		return nil, err
	}
	nm, err := b.process(ctx, naive, true)
	if err != nil {
		return nil, err
	}
	res.NaiveEventsPerS, res.NaiveEvents = nm.perS, naiveN
	b.logf("naive (round trips per event): %.0f events/s", nm.perS)

	if err := b.latency(ctx, res); err != nil {
		return nil, err
	}
	b.logf("latency at %.0f events/s: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d alerts", res.LatencyOfferedPerS, res.LatencyP50Ms, res.LatencyP99Ms, res.LatencyMaxMs, res.LatencyAlerts)

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
		ds, err := b.dataset(ctx, "scale", scaleN, v.users, v.chat, v.partitions)
		if err != nil {
			return nil, err
		}
		sm, err := b.process(ctx, ds, false)
		if err != nil {
			return nil, err
		}
		res.Scaling = append(res.Scaling, Row{Name: v.name, Partitions: v.partitions, Users: v.users, ChatShare: v.chat, Events: scaleN, EventsPerS: sm.perS})
		b.logf("scaling %-13s %8.0f events/s", v.name, sm.perS)
	}
	return res, nil
}

type bencher struct {
	o      Options
	run    string
	seq    int
	adm    *kadm.Client
	rdb    *redis.Client
	scorer *sentiment.DefaultScorer
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
	perS, cpuPerMillion, peakRSSMB float64
	// rssByQuarter is the RSS when a quarter, half, three quarters and all
	// of the events were handled: flat means no growth with volume.
	rssByQuarter [4]float64
}

// process runs the real processor over a dataset until its group has
// committed everything, measuring time, CPU and memory.
func (b *bencher) process(ctx context.Context, d *dataset, naive bool) (measured, error) {
	cfg := b.config(d)
	p, err := runner.New(cfg, zap.NewNop(), runner.Options{Scorer: b.scorer, Naive: naive})
	if err != nil {
		return measured{}, err
	}
	cpu0 := cpuSeconds()
	start := time.Now()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	peak := rssMB()
	var m measured
	// Sustained throughput: the clock starts at the first event handled,
	// not at the group join before it.
	started := false
	for {
		received := p.Metrics.Sum("cx_events_received_total", nil)
		if !started && received > 0 {
			start, cpu0, started = time.Now(), cpuSeconds(), true
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
		peak = max(peak, rssMB())
	}
	elapsed := time.Since(start)
	cpu := cpuSeconds() - cpu0
	stop()
	<-done
	m.perS, m.cpuPerMillion, m.peakRSSMB = float64(d.events)/elapsed.Seconds(), cpu/float64(d.events)*1e6, peak
	return m, nil
}

func (b *bencher) config(d *dataset) config.Config {
	cfg := config.Default()
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

// latency offers 20% of the measured throughput for a while and measures,
// for every alert, the time from its triggering chat message's event time
// (stamped when produced) to the alert being read from the alert topic.
func (b *bencher) latency(ctx context.Context, res *Result) error {
	d, err := b.dataset(ctx, "latency", 0, b.o.Users, b.o.ChatShare, b.o.Partitions)
	if err != nil {
		return err
	}
	cfg := b.config(d)
	p, err := runner.New(cfg, zap.NewNop(), runner.Options{Scorer: b.scorer})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	defer func() { stop(); <-done }()

	reader, err := kgo.NewClient(kgo.SeedBrokers(b.o.Brokers...), kgo.ConsumeTopics(d.alerts), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		return err
	}
	defer reader.Close()
	// Let the group settle before offering load.
	time.Sleep(3 * time.Second)

	rate := max(1000, 0.2*res.EventsPerS)
	dur := 30 * time.Second
	if b.o.Quick {
		dur = 10 * time.Second
	}
	res.LatencyOfferedPerS = rate
	producer, err := kgo.NewClient(kgo.SeedBrokers(b.o.Brokers...), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer producer.Close()
	var stats gen.Stats
	prodCtx, prodStop := context.WithTimeout(ctx, dur)
	defer prodStop()
	prodDone := make(chan error, 1)
	go func() {
		prodDone <- gen.New(gen.Options{Users: b.o.Users, Seed: 99, ChatShare: b.o.ChatShare}).
			Produce(prodCtx, producer, gen.Topics{Clickstream: d.clickstream, Chat: d.chat}, rate, 0, &stats)
	}()
	var lat, toDetect, toRead []float64
	deadline := time.Now().Add(dur + 5*time.Second)
	for time.Now().Before(deadline) {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		f := reader.PollFetches(pctx)
		pcancel()
		now := time.Now().UnixMilli()
		f.EachRecord(func(r *kgo.Record) {
			var a schemas.Alert
			if json.Unmarshal(r.Value, &a) == nil && a.Type == schemas.AlertNegativeChat {
				lat = append(lat, float64(now-a.EventTime))
				toDetect = append(toDetect, float64(a.DetectedAt-a.EventTime))
				toRead = append(toRead, float64(now-a.DetectedAt))
			}
		})
	}
	if err := <-prodDone; err != nil {
		return err
	}
	if len(lat) == 0 {
		return fmt.Errorf("no alert arrived during the latency run")
	}
	b.logf("latency run: processor batch time p50 %.1f ms, p99 %.1f ms over %d batches",
		1000*histQuantile(p.Metrics.Registry, "cx_batch_seconds", 0.5), 1000*histQuantile(p.Metrics.Registry, "cx_batch_seconds", 0.99),
		int(histCount(p.Metrics.Registry, "cx_batch_seconds")))
	slices.Sort(toDetect)
	slices.Sort(toRead)
	b.logf("latency split: event -> detected p50 %.0f p99 %.0f ms; detected -> alert read p50 %.0f p99 %.0f ms",
		toDetect[len(toDetect)/2], toDetect[len(toDetect)*99/100], toRead[len(toRead)/2], toRead[len(toRead)*99/100])
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	res.LatencyAlerts = len(lat)
	res.LatencyP50Ms, res.LatencyP95Ms, res.LatencyP99Ms, res.LatencyMaxMs = q(0.50), q(0.95), q(0.99), lat[len(lat)-1]
	return nil
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
	return fmt.Sprintf("%d CPUs", cpus)
}

// Print writes the result as a table.
func Print(w io.Writer, r *Result) {
	row := func(name string, v float64, unit, note string) {
		fmt.Fprintf(w, "%-44s %12.1f %-14s %s\n", name, v, unit, note)
	}
	fmt.Fprintf(w, "\ncxstream bench (%s, %d events)\n", r.Machine, r.Events)
	row("ceiling: raw franz-go consume", r.ConsumeEventsPerS, "events/s", "")
	row("ceiling: pipelined Redis read-modify-write", r.RedisRMWEventsPerS, "events/s", "")
	row("ceiling (the lower)", r.CeilingEventsPerS, "events/s", "")
	row("cxstream end to end", r.EventsPerS, "events/s", fmt.Sprintf("%.0f%% of ceiling", 100*r.EventsPerS/r.CeilingEventsPerS))
	row("naive: Redis round trips per event", r.NaiveEventsPerS, "events/s", fmt.Sprintf("cxstream is %.1fx (%d events)", r.EventsPerS/r.NaiveEventsPerS, r.NaiveEvents))
	row("CPU per million events", r.CPUSecondsPerMillion, "CPU s", "")
	row("peak RSS", r.PeakRSSMB, "MB", "whole benchmark process")
	if len(r.RSSByQuarterMB) == 4 {
		row("RSS after all events", r.RSSByQuarterMB[3], "MB", fmt.Sprintf("after 1/4, 1/2, 3/4: %.0f, %.0f, %.0f MB", r.RSSByQuarterMB[0], r.RSSByQuarterMB[1], r.RSSByQuarterMB[2]))
	}
	row(fmt.Sprintf("latency p50 at %.0f events/s", r.LatencyOfferedPerS), r.LatencyP50Ms, "ms", "produce -> alert readable")
	row("latency p95", r.LatencyP95Ms, "ms", "")
	row("latency p99", r.LatencyP99Ms, "ms", fmt.Sprintf("%d alerts", r.LatencyAlerts))
	row("latency max", r.LatencyMaxMs, "ms", "")
	for _, s := range r.Scaling {
		row("scaling: "+s.Name, s.EventsPerS, "events/s", fmt.Sprintf("%d partitions, %d users, %.0f%% chat, %d events", s.Partitions, s.Users, s.ChatShare*100, s.Events))
	}
}

// histQuantile estimates a quantile of a histogram family (all series
// merged) by linear interpolation within buckets.
func histQuantile(g prometheus.Gatherer, name string, q float64) float64 {
	mfs, _ := g.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var bounds []float64
		counts := map[float64]uint64{}
		var total uint64
		for _, m := range mf.GetMetric() {
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
