package deliver

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/testenv"
)

// BenchmarkDeliver sends 10,000 alerts (1,000 users) through kfake to a
// receiver that fails 30% of requests with a 500, and reports delivery
// latency (the alert record's produce time to its first acceptance by the
// receiver) and throughput. burst produces all alerts at once (latency is
// mostly queueing: a throughput figure); paced produces 1,000 a second;
// no-failures is the ceiling of the machinery itself. Destination
// defaults: max_attempts 12, timeout 10 s; concurrency 32.
//
//	go test -run '^$' -bench Deliver -benchtime 1x -timeout 40m ./internal/deliver/
func BenchmarkDeliver(b *testing.B) {
	for _, c := range []struct {
		name    string
		rate    int // alerts/s, 0: all at once
		backoff time.Duration
		fail    float64
	}{
		{"burst/backoff=500ms", 0, 500 * time.Millisecond, 0.3},
		{"paced-1000/s/backoff=500ms", 1000, 500 * time.Millisecond, 0.3},
		{"burst/backoff=50ms", 0, 50 * time.Millisecond, 0.3},
		{"burst/no-failures", 0, 500 * time.Millisecond, 0}, // the ceiling
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				benchDeliver(b, c.rate, c.backoff, c.fail)
			}
		})
	}
}

func benchDeliver(b *testing.B, rate int, initialBackoff time.Duration, failShare float64) {
	const n, users = 10_000, 1_000
	k := testenv.StartKafka(b, 4, alertTopic, "cx.deliver.deadletter.hook")
	rc, srv := newReceiver(b, failShare, 0)
	recs, ids := testAlerts(b, n, users)
	r := startDeliverer(b, k.Brokers, Options{InitialBackoff: initialBackoff, Destinations: []Destination{
		{Name: "hook", URL: srv.URL, Secret: []byte(testSecret)},
	}})
	// Joined and fetching before the clock starts.
	testenv.Eventually(b, 30*time.Second, "the group assignment", func() bool {
		r.d.mu.Lock()
		defer r.d.mu.Unlock()
		return len(r.d.parts) == 4
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ProducerLinger(0))
	testenv.Must(b, err, "producer")
	defer cl.Close()
	produced := make(map[string]time.Time, n)
	start := time.Now()
	step := 100
	if rate > 0 {
		step = rate / 100 // every 10 ms
	}
	for i := 0; i < n; i += step {
		batch := recs[i:min(i+step, n)]
		now := time.Now()
		for j, rec := range batch {
			rec.Timestamp = now
			produced[ids[i+j]] = now
		}
		testenv.Must(b, cl.ProduceSync(context.Background(), batch...).FirstErr(), "produce")
		if rate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i+step) * time.Second / time.Duration(rate))))
		}
	}
	testenv.Eventually(b, 10*time.Minute, "every alert delivered or dead-lettered", func() bool {
		return rc.distinct()+int(r.counter("dead", "hook")) >= n
	})
	took := time.Since(start)
	r.stop(b)

	rc.mu.Lock()
	lat := make([]float64, 0, n)
	var arrivals []time.Time
	for _, id := range ids {
		if at, ok := rc.first[id]; ok {
			lat = append(lat, float64(at.Sub(produced[id]).Microseconds())/1000)
			arrivals = append(arrivals, at)
		}
	}
	requests, accepted := rc.requests, len(rc.accepted)
	rc.mu.Unlock()
	slices.Sort(lat)
	slices.SortFunc(arrivals, func(x, y time.Time) int { return x.Compare(y) })
	pct := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	// Throughput: how fast 99% of the alerts got through; the last
	// percent is a few long retry chains (up to max_attempts), not rate.
	at99 := arrivals[min(len(arrivals)-1, int(0.99*float64(len(arrivals))))].Sub(start)
	perS := 0.99 * float64(len(arrivals)) / at99.Seconds()
	dead := int(r.counter("dead", "hook"))
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(perS, "alerts/s")
	fmt.Printf("deliver %s: %d alerts, %d arrived, %d dead-lettered, %d requests (%.0f%% failed); 99%% arrived after %s (%.0f alerts/s), all after %s; latency p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms\n",
		b.Name(), n, len(lat), dead, requests, 100*float64(requests-accepted)/float64(requests), at99.Round(time.Millisecond), perS,
		took.Round(time.Millisecond), pct(0.5), pct(0.9), pct(0.99), lat[len(lat)-1])
	if len(lat)+dead != n {
		b.Fatalf("%d alerts neither arrived nor dead-lettered", n-len(lat)-dead)
	}
}
