package runner

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/gen"
	"github.com/cxstream/cxstream/internal/testenv"
)

// BenchmarkProcess is the pipeline's hot path on generated traffic (15%
// chat) as the consumer drives it: batches of 200 records of one
// partition, real Redis and Kafka (kfake), with 2,000 users (most of them
// in the state cache) and with 200,000 (almost none), with the cache at
// its default size and off. One op is one event; the figures per event
// include Redis and Kafka's client side (kfake runs in this process, so
// the broker's side of a produce too).
//
// batch=30 is the 200,000-user case in batches of 30 records, what a
// partition's batch holds at half the bench's maximum load (the
// generator's 10 ms ticks spread over 4 partitions): the difference in
// cpu-ns/event from batch=200 is the fixed cost of a batch (its Redis
// round trips, its produce request, waking the goroutines that wait for
// them) spread over fewer events.
func BenchmarkProcess(b *testing.B) {
	e := env{kafka: testenv.StartKafka(b, 1, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1"), redis: testenv.StartRedis(b)}
	defaultCache := config.DefaultStateCache().StateCacheBytes
	for _, users := range []int{2_000, 200_000} {
		for _, cache := range []int64{defaultCache, 0} {
			name := fmt.Sprintf("users=%d/cache=%dMiB", users, cache>>20)
			b.Run(name, func(b *testing.B) { benchProcess(b, e, users, cache, 200, name) })
		}
	}
	name := fmt.Sprintf("users=200000/cache=%dMiB/batch=30", defaultCache>>20)
	b.Run(name, func(b *testing.B) { benchProcess(b, e, 200_000, defaultCache, 30, name) })
}

// benchProcess runs b.N events through one pipeline, in batches of up to
// batchSize records of one topic.
func benchProcess(b *testing.B, e env, users int, cacheBytes int64, batchSize int, prefix string) {
	// Keys of their own for every run: a run with -count > 1 would
	// otherwise replay the same generated events onto the state of the
	// run before, and skip them for a fraction of the cost.
	prefix = fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	inst := newInstance(b, e, e.redis.Client, prefix, cacheBytes)
	g := gen.New(gen.Options{Users: users, Seed: 7})
	at := time.Now().Add(-24 * time.Hour)
	var offsets [2]int64
	// next makes the next batch of each topic from one continuous stream
	// (fresh event ids and times, so nothing is a replay or a duplicate).
	var pending [][]*kgo.Record
	next := func() []*kgo.Record {
		for len(pending) == 0 {
			var clicks, chats []*kgo.Record
			for len(clicks) < batchSize && len(chats) < batchSize {
				at = at.Add(20 * time.Millisecond)
				ev := g.Next(at)
				r := &kgo.Record{Topic: "cx.clickstream.v1", Key: []byte(ev.Key), Value: ev.Value}
				side := 0
				if ev.Kind == gen.Chat {
					r.Topic, side = "cx.chat.v1", 1
				}
				r.Offset = offsets[side]
				offsets[side]++
				if side == 0 {
					clicks = append(clicks, r)
				} else {
					chats = append(chats, r)
				}
			}
			pending = append(pending, clicks, chats)
		}
		bt := pending[0]
		pending = pending[1:]
		return bt
	}
	ctx := context.Background()
	for range 10_000 / batchSize { // warm up: the cache fills, Redis holds the users
		if _, err := inst.Process(ctx, next()); err != nil {
			b.Fatal(err)
		}
	}
	var batches [][]*kgo.Record
	for n := 0; n < b.N; {
		bt := next()
		batches = append(batches, bt)
		n += len(bt)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := processCPU(b)
	events := 0
	b.ResetTimer()
	for _, bt := range batches {
		if _, err := inst.Process(ctx, bt); err != nil {
			b.Fatal(err)
		}
		events += len(bt)
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(events), "cpu-ns/event")
	if hits, misses := testutil.ToFloat64(inst.m.StateCacheHits), testutil.ToFloat64(inst.m.StateCacheMisses); hits+misses > 0 {
		b.ReportMetric(hits/(hits+misses), "cache-hits/load")
	}
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(events), "allocs/event")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(events), "B/event")
}

// processCPU is the CPU time this process has used (kfake's included): on
// a shared machine wall-clock time includes waiting for a core.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
