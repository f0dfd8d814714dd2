package runner

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/gen"
	"github.com/cxstream/cxstream/internal/report"
	"github.com/cxstream/cxstream/internal/report/reporttest"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/schemas"
)

// Generated traffic with utm_source and topic properties goes through the
// real pipeline (Kafka, the processor, Redis); `cxstream funnel --by`
// then reports, per group and for both attributions, what a batch
// computation over the produced events gives.
func TestFunnelBreakdownThroughThePipelineEqualsBatch(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("bd", "g-bd")
	cfg.Funnels[0].Window = 3 * time.Minute // attempts run out, by a later event or by the timer
	cfg.Funnels[0].Breakdowns = []string{funnel.BySegment, "property.utm_source", "property.topic"}
	// The batch side knows no segments: with the segment processor off,
	// every attempt's segment is (none) on both sides. Breakdowns by a
	// live segment are checked in internal/report against a stand-in
	// segment processor whose segment the test knows.
	cfg.Segments.Enabled = false

	const n, users = 4000, 150
	g := gen.New(gen.Options{Users: users, Seed: 21, Properties: true})
	base := time.Now().Add(-2 * time.Hour)
	var recs []*kgo.Record
	var batch []reporttest.Event
	for i := range n {
		ev := g.Next(base.Add(time.Duration(i) * 200 * time.Millisecond))
		topic := cfg.Topics.Clickstream
		if ev.Kind == gen.Chat {
			topic = cfg.Topics.Chat
		} else {
			var c schemas.ClickEvent
			testenv.Must(t, json.Unmarshal(ev.Value, &c), "event")
			values := map[string]string{}
			for k, v := range c.Properties {
				values["property."+k] = v.(string)
			}
			batch = append(batch, reporttest.Event{User: c.UserID, ID: c.EventID, At: c.EventTime, Type: c.Type, Values: values})
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(ev.Key), Value: ev.Value})
	}
	produce(t, e.kafka.Brokers, recs...)
	r := start(t, cfg)
	testenv.Eventually(t, 60*time.Second, "every event handled", func() bool { return r.handled() >= n })

	fp, err := funnel.New(cfg.Funnels, cfg.Processing.AllowedLateness, funnel.WithLimits(cfg.Breakdown))
	testenv.Must(t, err, "funnel")
	ref := reporttest.Funnel{Window: cfg.Funnels[0].Window}
	for _, s := range cfg.Funnels[0].Steps {
		ref.Steps = append(ref.Steps, s.Events)
	}
	total := 0
	for _, f := range reporttest.Breakdown(ref, batch, funnel.BySegment, "first") {
		total += f.Attempts
	}
	// The last batch's state is saved after its events are counted: wait
	// until the report has every attempt.
	testenv.Eventually(t, 10*time.Second, "every attempt in the state", func() bool {
		stats, err := report.FunnelBreakdowns(context.Background(), r.Store, fp, funnel.BySegment, funnel.FirstTouch)
		return err == nil && stats[0].Grouped == total
	})
	if r.Metrics.Sum("cx_deadletter_total", nil) != 0 {
		t.Fatalf("%.0f dead letters; every generated event is valid and in order", r.Metrics.Sum("cx_deadletter_total", nil))
	}
	for _, by := range cfg.Funnels[0].Breakdowns {
		for _, attr := range []funnel.Attribution{funnel.FirstTouch, funnel.LastTouch} {
			stats, err := report.FunnelBreakdowns(context.Background(), r.Store, fp, by, attr)
			testenv.Must(t, err, "breakdown")
			reporttest.Compare(t, stats[0], reporttest.Breakdown(ref, batch, by, string(attr)))
		}
	}
	t.Logf("%d attempts of %d users", total, users)
}
