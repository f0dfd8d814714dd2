package alertsink

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/kafka"
	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

func TestSLABreachRaisesExactlyOneAlertAcrossWatchers(t *testing.T) {
	r := testenv.StartRedis(t)
	k := testenv.StartKafka(t, 2, "alerts")
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumeTopics("alerts"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	testenv.Must(t, err, "client")
	defer cl.Close()
	c := newClock()
	q := c.queue(r.Client, SLA{schemas.PriorityHigh: 10 * time.Minute})
	ctx := context.Background()
	var alerts []*schemas.Alert
	for i, conv := range []string{"c1", "c2", "c3"} {
		a := alert("u-"+conv, conv, schemas.PriorityHigh, 1000)
		a.Source = &schemas.AlertSource{Topic: "chat", Partition: 0, Offset: int64(i)}
		alerts = append(alerts, a)
	}
	testenv.Must(t, q.Push(ctx, alerts), "push")
	_, err = q.Claim(ctx, ClaimOptions{Agent: "ana", Lease: time.Minute, Conversation: "c3"}) // answered in time
	testenv.Must(t, err, "claim")

	// Three processes watch the queue at once.
	m := metrics.New()
	var watchers []*Watcher
	for range 3 {
		w, err := NewWatcher(WatcherOptions{Queue: q, Publisher: kafka.NewPublisher(cl), Topic: "alerts", Metrics: m})
		testenv.Must(t, err, "watcher")
		watchers = append(watchers, w)
	}
	tickAll := func() int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		for _, w := range watchers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := w.Tick(ctx)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}()
		}
		wg.Wait()
		return total
	}
	if n := tickAll(); n != 0 {
		t.Fatalf("%d breaches before the deadline", n)
	}
	if got := m.Sum("cx_queue_depth", map[string]string{"state": "waiting"}); got != 2 {
		t.Fatalf("cx_queue_depth{waiting} %v, want 2", got)
	}
	c.Advance(10*time.Minute + time.Second)
	if n := tickAll(); n != 2 {
		t.Fatalf("%d breach alerts published, want 2", n)
	}
	c.Advance(time.Hour)
	if n := tickAll(); n != 0 {
		t.Fatalf("%d more breach alerts on later checks", n)
	}
	if age := m.Sum("cx_queue_oldest_age_seconds", nil); age != 4201 {
		t.Fatalf("oldest age %v s, want 4201", age)
	}
	if got := m.Sum("cx_alerts_total", map[string]string{"type": "sla_breach"}); got != 2 {
		t.Fatalf("cx_alerts_total{sla_breach} %v", got)
	}

	v, err := schemas.NewValidator(0)
	testenv.Must(t, err, "validator")
	seen := map[string]int{}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for len(seen) < 2 {
		fs := cl.PollFetches(fctx)
		if fctx.Err() != nil {
			t.Fatalf("read %d alerts before timing out", len(seen))
		}
		fs.EachRecord(func(rec *kgo.Record) {
			var a schemas.Alert
			testenv.Must(t, json.Unmarshal(rec.Value, &a), "decode")
			testenv.Must(t, v.ValidateAlert(a), "alert.v2")
			if a.Type != schemas.AlertSLABreach || a.Priority != schemas.PriorityUrgent || a.Excerpt != "bad" || a.Source == nil || a.Source.Topic != "chat" {
				t.Errorf("alert %+v", a)
			}
			seen[a.ConversationID]++
		})
	}
	if seen["c1"] != 1 || seen["c2"] != 1 || seen["c3"] != 0 {
		t.Fatalf("alerts per conversation %v, want one each for c1 and c2", seen)
	}
}

func TestQueueGaugesExistFromStart(t *testing.T) {
	m := metrics.New()
	mfs, err := m.Registry.Gather()
	testenv.Must(t, err, "gather")
	series := map[string]int{}
	for _, mf := range mfs {
		series[mf.GetName()] += len(mf.GetMetric())
	}
	if series["cx_queue_depth"] != 2 || series["cx_queue_oldest_age_seconds"] != 1 {
		t.Fatalf("queue gauges at start: depth %d series, oldest age %d", series["cx_queue_depth"], series["cx_queue_oldest_age_seconds"])
	}
}
