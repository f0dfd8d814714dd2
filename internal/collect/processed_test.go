package collect

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/processors/funnel"
)

// A Segment client's retry puts the same calls on the topic twice (the
// first answer was lost); the processor counts each message once, by its
// messageId, and the funnel over the source's names converts once.
func TestRetriedCallsCountOnce(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	rd := testenv.StartRedis(t)
	ts := func(s int) string {
		return time.Now().Add(time.Duration(s-60) * time.Second).UTC().Format(time.RFC3339Nano)
	}
	batch := []byte(`{"batch":[
		{"type":"track","event":"Product Viewed","messageId":"d-1","userId":"u-d","timestamp":"` + ts(0) + `"},
		{"type":"track","event":"Product Added","messageId":"d-2","userId":"u-d","timestamp":"` + ts(1) + `"},
		{"type":"track","event":"Order Completed","messageId":"d-3","userId":"u-d","timestamp":"` + ts(2) + `","properties":{"revenue":25,"currency":"EUR"}}]}`)
	for range 2 {
		if code, out := post(t, f.srv.URL+"/v1/batch", writeKey, batch, false); code != 200 {
			t.Fatalf("%d %s", code, out)
		}
	}
	if n := len(readAll(t, f.kafka.Brokers, clickTopic, 6)); n != 6 {
		t.Fatalf("want the 3 calls twice on the topic, got %d records", n)
	}

	cfg := config.Default()
	cfg.Kafka.Brokers = f.kafka.Brokers
	cfg.Redis.Addrs = []string{rd.Addr}
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Topics.Clickstream, cfg.Topics.Chat = clickTopic, chatTopic
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
	testenv.Eventually(t, 30*time.Second, "6 records handled", func() bool {
		return p.Metrics.Sum("cx_events_applied_total", nil)+p.Metrics.Sum("cx_events_duplicate_total", nil) >= 6
	})
	if dup := p.Metrics.Sum("cx_events_duplicate_total", nil); dup != 3 {
		t.Errorf("duplicates dropped: %v, want 3", dup)
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
	testenv.Must(t, json.Unmarshal(docs["u-d"].Click.Data, &st), "decode state")
	activity := 0
	for _, n := range st.Churn.Days {
		activity += n
	}
	if st.Funnel["shop"].Now.Conversions != 1 || st.Churn.Purchases != 1 || st.Churn.Spend != 25 || activity != 3 {
		t.Fatalf("state counts the retry: %s", docs["u-d"].Click.Data)
	}
}
