package deliver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cxstream/cxstream/internal/testenv"
)

// Every destination's series exist at 0 before anything happened.
func TestMetricsExistFromStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	newMetrics(reg, []string{"a", "b"})
	mfs, err := reg.Gather()
	testenv.Must(t, err, "gather")
	series := map[string]int{}
	for _, mf := range mfs {
		series[mf.GetName()] += len(mf.GetMetric())
	}
	for name, want := range map[string]int{
		"cx_deliver_delivered_total": 2, "cx_deliver_failures_total": 2 * len(failureClasses), "cx_deliver_retries_total": 2,
		"cx_deliver_dead_lettered_total": 2, "cx_deliver_filtered_total": 2, "cx_deliver_latency_seconds": 2,
		"cx_deliver_invalid_total": 1, "cx_deliver_pending": 1, "cx_deliver_in_flight": 1, "cx_deliver_offset_commits_total": 2,
	} {
		if series[name] != want {
			t.Errorf("%s: %d series at start, want %d", name, series[name], want)
		}
	}
}

// Neither a destination's URL (a Slack URL is a credential) nor its
// signing secret nor an alert's text appears in a log line or a
// dead-letter header, whatever fails.
func TestSecretsNeverInLogsOrDeadLetterHeaders(t *testing.T) {
	k := testenv.StartKafka(t, 1, alertTopic, "dl.slack", "dl.hook")
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "channel_not_found", http.StatusNotFound) }))
	defer gone.Close()
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedURL := refused.URL
	refused.Close() // nothing listens there any more
	recs, _ := testAlerts(t, 3, 1)
	produce(t, k.Brokers, recs)
	core, logs := observer.New(zap.DebugLevel)
	r := startDeliverer(t, k.Brokers, fastRetries(Options{Logger: zap.New(core), Destinations: []Destination{
		{Name: "slack", Kind: KindSlack, URL: gone.URL + "/services/T0/B0/SLACKTOKEN", Timeout: time.Second, DeadLetterTopic: "dl.slack"},
		{Name: "hook", URL: refusedURL + "/hook?token=URLTOKEN", Secret: []byte("SIGNINGSECRET"), MaxAttempts: 2, Timeout: time.Second, DeadLetterTopic: "dl.hook"},
	}}))
	testenv.Eventually(t, 20*time.Second, "both destinations dead-lettered everything", func() bool {
		return r.counter("dead", "slack") == 3 && r.counter("dead", "hook") == 3
	})
	r.stop(t)
	var seen []string
	for _, e := range logs.All() {
		seen = append(seen, e.Message)
		for k, v := range e.ContextMap() {
			seen = append(seen, k+"="+strings.TrimSpace(strings.ReplaceAll(toString(v), "\n", " ")))
		}
	}
	for _, topic := range []string{"dl.slack", "dl.hook"} {
		for _, d := range readAll(t, k.Brokers, topic, 3) {
			for _, h := range d.Headers {
				seen = append(seen, h.Key+"="+string(h.Value))
			}
		}
	}
	all := strings.Join(seen, "\n")
	for _, secret := range []string{"SLACKTOKEN", "URLTOKEN", "SIGNINGSECRET", "call me at"} {
		if strings.Contains(all, secret) {
			t.Errorf("%q leaked:\n%s", secret, all)
		}
	}
	if !strings.Contains(all, "cx-reason="+FailConnection) || !strings.Contains(all, "cx-reason="+FailStatus4xx) {
		t.Errorf("dead letters do not say why:\n%s", all)
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return ""
}

// Two deliverers in one group (scale-out): partitions move between them
// while alerts fail and retry; every alert still arrives, in order per
// user.
func TestRebalanceKeepsEveryAlertAndOrder(t *testing.T) {
	k := testenv.StartKafka(t, 6, alertTopic, "cx.deliver.deadletter.hook")
	rc, srv := newReceiver(t, 0.25, 0.05)
	recs, ids := testAlerts(t, 900, 60)
	produce(t, k.Brokers, recs)
	o := fastRetries(Options{Concurrency: 8, Destinations: []Destination{
		{Name: "hook", URL: srv.URL, Secret: []byte(testSecret), MaxAttempts: 30, Timeout: 300 * time.Millisecond},
	}})
	a := startDeliverer(t, k.Brokers, o)
	testenv.Eventually(t, 60*time.Second, "a third of the alerts", func() bool { return rc.distinct() >= len(ids)/3 })
	b := startDeliverer(t, k.Brokers, o) // takes over some partitions
	testenv.Eventually(t, 60*time.Second, "the second instance's share", func() bool {
		b.d.mu.Lock()
		defer b.d.mu.Unlock()
		return len(b.d.parts) > 0
	})
	testenv.Eventually(t, 90*time.Second, "every alert", func() bool { return rc.distinct() >= len(ids) })
	testenv.Eventually(t, 10*time.Second, "offsets committed", func() bool { return committedAll(t, k.Brokers, "deliver-test") })
	a.stop(t)
	b.stop(t)
	rc.mu.Lock()
	for _, id := range ids {
		if _, ok := rc.bodies[id]; !ok {
			t.Errorf("alert %s lost in the rebalance", id)
		}
	}
	rc.mu.Unlock()
	rc.checkOrder(t)
}
