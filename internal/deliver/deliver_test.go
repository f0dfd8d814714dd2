package deliver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

func fastRetries(o Options) Options {
	o.InitialBackoff, o.MaxBackoff, o.CommitInterval, o.ShutdownTimeout = 5*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond, 2*time.Second
	return o
}

// A receiver that fails 25% of requests and hangs on 5% more still gets
// every alert; duplicates carry the same id and body, each user's alerts
// arrive in order, every request is signed, and the offsets are committed
// once everything is delivered.
func TestEveryAlertArrivesDespiteFailuresAndTimeouts(t *testing.T) {
	k := testenv.StartKafka(t, 4, alertTopic, "cx.deliver.deadletter.hook")
	rc, srv := newReceiver(t, 0.25, 0.05)
	recs, ids := testAlerts(t, 800, 50)
	// History and oddities: a v1 alert, an erasure, a record that is not
	// an alert, a compaction tombstone.
	v1, _ := json.Marshal(schemas.V1Alert{Schema: schemas.AlertV1, AlertID: schemas.AlertID("churn_risk", "old", "1"), Type: "churn_risk",
		UserID: "old", Priority: schemas.PriorityHigh, Score: 0.9, Reasons: []string{"from v1"}, EventTime: 1, DetectedAt: 2, RuleVersion: "churn/1"})
	recs = append(recs,
		&kgo.Record{Topic: alertTopic, Key: []byte("old"), Value: v1},
		&kgo.Record{Topic: alertTopic, Key: []byte("gone"), Headers: []kgo.RecordHeader{{Key: "cx-erasure", Value: []byte("true")}}},
		&kgo.Record{Topic: alertTopic, Key: []byte("junk"), Value: []byte(`{"not":"an alert"}`)},
		&kgo.Record{Topic: alertTopic, Key: []byte("compacted")},
	)
	produce(t, k.Brokers, recs)
	ids = append(ids, schemas.AlertID("churn_risk", "old", "1"))

	r := startDeliverer(t, k.Brokers, fastRetries(Options{Concurrency: 16, Destinations: []Destination{
		{Name: "hook", URL: srv.URL, Secret: []byte(testSecret), MaxAttempts: 30, Timeout: 300 * time.Millisecond},
	}}))
	want := len(ids) + 1 // and the erasure notice
	testenv.Eventually(t, 90*time.Second, "every alert at the receiver", func() bool { return rc.distinct() >= want })
	testenv.Eventually(t, 10*time.Second, "offsets committed", func() bool { return committedAll(t, k.Brokers, "deliver-test") })
	r.stop(t)

	rc.mu.Lock()
	for _, id := range ids {
		if _, ok := rc.bodies[id]; !ok {
			t.Errorf("alert %s never arrived", id)
		}
	}
	var erasure Erasure
	for _, b := range rc.bodies {
		if strings.Contains(string(b), `"type":"erasure"`) {
			_ = json.Unmarshal(b, &erasure)
		}
	}
	if erasure.UserID != "gone" || erasure.AlertID == "" {
		t.Errorf("erasure notice %+v", erasure)
	}
	if up := string(rc.bodies[schemas.AlertID("churn_risk", "old", "1")]); !strings.Contains(up, `"schema":"alert.v2"`) || !strings.Contains(up, `"churn_probability":0.9`) {
		t.Errorf("a v1 alert is delivered as v2: %s", up)
	}
	requests, badSigs, accepted := rc.requests, rc.badSigs, len(rc.accepted)
	rc.mu.Unlock()
	rc.checkOrder(t)
	if badSigs != 0 {
		t.Errorf("%d requests with a bad signature", badSigs)
	}
	if got := r.counter("delivered", "hook"); int(got) != want {
		t.Errorf("delivered_total %v, want %d", got, want)
	}
	if r.counter("retries", "hook") == 0 || r.counter("failures", "hook", FailStatus5xx) == 0 || r.counter("failures", "hook", FailTimeout) == 0 {
		t.Errorf("a failing receiver left no retries or failures in the metrics")
	}
	if r.counter("dead", "hook") != 0 {
		t.Errorf("dead-lettered %v alerts", r.counter("dead", "hook"))
	}
	if n := testutilInvalid(r); n != 1 {
		t.Errorf("invalid_total %v, want 1", n)
	}
	t.Logf("%d alerts, %d requests, %d acceptances (%d duplicates)", want, requests, accepted, accepted-want)
}

func testutilInvalid(r *running) float64 {
	mfs, _ := r.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "cx_deliver_invalid_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

// Stopped halfway, with requests hanging, Run ends within its shutdown
// bound; the next run in the same group delivers the rest: nothing is
// lost, redeliveries repeat the id and body, users' order holds.
func TestRestartDeliversTheRest(t *testing.T) {
	k := testenv.StartKafka(t, 3, alertTopic, "cx.deliver.deadletter.hook")
	rc, srv := newReceiver(t, 0.2, 0.1)
	recs, ids := testAlerts(t, 600, 30)
	produce(t, k.Brokers, recs)
	o := fastRetries(Options{Concurrency: 16, Destinations: []Destination{
		{Name: "hook", URL: srv.URL, Secret: []byte(testSecret), MaxAttempts: 30, Timeout: 500 * time.Millisecond},
	}})
	o.ShutdownTimeout = 300 * time.Millisecond
	first := startDeliverer(t, k.Brokers, o)
	testenv.Eventually(t, 60*time.Second, "half the alerts", func() bool { return rc.distinct() >= len(ids)/2 })
	t0 := time.Now()
	first.stop(t)
	t.Logf("first stopped in %s with %d of %d delivered", time.Since(t0), rc.distinct(), len(ids))
	if rc.distinct() == len(ids) {
		t.Log("the first run finished everything before it was stopped")
	}
	second := startDeliverer(t, k.Brokers, o)
	t0 = time.Now()
	testenv.Eventually(t, 90*time.Second, "every alert after the restart", func() bool { return rc.distinct() >= len(ids) })
	t.Logf("second run delivered the rest in %s", time.Since(t0))
	testenv.Eventually(t, 10*time.Second, "offsets committed", func() bool { return committedAll(t, k.Brokers, "deliver-test") })
	second.stop(t)
	rc.mu.Lock()
	for _, id := range ids {
		if _, ok := rc.bodies[id]; !ok {
			t.Errorf("alert %s lost across the restart", id)
		}
	}
	rc.mu.Unlock()
	rc.checkOrder(t)
}

// A destination that always fails dead-letters after max_attempts, one
// that rejects (4xx) at once; both keep the original bytes and say why.
// Filters route by type and priority; Slack gets a short escaped text.
func TestDeadLettersFiltersAndSlack(t *testing.T) {
	k := testenv.StartKafka(t, 2, alertTopic, "cx.deliver.deadletter.broken", "cx.deliver.deadletter.rejects", "dl.slack")
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer broken.Close()
	rejects := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer rejects.Close()
	var mu sync.Mutex
	var slackTexts []string
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct{ Text string }
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &msg); err != nil || r.Header.Get(HeaderSignature) != "" {
			t.Errorf("slack got %s (signature header %q)", b, r.Header.Get(HeaderSignature))
		}
		mu.Lock()
		slackTexts = append(slackTexts, msg.Text)
		mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	defer slack.Close()

	recs, _ := testAlerts(t, 24, 4)
	produce(t, k.Brokers, recs)
	r := startDeliverer(t, k.Brokers, fastRetries(Options{Destinations: []Destination{
		{Name: "broken", URL: broken.URL, Secret: []byte("s"), MaxAttempts: 3, Timeout: time.Second, Types: []string{schemas.AlertChurnRisk}},
		{Name: "rejects", URL: rejects.URL, Secret: []byte("s"), MaxAttempts: 5, Timeout: time.Second, MinPriority: schemas.PriorityUrgent},
		{Name: "slack", Kind: KindSlack, URL: slack.URL, Timeout: time.Second, Types: []string{schemas.AlertNegativeChat}, MinPriority: schemas.PriorityHigh, DeadLetterTopic: "dl.slack"},
	}}))
	// Of 24 alerts (types cycle over 3, priorities over 4): 8 churn_risk,
	// 6 URGENT, and the negative_chat ones of HIGH or URGENT: i%3==0 and
	// i%4>=2, i.e. 4.
	testenv.Eventually(t, 30*time.Second, "every destination finished", func() bool {
		return r.counter("dead", "broken") == 8 && r.counter("dead", "rejects") == 6 && r.counter("delivered", "slack") == 4
	})
	testenv.Eventually(t, 10*time.Second, "offsets committed", func() bool { return committedAll(t, k.Brokers, "deliver-test") })
	if r.counter("failures", "broken", FailStatus5xx) != 24 || r.counter("retries", "broken") != 16 || r.counter("failures", "rejects", FailStatus4xx) != 6 {
		t.Errorf("broken: %v failures, %v retries; rejects: %v failures", r.counter("failures", "broken", FailStatus5xx), r.counter("retries", "broken"), r.counter("failures", "rejects", FailStatus4xx))
	}
	if r.counter("filtered", "broken") != 16 || r.counter("filtered", "rejects") != 18 || r.counter("filtered", "slack") != 20 {
		t.Errorf("filtered: broken %v, rejects %v, slack %v", r.counter("filtered", "broken"), r.counter("filtered", "rejects"), r.counter("filtered", "slack"))
	}
	r.stop(t)

	byID := map[string][]byte{}
	for _, rec := range recs {
		byID[string(rec.Headers[0].Value)] = rec.Value
	}
	dead := readAll(t, k.Brokers, "cx.deliver.deadletter.broken", 8)
	for _, d := range dead {
		h := headers(d)
		if string(d.Value) != string(byID[h[HeaderDLAlertID]]) || h[HeaderDLReason] != FailStatus5xx || h[HeaderDLAttempts] != "3" ||
			h[HeaderDLDestination] != "broken" || h[HeaderDLDetail] != "HTTP 502" || h[HeaderDLSourceTopic] != alertTopic || h["cx-alert-id"] == "" {
			t.Errorf("dead letter %s %v", d.Value, h)
		}
	}
	for _, d := range readAll(t, k.Brokers, "cx.deliver.deadletter.rejects", 6) {
		if h := headers(d); h[HeaderDLReason] != FailStatus4xx || h[HeaderDLAttempts] != "1" {
			t.Errorf("rejected dead letter %v", h)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, text := range slackTexts {
		if !strings.Contains(text, "negative_chat") || !strings.Contains(text, "&lt;@channel&gt; &amp; now") || strings.Contains(text, "<@channel>") ||
			!(strings.Contains(text, "*HIGH*") || strings.Contains(text, "*URGENT*")) || !strings.Contains(text, "• test alert") {
			t.Errorf("slack text %q", text)
		}
	}
}

func headers(r *kgo.Record) map[string]string {
	h := map[string]string{}
	for _, x := range r.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

func readAll(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	testenv.Must(t, err, "reader")
	defer cl.Close()
	var out []*kgo.Record
	testenv.Eventually(t, 10*time.Second, topic, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		out = append(out, cl.PollFetches(ctx).Records()...)
		return len(out) >= n
	})
	if len(out) != n {
		t.Errorf("%s: %d records, want %d", topic, len(out), n)
	}
	return out
}
