package collect

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	analytics "gopkg.in/segmentio/analytics-go.v3"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/processors/funnel"
)

// The real Segment library against the collector while the broker is
// stopped: 503s, the library retries, and once the broker is back its
// calls land. The same calls then arrive again (a retry whose first 200 was
// lost). The processor, reading the topic with real Redis, counts each
// message once, by its messageId: one conversion of the funnel over the
// source's names, one purchase with its revenue, three events of activity.
func TestRetriedCallsCountOnce(t *testing.T) {
	f := newFixture(t, fixtureOpts{produceTimeout: 500 * time.Millisecond})
	rd := testenv.StartRedis(t)
	var down atomic.Bool
	brokerDown(f.kafka, &down)
	down.Store(true)
	at := time.Now().Add(-time.Minute)
	calls := []analytics.Message{
		analytics.Track{MessageId: "d-1", UserId: "u-d", Event: "Product Viewed", Timestamp: at},
		analytics.Track{MessageId: "d-2", UserId: "u-d", Event: "Product Added", Timestamp: at.Add(time.Second)},
		analytics.Track{MessageId: "d-3", UserId: "u-d", Event: "Order Completed", Timestamp: at.Add(2 * time.Second),
			Properties: analytics.NewProperties().SetRevenue(25).SetCurrency("EUR")},
	}
	cb := &callbacks{}
	cl := f.segmentClient(t, cb)
	for _, m := range calls {
		testenv.Must(t, cl.Enqueue(m), "enqueue")
	}
	testenv.Eventually(t, 20*time.Second, "a 503 while the broker is down", func() bool {
		return testutil.ToFloat64(f.c.m.requests.WithLabelValues("batch", "503")) >= 1
	})
	down.Store(false)
	testenv.Eventually(t, 20*time.Second, "the client's retries to succeed", func() bool { ok, failed := cb.counts(); return ok == 3 || failed > 0 })
	for _, m := range calls { // the same calls again, as a retry after a lost answer sends them
		testenv.Must(t, cl.Enqueue(m), "enqueue again")
	}
	testenv.Eventually(t, 20*time.Second, "the resent calls to succeed", func() bool { ok, failed := cb.counts(); return ok == 6 || failed > 0 })
	testenv.Must(t, cl.Close(), "close")
	if ok, failed := cb.counts(); ok != 6 || failed != 0 {
		t.Fatalf("client reports %d sent, %d failed", ok, failed)
	}
	recs := readAll(t, f.kafka.Brokers, clickTopic, 6)
	ids := map[string]int{}
	for _, r := range recs {
		var ev struct {
			EventID string `json:"event_id"`
		}
		testenv.Must(t, json.Unmarshal(r.Value, &ev), "record")
		ids[ev.EventID]++
	}
	if len(ids) != 3 || len(recs) < 6 {
		t.Fatalf("want each of the 3 message ids at least twice on the topic, got %v", ids)
	}

	cfg := config.Default()
	cfg.Kafka.Brokers = f.kafka.Brokers
	cfg.Redis.Addrs = []string{rd.Addr}
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Topics.Clickstream, cfg.Topics.Chat = clickTopic, chatTopic
	cfg.Topics.Segments = "" // this cluster has the input topics only: segment changes are counted, not produced
	cfg.Funnels = []funnel.Definition{{Name: "shop", Window: time.Hour, Steps: []funnel.Step{
		{Name: "viewed", Events: []string{"Product Viewed"}}, {Name: "added", Events: []string{"Product Added"}}, {Name: "ordered", Events: []string{"Order Completed"}}}}}
	p, err := runner.New(cfg, zap.NewNop(), runner.Options{})
	testenv.Must(t, err, "processor")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			testenv.Must(t, err, "run")
		case <-time.After(15 * time.Second):
			t.Fatal("processor did not stop")
		}
	}()
	testenv.Eventually(t, 30*time.Second, "every record handled", func() bool {
		return p.Metrics.Sum("cx_events_applied_total", nil)+p.Metrics.Sum("cx_events_duplicate_total", nil) >= float64(len(recs))
	})
	if dup := p.Metrics.Sum("cx_events_duplicate_total", nil); dup != float64(len(recs)-3) {
		t.Errorf("duplicates dropped: %v, want %d", dup, len(recs)-3)
	}
	docs, err := p.Store.Load(context.Background(), []string{"u-d"})
	testenv.Must(t, err, "state")
	var st struct {
		Funnel map[string]struct {
			Now struct {
				Conversions int `json:"c"`
			} `json:"n"`
		} `json:"funnel"`
		Churn struct {
			Purchases int     `json:"p"`
			Spend     float64 `json:"m"`
			Days      []int   `json:"n"`
		} `json:"churn"`
	}
	doc, err := pipeline.DocJSON(docs["u-d"].Click.Data)
	testenv.Must(t, err, "state as JSON")
	testenv.Must(t, json.Unmarshal(doc, &st), "decode state")
	activity := 0
	for _, n := range st.Churn.Days {
		activity += n
	}
	if st.Funnel["shop"].Now.Conversions != 1 || st.Churn.Purchases != 1 || st.Churn.Spend != 25 || activity != 3 {
		t.Fatalf("state counts the retry: %s", doc)
	}
}
