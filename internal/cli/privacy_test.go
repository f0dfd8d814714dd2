package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/privacy"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

// Pseudonymous state, alerts without the real id, duplicates counted once,
// no chat text in any log line, and an erasure that leaves nothing behind.
func TestPrivacyEndToEnd(t *testing.T) {
	k := testenv.StartKafka(t, 2, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1")
	r := testenv.StartRedis(t)
	const realID, marker, key = "jane.doe@example.com", "MARKER-51c0", "test-key"
	pseudo := privacy.NewPseudonymizer(key).ID(realID)

	cfg := config.Default()
	cfg.Kafka.Brokers, cfg.Redis.Addrs, cfg.HTTP.Addr = k.Brokers, []string{r.Addr}, ""
	cfg.Privacy.PseudonymKey = key
	cfg.Log.Level = "debug"
	core, logs := observer.New(zap.DebugLevel)
	p, err := runner.New(cfg, zap.New(core), runner.Options{})
	testenv.Must(t, err, "processor")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	now := time.Now().UnixMilli()
	view, _ := json.Marshal(schemas.ClickEvent{EventID: "v1", UserID: realID, Type: "product_view", EventTime: now})
	msg, _ := json.Marshal(schemas.ChatMessage{EventID: "m1", ConversationID: "c1", UserID: realID, Sender: "customer", Text: marker + " I was charged twice, this is the worst, I want a refund", EventTime: now + 10})
	bad, _ := json.Marshal(map[string]any{"event_id": "m2", "conversation_id": "c1", "user_id": realID, "sender": "robot", "text": marker, "event_time": now})
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	testenv.Must(t, err, "producer")
	defer cl.Close()
	testenv.Must(t, cl.ProduceSync(context.Background(),
		&kgo.Record{Topic: "cx.clickstream.v1", Key: []byte(realID), Value: view},
		&kgo.Record{Topic: "cx.clickstream.v1", Key: []byte(realID), Value: view}, // sent twice upstream
		&kgo.Record{Topic: "cx.chat.v1", Key: []byte(realID), Value: msg},
		&kgo.Record{Topic: "cx.chat.v1", Key: []byte(realID), Value: bad},
	).FirstErr(), "produce")
	testenv.Eventually(t, 15*time.Second, "all handled", func() bool {
		m := p.Metrics
		return m.Sum("cx_events_applied_total", nil)+m.Sum("cx_events_duplicate_total", nil)+m.Sum("cx_deadletter_total", nil) >= 4
	})
	if d := p.Metrics.Sum("cx_events_duplicate_total", nil); d != 1 {
		t.Errorf("duplicates %v, want 1", d)
	}
	keys := r.Client.Keys(context.Background(), "*").Val()
	for _, key := range keys {
		if strings.Contains(key, "jane") {
			t.Errorf("a Redis key carries the real id: %s", key)
		}
	}
	if !strings.Contains(strings.Join(keys, " "), pseudo) {
		t.Fatalf("no state under the pseudonym %s: %v", pseudo, keys)
	}
	var views float64
	click := r.Client.HGet(context.Background(), "cx:{"+pseudo+"}:click", "s").Val()
	var doc struct {
		Churn struct {
			Days []float64 `json:"n"`
		} `json:"churn"`
	}
	clickJSON, err := pipeline.DocJSON([]byte(click)) // either encoding
	testenv.Must(t, err, "click doc")
	testenv.Must(t, json.Unmarshal(clickJSON, &doc), "click doc")
	for _, n := range doc.Churn.Days {
		views += n
	}
	if views != 1 {
		t.Errorf("the duplicated event counted %v times", views)
	}

	// The alert names the pseudonym only.
	consumer, _ := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumeTopics("cx.alerts.v2"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer consumer.Close()
	var alert schemas.Alert
	testenv.Eventually(t, 10*time.Second, "the alert", func() bool {
		pctx, pcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer pcancel()
		for _, rec := range consumer.PollFetches(pctx).Records() {
			_ = json.Unmarshal(rec.Value, &alert)
		}
		return alert.AlertID != ""
	})
	if alert.UserID != pseudo || alert.OriginalUserID != "" || strings.Contains(alert.Excerpt, "jane") {
		t.Errorf("alert %+v", alert)
	}

	for _, entry := range logs.All() {
		line := entry.Message + fmt.Sprint(entry.ContextMap())
		if strings.Contains(line, marker) {
			t.Errorf("chat text in a log line: %s", line)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("no log lines captured: the marker check would be empty")
	}

	// Erase by the real id.
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"forget", realID, "--redis", r.Addr, "--brokers", strings.Join(k.Brokers, ",")})
	t.Setenv("CXSTREAM_PSEUDONYM_KEY", key)
	testenv.Must(t, root.Execute(), "forget")
	if !strings.Contains(out.String(), "tombstone published") {
		t.Errorf("forget said %q", out.String())
	}
	for _, key := range r.Client.Keys(context.Background(), "*").Val() {
		if strings.Contains(key, pseudo) {
			t.Errorf("left after forget: %s", key)
		}
		if n := r.Client.ZScore(context.Background(), key, pseudo).Err(); n == nil {
			t.Errorf("a timer of the user is left in %s", key)
		}
	}
	var tombstone *kgo.Record
	testenv.Eventually(t, 10*time.Second, "the tombstone", func() bool {
		pctx, pcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer pcancel()
		for _, rec := range consumer.PollFetches(pctx).Records() {
			if rec.Value == nil && string(rec.Key) == pseudo {
				tombstone = rec
			}
		}
		return tombstone != nil
	})
}
