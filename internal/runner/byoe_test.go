package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/ingest"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/processors/funnel"
)

// A Segment source and a support tool's webhooks, read as they are: a
// funnel over the source's own names, a named purchase counted with its
// revenue, an undeclared name still counted as activity, a call that does
// not fit dead-lettered with the field named.
func TestOwnEventNamesInTheirOwnFormats(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("cx", "byoe")
	cfg.Topics.Input = ingest.Inputs{
		Clickstream: ingest.Input{Format: ingest.FormatSegment, DefaultCurrency: "USD"},
		Chat: ingest.Input{Format: ingest.FormatMapping, Mapping: &ingest.Mapping{
			Fields:     map[string]string{"event_id": "id", "conversation_id": "conversation", "user_id": "contact", "sender": "author", "text": "body", "event_time": "created_at"},
			Values:     map[string]map[string]string{"sender": {"user": "customer", "admin": "agent"}},
			TimeFormat: "epoch_ms",
		}},
	}
	cfg.Events.SupportContact = []string{"Ticket Opened"}
	cfg.Funnels = []funnel.Definition{{Name: "shop", Window: time.Hour, Steps: []funnel.Step{
		{Name: "viewed", Events: []string{"Product Viewed"}},
		{Name: "added", Events: []string{"Product Added"}},
		{Name: "ordered", Events: []string{"Order Completed"}},
	}}}
	now := time.Now().Add(-time.Minute)
	ts := func(i int) string { return now.Add(time.Duration(i) * time.Second).UTC().Format(time.RFC3339Nano) }
	seg := func(user, id, event string, i int, props string) *kgo.Record {
		v := fmt.Sprintf(`{"type":"track","event":%q,"messageId":%q,"userId":%q,"timestamp":%q,"properties":%s}`, event, id, user, ts(i), props)
		return &kgo.Record{Topic: "cx.clickstream.v1", Key: []byte(user), Value: []byte(v)}
	}
	produce(t, e.kafka.Brokers,
		seg("dana", "m1", "Product Viewed", 0, `{"product_id":"p1"}`),
		seg("dana", "m2", "Product Added", 1, `{"product_id":"p1"}`),
		seg("dana", "m3", "Wishlist Shared", 2, `{}`),
		seg("dana", "m4", "Order Completed", 3, `{"revenue":30.5,"currency":"EUR"}`),
		seg("dana", "m4", "Order Completed", 3, `{"revenue":30.5,"currency":"EUR"}`), // a client retry
		seg("dana", "m5", "Ticket Opened", 4, `{}`),
		&kgo.Record{Topic: "cx.clickstream.v1", Key: []byte("dana"), Value: []byte(`{"type":"track","event":"Product Viewed","messageId":"m6","userId":"dana"}`)},
		&kgo.Record{Topic: "cx.chat.v1", Key: []byte("dana"), Value: []byte(fmt.Sprintf(`{"id":"x1","conversation":"c1","contact":"dana","author":"user","body":"where is my order","created_at":%d}`, now.UnixMilli()))},
	)
	r := start(t, cfg)
	testenv.Eventually(t, 20*time.Second, "all 8 records handled", func() bool {
		return r.handled()+r.Metrics.Sum("cx_events_duplicate_total", nil) >= 8
	})

	docs, err := r.Store.Load(context.Background(), []string{"dana"})
	testenv.Must(t, err, "load state")
	var dana struct {
		Funnel map[string]struct {
			Now struct {
				Reached     []int `json:"rc"`
				Conversions int   `json:"c"`
			} `json:"n"`
		} `json:"funnel"`
		Churn struct {
			Purchases int     `json:"p"`
			Spend     float64 `json:"m"`
			Days      []int   `json:"n"`
			Contacts  []int64 `json:"ct"`
		} `json:"churn"`
	}
	testenv.Must(t, json.Unmarshal(docJSON(t, docs["dana"].Click.Data), &dana), "dana")
	shop := dana.Funnel["shop"].Now
	if shop.Conversions != 1 || fmt.Sprint(shop.Reached) != "[1 1 1]" {
		t.Errorf("funnel over the source's names: %s", docJSON(t, docs["dana"].Click.Data))
	}
	activity := 0
	for _, n := range dana.Churn.Days {
		activity += n
	}
	if dana.Churn.Purchases != 1 || dana.Churn.Spend != 30.5 || activity != 5 || len(dana.Churn.Contacts) != 1 {
		t.Errorf("purchase by name, activity (5: the retry counts once), contact: %s", docJSON(t, docs["dana"].Click.Data))
	}
	if !strings.Contains(string(docJSON(t, docs["dana"].Chat.Data)), `"msgs":1`) {
		t.Errorf("chat via mapping not applied: %s", docJSON(t, docs["dana"].Chat.Data))
	}
	dead := readTopic(t, e.kafka.Brokers, "cx.deadletter.v1", 1)
	if len(dead) != 1 || header(dead[0], pipeline.HeaderReason) != string(ingest.ReasonFormat) || !strings.Contains(header(dead[0], pipeline.HeaderDetail), "timestamp") {
		t.Fatalf("dead letters: %d %+v", len(dead), dead)
	}
	if got := r.Metrics.Sum("cx_deadletter_total", map[string]string{"reason": string(ingest.ReasonFormat)}); got != 1 {
		t.Errorf("cx_deadletter_total{reason=format_violation} = %v", got)
	}
}
